package rpc_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/chains/ethereum/rpc"
	"github.com/keyward/keyward/pipeline"
	"github.com/keyward/keyward/signer/local"
)

// benchClients is the number of concurrent clients the target is stated for.
const benchClients = 16

func setClients(b *testing.B) {
	p := (benchClients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)
	b.SetParallelism(p)
}

// BenchmarkRawSecp256k1Sign is the baseline: the local backend signing a
// digest, nothing else, with 16 concurrent callers.
func BenchmarkRawSecp256k1Sign(b *testing.B) {
	k, err := local.ParseHexSecret(secretOpen)
	if err != nil {
		b.Fatal(err)
	}
	setClients(b)
	var n atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d := crypto.Keccak256([]byte(fmt.Sprint(n.Add(1))))
			if _, err := k.Sign(context.Background(), d); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkSignTransaction_1559 is eth_signTransaction of an EIP-1559
// transaction through the whole in-process handler (JSON decode, key
// lookup, policy, digest, sign, low-S, verify, recovery id, audit, encode)
// with 16 concurrent clients. Compare its ns/op with BenchmarkRawSecp256k1Sign.
func BenchmarkSignTransaction_1559(b *testing.B) {
	b.Run("audit=discard", func(b *testing.B) { benchSignTx(b, audit.Discard{}) })
	b.Run("audit=file", func(b *testing.B) {
		f, err := audit.OpenFile(filepath.Join(b.TempDir(), "audit.jsonl"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		benchSignTx(b, f)
	})
}

func benchSignTx(b *testing.B, a audit.Logger) {
	p := pipeline.New(pipeline.Options{Audit: a, Codes: rpc.Codes()})
	defer p.Close()
	e := newEnv(b, func(o *rpc.Options) { o.Pipeline = p })
	from := e.addr["open"].Hex()
	bodies := make([][]byte, 1024)
	for i := range bodies {
		bodies[i] = []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"eth_signTransaction","params":[{"from":"%s","to":"0x000000000000000000000000000000000000dEaD","value":"0x2386f26fc10000","nonce":"0x%x","gas":"0x5208","maxFeePerGas":"0x6fc23ac00","maxPriorityFeePerGas":"0x3b9aca00","chainId":"0x539","data":"0x"}]}`, i, from, i))
	}
	setClients(b)
	var n atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := bodies[n.Add(1)%uint64(len(bodies))]
			req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, req)
			if w.Code != http.StatusOK || !bytes.Contains(w.Body.Bytes(), []byte(`"result":"0x02f8`)) {
				b.Errorf("answer %d %s", w.Code, w.Body.Bytes())
				return
			}
		}
	})
}
