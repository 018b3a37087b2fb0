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
	"github.com/keyward/keyward/internal/tezostest"
	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/local"
)

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
	body := []byte(fmt.Sprintf("%q", hex.EncodeToString(tezostest.Transfer(b, k.PKH, 1))))
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
	if code, body := f.post(k.PKH, tezostest.Transfer(t, k.PKH, 1), ""); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
}
