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
	sig, _, err := signSecp256k1Recoverable(sk, digest)
	return sig, err
}

// signSecp256k1Recoverable also returns the recovery id (decred's compact
// form: 27 + recid, +4 for a compressed key).
func signSecp256k1Recoverable(sk *secp256k1.PrivateKey, digest []byte) ([]byte, byte, error) {
	compact := secpecdsa.SignCompact(sk, digest, true)
	return compact[1:65], (compact[0] - 27) & 3, nil
}
