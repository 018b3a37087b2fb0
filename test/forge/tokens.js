// Forges Tezos calls to FA1.2 and FA2 token contracts with Taquito: the
// parameters are encoded from JavaScript values by @taquito/michelson-encoder
// (as Taquito's contract.methodsObject does for a named entrypoint) or
// written as Micheline JSON where a test needs another form (combs,
// sequences, binary addresses, malformed values), then the transaction is
// forged by @taquito/local-forging. chains/tezos and policy tests decode
// them. Run: npm ci && npm run tokens
'use strict';

const { LocalForger, ProtocolsHash } = require('@taquito/local-forging');
const { Schema } = require('@taquito/michelson-encoder');
const { b58DecodeAddress } = require('@taquito/utils');

const forger = new LocalForger(ProtocolsHash.PtTALLiNt);
const branch = 'BLyQHMFeNzZEKHmKgfD9imcowLm8hc4aUo16QtYZcS5yvx7RFqQ';
const self = 'tz1W7Hs43hbxDJY9DPS3XRoon96RHN6CpV2Y';
const bob = 'tz1gDZwfViZ8cFJz6aTfB3SSmqjuzZLhB66e';
const carol = 'tz2SSuN7FRcAurZPSAQS1swNWE8xxf71MTjt';
const dex = 'KT1WvzYHCNBvDSdwafTHv7nJ1dWmZ8GCYuuC';
const token = 'KT1PWx2mnDueood7fEmfbBDKx1D9BAnnXitn';
const max256 = (2n ** 256n - 1n).toString();

// The standards' entrypoint types (TZIP-7, TZIP-12).
const fa12Transfer = { prim: 'pair', args: [{ prim: 'address', annots: [':from'] }, { prim: 'pair', args: [{ prim: 'address', annots: [':to'] }, { prim: 'nat', annots: [':value'] }] }] };
const fa12Approve = { prim: 'pair', args: [{ prim: 'address', annots: [':spender'] }, { prim: 'nat', annots: [':value'] }] };
const fa2Transfer = { prim: 'list', args: [{ prim: 'pair', args: [{ prim: 'address', annots: ['%from_'] }, { prim: 'list', annots: ['%txs'], args: [{ prim: 'pair', args: [{ prim: 'address', annots: ['%to_'] }, { prim: 'pair', args: [{ prim: 'nat', annots: ['%token_id'] }, { prim: 'nat', annots: ['%amount'] }] }] }] }] }] };
const operatorParam = { prim: 'pair', args: [{ prim: 'address', annots: ['%owner'] }, { prim: 'pair', args: [{ prim: 'address', annots: ['%operator'] }, { prim: 'nat', annots: ['%token_id'] }] }] };
const fa2UpdateOperators = { prim: 'list', args: [{ prim: 'or', args: [Object.assign({ annots: ['%add_operator'] }, operatorParam), Object.assign({ annots: ['%remove_operator'] }, operatorParam)] }] };

const enc = (type, value) => new Schema(type).Encode(value);
const s = (v) => ({ string: v });
const i = (v) => ({ int: v });
const bytesAddr = (a) => ({ bytes: b58DecodeAddress(a) });

