package remotesigner

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/local"
)

// genericTx is a 0x03 request with one transaction from pkh to itself.
func genericTx(pkh string) []byte {
	curve, hash, _ := tezos.ParsePublicKeyHash(pkh)
	tag := map[signer.Curve]byte{signer.Ed25519: 0, signer.Secp256k1: 1, signer.P256: 2}[curve]
	b := append([]byte{0x03}, bytes.Repeat([]byte{5}, 32)...)
	b = append(b, 108, tag)
	b = append(b, hash...)
	b = append(b, 0xe8, 0x07, 0x01, 0xa0, 0x0b, 0x00, 0x01, 0x00, tag)
	b = append(b, hash...)
	return append(b, 0x00)
}

// BenchmarkRawSign_Secp256k1 is the raw signing rate on all cores: the
// baseline the request path is measured against.
func BenchmarkRawSign_Secp256k1(b *testing.B) {
	k, _ := local.Generate(signer.Secp256k1)
	d := tezos.Digest([]byte("x"))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := k.Sign(context.Background(), d[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRawSign_Secp256k1_PureGo is the same with the pure-Go decred
// signer (what a build without cgo uses), for reference.
func BenchmarkRawSign_Secp256k1_PureGo(b *testing.B) {
	sk, _ := secp256k1.GeneratePrivateKey()
	d := tezos.Digest([]byte("x"))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			secpecdsa.Sign(sk, d[:])
		}
	})
}

// BenchmarkRequestPath_Generic runs the whole in-process request path for a
// generic operation (JSON/hex decoding, operation decoding, policy, Blake2b,
// signing, low-S, verification, encoding, audit line) on all cores.
func BenchmarkRequestPath_Generic(b *testing.B) {
	f := newFixture(b, nil)
	k := f.tz2()
	body := []byte(fmt.Sprintf("%q", hex.EncodeToString(genericTx(k.PKH))))
	h := f.srv.Config.Handler
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/keys/"+k.PKH, bytes.NewReader(body))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatalf("%d %s", w.Code, w.Body)
			}
		}
	})
}

func TestGenericTx_SignsThroughHandler(t *testing.T) {
	f := newFixture(t, nil)
	k := f.tz2()
	if code, body := f.post(k.PKH, genericTx(k.PKH), ""); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
}
