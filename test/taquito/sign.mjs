// Signs a forged transaction for each pkh through Taquito's RemoteSigner
// against a running keyward, and prints one JSON line per key. RemoteSigner
// itself fetches the public key (GET /keys/<pkh>) and verifies the signature.
// Usage: node sign.mjs <keyward url> <pkh>...
import { RemoteSigner } from '@taquito/remote-signer';
import { LocalForger } from '@taquito/local-forging';

const [url, ...pkhs] = process.argv.slice(2);
const forger = new LocalForger();
const branch = 'BLockGenesisGenesisGenesisGenesisGenesisf79b5d1CoW2';
let failed = false;
for (const pkh of pkhs) {
  try {
    const forged = await forger.forge({
      branch,
      contents: [
        { kind: 'transaction', source: pkh, fee: '1420', counter: '7', gas_limit: '1521', storage_limit: '0', amount: '1000000', destination: 'tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx' },
      ],
    });
    const signer = new RemoteSigner(pkh, url);
    const pk = await signer.publicKey();
    const res = await signer.sign(forged, new Uint8Array([3]));
    console.log(JSON.stringify({ pkh, ok: true, public_key: pk, forged, signature: res.prefixSig, sbytes: res.sbytes }));
  } catch (e) {
    failed = true;
    console.log(JSON.stringify({ pkh, ok: false, error: String(e && e.message || e) }));
  }
}
process.exit(failed ? 1 : 0);
