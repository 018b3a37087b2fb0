// Forges Tezos signing-request vectors with Taquito (@taquito/local-forging
// for protocol Tallinn) and signs a message with each curve, so that
// chains/tezos tests check keyward's decoder and encodings against an
// independent implementation. Run: npm ci && npm run forge
'use strict';

const { LocalForger, ProtocolsHash } = require('@taquito/local-forging');
const utils = require('@taquito/utils');
// Transitive dependencies of @taquito/utils, pinned by package-lock.json.
const blake = require('blakejs');
const { secp256k1 } = require('@noble/curves/secp256k1');
const { p256 } = require('@noble/curves/p256');
const { ed25519 } = require('@noble/curves/ed25519');

const forger = new LocalForger(ProtocolsHash.PtTALLiNt);

const branch = 'BLyQHMFeNzZEKHmKgfD9imcowLm8hc4aUo16QtYZcS5yvx7RFqQ';
const chainID = 'NetXdQprcVkpaWU'; // mainnet
const tz1 = 'tz1W7Hs43hbxDJY9DPS3XRoon96RHN6CpV2Y';
const tz2 = 'tz2SSuN7FRcAurZPSAQS1swNWE8xxf71MTjt';
const tz3 = 'tz3ZxowXGSjiVq227GQcwKdz87rKhq62rY4t';
const edpk = 'edpkugoVuZyySv8XCpxx32soRtJRRFuJV6G7FzqW1nVWQ29kPgurE9';
const sppk = 'sppk7aFpmJLm3ZxMd3F4osvGBq77R1NeSpiJVnof3Wiv4mt84EBE9aX';
const kt1 = 'KT1WvzYHCNBvDSdwafTHv7nJ1dWmZ8GCYuuC';
const baker = 'tz1gDZwfViZ8cFJz6aTfB3SSmqjuzZLhB66e';
const payloadHash = utils.b58Encode(Buffer.from('68d776e356683a9e23c186ccfb72ddc6c9857bb1704487972922e7c89a7121f8', 'hex'), utils.PrefixV2.ValueHash);
const protoHash = 'PtTALLiNtPec7mE7yY4m3k26J8Qukef3E3ehzhfXgFZKGtDdAXu';

const mgr = (kind, source, extra) => Object.assign(
  { kind, source, fee: '1420', counter: '92341', gas_limit: '10600', storage_limit: '300' }, extra);

const staking = ['stake', 'unstake', 'finalize_unstake', 'set_delegate_parameters'];

// expect derives what keyward must decode from the JSON operation.
function expect(c) {
  const e = { kind: c.kind };
  if (c.source !== undefined) e.source = c.source;
  if (c.fee !== undefined) e.fee = c.fee;
  switch (c.kind) {
    case 'transaction':
      e.amount = c.amount;
      e.destination = c.destination;
      e.entrypoint = c.parameters ? c.parameters.entrypoint : 'default';
      if (c.destination === c.source && staking.includes(e.entrypoint)) e.kind = e.entrypoint;
      break;
    case 'origination':
      e.amount = c.balance;
      break;
    case 'transfer_ticket':
      e.amount = c.ticket_amount;
      e.destination = c.destination;
      e.entrypoint = c.entrypoint;
      break;
    case 'drain_delegate':
      e.source = c.delegate;
      e.destination = c.destination;
      break;
  }
  return e;
}

