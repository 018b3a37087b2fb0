package local

import (
	"crypto/sha256"
	"encoding/hex"
	"math/big"

	"golang.org/x/crypto/blake2b"

	"github.com/keyward/keyward/signer"
)

func hexEncode(b []byte) string { return hex.EncodeToString(b) }

// base58CheckEncode is the test-only inverse of base58CheckDecode.
func base58CheckEncode(prefix, data []byte) string {
	payload := append(append([]byte(nil), prefix...), data...)
	h1 := sha256.Sum256(payload)
	h2 := sha256.Sum256(h1[:])
	payload = append(payload, h2[:4]...)
	n := new(big.Int).SetBytes(payload)
	var out []byte
	mod, base := new(big.Int), big.NewInt(58)
	for n.Sign() > 0 {
		n.DivMod(n, base, mod)
		out = append(out, b58Alphabet[mod.Int64()])
	}
	for _, b := range payload {
		if b != 0 {
			break
		}
		out = append(out, '1')
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return string(out)
}

// tezosPublicKey encodes a public key as edpk…, sppk… or p2pk….
func tezosPublicKey(p signer.PublicKey) string {
	prefix := map[signer.Curve][]byte{
		signer.Ed25519:   {13, 15, 37, 217},
		signer.Secp256k1: {3, 254, 226, 86},
		signer.P256:      {3, 178, 139, 127},
	}[p.Curve]
	return base58CheckEncode(prefix, p.Bytes)
}

// tezosAddress is the tz1/tz2/tz3 address of a public key.
func tezosAddress(p signer.PublicKey) string {
	prefix := map[signer.Curve][]byte{
		signer.Ed25519:   {6, 161, 159},
		signer.Secp256k1: {6, 161, 161},
		signer.P256:      {6, 161, 164},
	}[p.Curve]
	h, _ := blake2b.New(20, nil)
	h.Write(p.Bytes)
	return base58CheckEncode(prefix, h.Sum(nil))
}
