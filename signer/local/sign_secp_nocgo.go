//go:build !cgo

package local

import (
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// signSecp256k1 signs with the pure-Go decred implementation (RFC 6979,
// low-S) in builds without cgo. Its nonce point multiplication is not
// constant-time; production builds use cgo and libsecp256k1.
func signSecp256k1(sk *secp256k1.PrivateKey, digest []byte) ([]byte, error) {
	sig := secpecdsa.Sign(sk, digest)
	r, s := sig.R(), sig.S()
	out := make([]byte, 64)
	r.PutBytesUnchecked(out[:32])
	s.PutBytesUnchecked(out[32:])
	return out, nil
}