const generic = [
  ['reveal_and_transaction', [
    mgr('reveal', tz1, { public_key: edpk }),
    mgr('transaction', tz1, { amount: '1000000', destination: baker }),
  ]],
  ['transaction_tz2_to_tz3', [mgr('transaction', tz2, { amount: '1', destination: tz3 })]],
  ['transaction_large_amount', [mgr('transaction', tz3, { fee: '9223372036854775807', amount: '9223372036854775807', destination: tz1 })]],
  ['transaction_7_byte_fee', [mgr('transaction', tz3, { fee: '72057594037927936', amount: '0', destination: tz1 })]],
  ['transaction_kt1_update', [mgr('transaction', tz1, {
    amount: '0', destination: kt1,
    parameters: { entrypoint: 'update', value: { prim: 'Pair', args: [{ string: 'XTZ-USD' }, { int: '3141592' }] } },
  })]],
  ['transaction_kt1_default_params', [mgr('transaction', tz1, {
    amount: '0', destination: kt1, parameters: { entrypoint: 'default', value: { prim: 'Unit' } },
  })]],
  ['stake', [mgr('transaction', tz1, { amount: '6000000000', destination: tz1, parameters: { entrypoint: 'stake', value: { prim: 'Unit' } } })]],
  ['unstake', [mgr('transaction', tz1, { amount: '1000000', destination: tz1, parameters: { entrypoint: 'unstake', value: { prim: 'Unit' } } })]],
  ['finalize_unstake', [mgr('transaction', tz2, { amount: '0', destination: tz2, parameters: { entrypoint: 'finalize_unstake', value: { prim: 'Unit' } } })]],
  ['set_delegate_parameters', [mgr('transaction', tz1, {
    amount: '0', destination: tz1,
    parameters: { entrypoint: 'set_delegate_parameters', value: { prim: 'Pair', args: [{ int: '4000000' }, { prim: 'Pair', args: [{ int: '20000000' }, { prim: 'Unit' }] }] } },
  })]],
  ['stake_to_other_is_transaction', [mgr('transaction', tz1, { amount: '5', destination: baker, parameters: { entrypoint: 'stake', value: { prim: 'Unit' } } })]],
  ['delegation', [mgr('delegation', tz1, { delegate: baker })]],
  ['delegation_withdraw', [mgr('delegation', tz1, {})]],
  ['origination', [mgr('origination', tz1, {
    balance: '2500000',
    script: {
      code: [{ prim: 'parameter', args: [{ prim: 'unit' }] }, { prim: 'storage', args: [{ prim: 'unit' }] },
        { prim: 'code', args: [[{ prim: 'CDR' }, { prim: 'NIL', args: [{ prim: 'operation' }] }, { prim: 'PAIR' }]] }],
      storage: { prim: 'Unit' },
    },
  })]],
  ['origination_with_delegate', [mgr('origination', tz2, {
    balance: '0', delegate: baker,
    script: {
      code: [{ prim: 'parameter', args: [{ prim: 'unit' }] }, { prim: 'storage', args: [{ prim: 'unit' }] },
        { prim: 'code', args: [[{ prim: 'CDR' }, { prim: 'NIL', args: [{ prim: 'operation' }] }, { prim: 'PAIR' }]] }],
      storage: { prim: 'Unit' },
    },
  })]],
  ['ballot', [{ kind: 'ballot', source: baker, period: 142, proposal: protoHash, ballot: 'yay' }]],
  ['proposals', [{ kind: 'proposals', source: baker, period: 141, proposals: [protoHash, 'PtSeouLouXkxhg39oWzjxDWaCydNfR3RxCUrNe4Q9Ro8BTehcbh'] }]],
  ['seed_nonce_revelation', [{ kind: 'seed_nonce_revelation', level: 9000001, nonce: '1'.repeat(64) }]],
  ['activate_account', [{ kind: 'activate_account', pkh: tz1, secret: '41f98b15efc63fa893d61d7d6eee4a2ce9427ac4' }]],
  ['register_global_constant', [mgr('register_global_constant', tz1, { value: { prim: 'Pair', args: [{ int: '1' }, { string: 'two' }] } })]],
  ['set_deposits_limit', [mgr('set_deposits_limit', tz1, { limit: '1000000000' })]],
  ['set_deposits_limit_none', [mgr('set_deposits_limit', tz1, {})]],
  ['increase_paid_storage', [mgr('increase_paid_storage', tz1, { amount: '1024', destination: kt1 })]],
  ['update_consensus_key', [mgr('update_consensus_key', baker, { pk: sppk })]],
  ['transfer_ticket', [mgr('transfer_ticket', tz1, {
    ticket_contents: { string: 'ticket' }, ticket_ty: { prim: 'string' }, ticket_ticketer: kt1,
    ticket_amount: '77', destination: kt1, entrypoint: 'receive',
  })]],
  ['drain_delegate', [{ kind: 'drain_delegate', consensus_key: tz2, delegate: baker, destination: tz1 }]],
  ['smart_rollup_originate', [mgr('smart_rollup_originate', tz1, { pvm_kind: 'wasm_2_0_0', kernel: '0061736d01000000', parameters_ty: { prim: 'bytes' } })]],
  ['smart_rollup_add_messages', [mgr('smart_rollup_add_messages', tz1, { message: ['0000', 'deadbeef'] })]],
  ['failing_noop', [{ kind: 'failing_noop', arbitrary: '48656c6c6f2c2054657a6f7321' }]],
  ['batch_of_many_kinds', [
    mgr('reveal', tz2, { public_key: sppk }),
    mgr('delegation', tz2, { delegate: baker }),
    mgr('transaction', tz2, { amount: '6000000', destination: tz2, parameters: { entrypoint: 'stake', value: { prim: 'Unit' } } }),
    mgr('transaction', tz2, { amount: '42', destination: kt1, parameters: { entrypoint: 'mint', value: { bytes: 'cafe' } } }),
    mgr('origination', tz2, { balance: '1', script: { code: [{ prim: 'parameter', args: [{ prim: 'unit' }] }, { prim: 'storage', args: [{ prim: 'unit' }] }, { prim: 'code', args: [[{ prim: 'FAILWITH' }]] }], storage: { prim: 'Unit' } } }),
  ]],
];