// [name, standard, entrypoint, value, expect]; expect is the decoded call or
// {error: 'entrypoint' | 'parameters'}.
const vectors = [
  ['fa12_transfer', 'fa1.2', 'transfer', enc(fa12Transfer, { from: self, to: bob, value: '1000' }),
    { transfers: [{ from: self, to: bob, amount: '1000' }] }],
  ['fa12_transfer_comb', 'fa1.2', 'transfer', { prim: 'Pair', args: [s(self), s(bob), i('1000')] },
    { transfers: [{ from: self, to: bob, amount: '1000' }] }],
  ['fa12_transfer_sequence', 'fa1.2', 'transfer', [s(self), s(bob), i('1001')],
    { transfers: [{ from: self, to: bob, amount: '1001' }] }],
  ['fa12_transfer_binary_addresses', 'fa1.2', 'transfer', { prim: 'Pair', args: [bytesAddr(self), { prim: 'Pair', args: [bytesAddr(dex), i('5')] }] },
    { transfers: [{ from: self, to: dex, amount: '5' }] }],
  ['fa12_transfer_huge', 'fa1.2', 'transfer', enc(fa12Transfer, { from: self, to: carol, value: max256 + '0' }),
    { transfers: [{ from: self, to: carol, amount: max256 + '0' }] }],
  ['fa12_approve', 'fa1.2', 'approve', enc(fa12Approve, { spender: dex, value: '500' }),
    { approval: { spender: dex, amount: '500' } }],
  ['fa12_approve_max', 'fa1.2', 'approve', enc(fa12Approve, { spender: dex, value: max256 }),
    { approval: { spender: dex, amount: max256 } }],
  ['fa2_transfer', 'fa2', 'transfer', enc(fa2Transfer, [{ from_: self, txs: [{ to_: bob, token_id: '0', amount: '1000' }] }]),
    { transfers: [{ from: self, to: bob, token_id: '0', amount: '1000' }] }],
  ['fa2_transfer_batch', 'fa2', 'transfer', enc(fa2Transfer, [
    { from_: self, txs: [{ to_: bob, token_id: '0', amount: '400' }, { to_: carol, token_id: '3', amount: '250' }] },
    { from_: carol, txs: [{ to_: dex + '%receive', token_id: '0', amount: '351' }] },
  ]), { transfers: [{ from: self, to: bob, token_id: '0', amount: '400' }, { from: self, to: carol, token_id: '3', amount: '250' }, { from: carol, to: dex + '%receive', token_id: '0', amount: '351' }] }],
  ['fa2_transfer_empty', 'fa2', 'transfer', enc(fa2Transfer, []), { transfers: [] }],
  ['fa2_transfer_comb_tx', 'fa2', 'transfer', [{ prim: 'Pair', args: [s(self), [{ prim: 'Pair', args: [s(bob), i('7'), i('42')] }, [s(carol), i('7'), i('8')]]] }],
    { transfers: [{ from: self, to: bob, token_id: '7', amount: '42' }, { from: self, to: carol, token_id: '7', amount: '8' }] }],
  ['fa2_update_operators', 'fa2', 'update_operators', enc(fa2UpdateOperators, [
    { add_operator: { owner: self, operator: dex, token_id: '0' } },
    { remove_operator: { owner: self, operator: bob, token_id: '1' } },
  ]), { operators: [{ add: true, owner: self, operator: dex, token_id: '0' }, { add: false, owner: self, operator: bob, token_id: '1' }] }],
  ['fa2_remove_operator', 'fa2', 'update_operators', enc(fa2UpdateOperators, [{ remove_operator: { owner: self, operator: dex, token_id: '0' } }]),
    { operators: [{ add: false, owner: self, operator: dex, token_id: '0' }] }],
  // Refused: not the standard's value, or not an entrypoint the standard fixes.
  ['fa12_transfer_negative', 'fa1.2', 'transfer', { prim: 'Pair', args: [s(self), { prim: 'Pair', args: [s(bob), i('-1')] }] }, { error: 'parameters' }],
  ['fa12_transfer_annotated', 'fa1.2', 'transfer', { prim: 'Pair', args: [s(self), { prim: 'Pair', args: [s(bob), i('1')], annots: ['%x'] }] }, { error: 'parameters' }],
  ['fa12_transfer_four_values', 'fa1.2', 'transfer', { prim: 'Pair', args: [s(self), s(bob), i('1'), i('2')] }, { error: 'parameters' }],
  ['fa12_transfer_not_an_address', 'fa1.2', 'transfer', { prim: 'Pair', args: [s('tz1notanaddress'), { prim: 'Pair', args: [s(bob), i('1')] }] }, { error: 'parameters' }],
  ['fa12_transfer_short_sequence', 'fa1.2', 'transfer', [s(self), [s(bob)], i('1')], { error: 'parameters' }],
  ['fa12_approve_with_fa2_value', 'fa1.2', 'approve', enc(fa2Transfer, [{ from_: self, txs: [] }]), { error: 'parameters' }],
  ['fa2_transfer_with_fa12_value', 'fa2', 'transfer', enc(fa12Transfer, { from: self, to: bob, value: '1' }), { error: 'parameters' }],
  ['fa2_update_operators_unwrapped', 'fa2', 'update_operators', [enc(operatorParam, { owner: self, operator: dex, token_id: '0' })], { error: 'parameters' }],
  ['fa2_default_entrypoint', 'fa2', 'default', { prim: 'Left', args: [enc(fa2Transfer, [])] }, { error: 'entrypoint' }],
  ['fa2_balance_of', 'fa2', 'balance_of', { prim: 'Pair', args: [[], s(dex + '%callback')] }, { error: 'entrypoint' }],
  ['fa12_fa2_entrypoint', 'fa1.2', 'update_operators', [], { error: 'entrypoint' }],
];

async function main() {
  const out = { generator: 'test/forge/tokens.js with @taquito/michelson-encoder and @taquito/local-forging 24.2.0 (PtTALLiNt)', token, vectors: [] };
  for (const [name, standard, entrypoint, value, expect] of vectors) {
    const op = {
      kind: 'transaction', source: self, fee: '1420', counter: '92341', gas_limit: '10600', storage_limit: '300',
      amount: '0', destination: token, parameters: { entrypoint, value },
    };
    const forged = await forger.forge({ branch, contents: [op] });
    out.vectors.push({ name, standard, entrypoint, value, hex: '03' + forged, expect });
  }
  process.stdout.write(JSON.stringify(out, null, 1) + '\n');
}

main().catch((e) => { console.error(e); process.exit(1); });
