package local

import (
	"bytes"
	"crypto/sha256"
	"testing"

	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/keyward/keyward/signer"
)

// TestSignSecp256k1_MatchesDecredRFC6979: libsecp256k1 (cgo builds) and the
// pure-Go decred signer (no-cgo builds) produce the same RFC 6979 signature,
// so the build mode never changes what a key signs.
func TestSignSecp256k1_MatchesDecredRFC6979(t *testing.T) {
	for i := 0; i < 50; i++ {
		k, err := Generate(signer.Secp256k1)
		if err != nil {
			t.Fatal(err)
		}
		d := sha256.Sum256([]byte{byte(i)})
		got, err := signSecp256k1(k.secp, d[:])
		if err != nil {
			t.Fatal(err)
		}
		ref := secpecdsa.Sign(k.secp, d[:])
		r, s := ref.R(), ref.S()
		want := make([]byte, 64)
		r.PutBytesUnchecked(want[:32])
		s.PutBytesUnchecked(want[32:])
		if !bytes.Equal(got, want) {
			t.Fatalf("signatures differ:\n%x\n%x", got, want)
		}
	}
}
