//go:build cgo

package local

import (
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	gethsecp "github.com/ethereum/go-ethereum/crypto/secp256k1"
)

// signSecp256k1 signs with libsecp256k1 (bundled with go-ethereum): RFC 6979
// nonces, a constant-time nonce point multiplication, low-S output. A signer
// answering network requests must not leak nonce bits through timing.
func signSecp256k1(sk *secp256k1.PrivateKey, digest []byte) ([]byte, error) {
	sig, _, err := signSecp256k1Recoverable(sk, digest)
	return sig, err
}

// signSecp256k1Recoverable also returns the recovery id libsecp256k1 found.
func signSecp256k1Recoverable(sk *secp256k1.PrivateKey, digest []byte) ([]byte, byte, error) {
	var seckey [32]byte
	sk.Key.PutBytes(&seckey)
	defer clear(seckey[:])
	sig, err := gethsecp.Sign(digest, seckey[:])
	if err != nil {
		return nil, 0, fmt.Errorf("local: secp256k1 sign: %w", err)
	}
	return sig[:64], sig[64], nil
}