const consensus = [
  ['attestation', 0x13, { kind: 'attestation', slot: 7, level: 9000000, round: 1, block_payload_hash: payloadHash }],
  ['attestation_with_dal', 0x13, { kind: 'attestation_with_dal', slot: 3, level: 9000000, round: 0, block_payload_hash: payloadHash, dal_attestation: '1180591620717411303424' }],
];

function hex(b) { return Buffer.from(b).toString('hex'); }

async function main() {
  const out = { generator: 'test/forge/forge.js with @taquito/local-forging 24.2.0 (PtTALLiNt)', operations: [], consensus: [], signatures: [] };
  for (const [name, contents] of generic) {
    const forged = await forger.forge({ branch, contents });
    const back = await forger.parse(forged);
    if (back.contents.length !== contents.length) throw new Error(name + ': parse mismatch');
    out.operations.push({ name, json: { branch, contents }, hex: '03' + forged, expect: { branch, operations: contents.map(expect) } });
  }
  const chainHex = hex(utils.b58DecodeAndCheckPrefix(chainID, undefined, true));
  for (const [name, magic, content] of consensus) {
    const forged = await forger.forge({ branch, contents: [content] });
    out.consensus.push({ name, json: { chain_id: chainID, branch, contents: [content] }, hex: magic.toString(16) + chainHex + forged,
      expect: { kind: 'attestation', chain_id: chainID, level: content.level, round: content.round, branch, operation: content.kind } });
  }
  // Preattestation (tag 20) has the attestation layout; Taquito forges no
  // preattestation, so this vector is the attestation one with its tag changed.
  const att = await forger.forge({ branch, contents: [{ kind: 'attestation', slot: 12, level: 9000002, round: 3, block_payload_hash: payloadHash }] });
  const pre = att.slice(0, 64) + '14' + att.slice(66);
  out.consensus.push({ name: 'preattestation', json: { chain_id: chainID, branch, note: 'attestation forged by Taquito, tag 0x15 replaced by 0x14' },
    hex: '12' + chainHex + pre, expect: { kind: 'preattestation', chain_id: chainID, level: 9000002, round: 3, branch, operation: 'preattestation' } });

  // Signatures: Blake2b-256 of the message, signed deterministically.
  const message = Buffer.from('03' + '00'.repeat(32) + '6c', 'hex');
  const digest = blake.blake2b(message, null, 32);
  const keys = [
    ['ed25519', 'edsk3nYESWeFWXfXriyuZemQdJHkZHoFP49Er3P1cUnTbm7tNxQjh1', utils.PrefixV2.Ed25519Seed, utils.PrefixV2.Ed25519PublicKey, utils.PrefixV2.Ed25519Signature,
      (sk) => ed25519.sign(digest, sk), (sk) => ed25519.getPublicKey(sk)],
    ['secp256k1', 'spsk2oCGdj7yZFmAWr1wqopU512kDtCfWfs7N4FoRH6bkHhgXk5Tu5', utils.PrefixV2.Secp256k1SecretKey, utils.PrefixV2.Secp256k1PublicKey, utils.PrefixV2.Secp256k1Signature,
      (sk) => secp256k1.sign(digest, sk, { lowS: true }).toCompactRawBytes(), (sk) => secp256k1.getPublicKey(sk, true)],
    ['p256', 'p2sk2g5Btw8MK7fnhQg9d7DaE8QYX8A89BLWaqWTQcHuATYY3ABjD9', utils.PrefixV2.P256SecretKey, utils.PrefixV2.P256PublicKey, utils.PrefixV2.P256Signature,
      (sk) => p256.sign(digest, sk, { lowS: true }).toCompactRawBytes(), (sk) => p256.getPublicKey(sk, true)],
  ];
  for (const [curve, skStr, skPre, pkPre, sigPre, sign, pub] of keys) {
    const sk = utils.b58DecodeAndCheckPrefix(skStr, [skPre], true);
    const pk = utils.b58Encode(pub(sk), pkPre);
    const sig = utils.b58Encode(sign(sk), sigPre);
    if (!utils.verifySignature(hex(message), pk, sig)) throw new Error(curve + ': Taquito does not verify');
    out.signatures.push({ curve, message: hex(message), digest: hex(digest), public_key: pk, pkh: utils.getPkhfromPk(pk), signature: sig });
  }
  process.stdout.write(JSON.stringify(out, null, 1) + '\n');
}

main().catch((e) => { console.error(e); process.exit(1); });
