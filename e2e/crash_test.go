package e2e

import (
	"bytes"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testutil"
	"github.com/keyward/keyward/internal/tezostest"
)

// TestCrash_NeverSignsBelowAnsweredLevelAfterSIGKILL has a keyward sign a
// stream of rising attestation levels and kills it with SIGKILL at random
// points, many times. After each restart, requests at or below every level
// it answered, with a different payload, must all be refused.
func TestCrash_NeverSignsBelowAnsweredLevelAfterSIGKILL(t *testing.T) {
	dir := t.TempDir()
	p, pkh := genKey(t, dir, "secp256k1")
	addr := testutil.Addr(t)
	cfg := tezosConfig(t, dir, addr, "", keySpec{"baker", p, "tezos:\n  allow: [attestation]"})
	rng := rand.New(rand.NewPCG(1, 2))
	signed := map[int32]uint16{} // level → salt of the payload answered with a signature
	var mu sync.Mutex
	maxSigned := int32(0)
	level := int32(1)
	client := &http.Client{Timeout: 5 * time.Second}
	const rounds = 12
	for iter := 0; iter < rounds; iter++ {
		d := testutil.StartKeyward(t, cfg, addr, passEnv...)
		// After a restart: every answered level, with a new payload, is refused.
		mu.Lock()
		for lv := range signed {
			if lv < maxSigned-20 {
				continue
			}
			r := postSign(t, d.TezosURL, pkh, hexBody(tezostest.Attestation(lv, 0, 60000+uint16(iter))), "")
			if r.status == 200 {
				t.Fatalf("restart %d: signed level %d again for a different payload", iter, lv)
			}
		}
		mu.Unlock()
		// Stream rising levels from several clients until killed.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var lvMu sync.Mutex
		for c := 0; c < 4; c++ {
			wg.Add(1)
			go func(c int) {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					lvMu.Lock()
					lv := level
					level++
					lvMu.Unlock()
					salt := uint16(c)
					resp, err := client.Post(d.TezosURL+"/keys/"+pkh, "application/json", bytes.NewReader(hexBody(tezostest.Attestation(lv, 0, salt))))
					if err != nil {
						continue // killed mid-request: the answer never arrived
					}
					resp.Body.Close()
					if resp.StatusCode == 200 {
						mu.Lock()
						if prev, ok := signed[lv]; ok && prev != salt {
							t.Errorf("level %d signed for two payloads", lv)
						}
						signed[lv] = salt
						if lv > maxSigned {
							maxSigned = lv
						}
						mu.Unlock()
					}
				}
			}(c)
		}
		time.Sleep(time.Duration(20+rng.IntN(150)) * time.Millisecond)
		d.Kill()
		close(stop)
		wg.Wait()
		// Rewind so the next run also retries levels around the last answered one.
		lvMu.Lock()
		level = maxSigned - int32(rng.IntN(5))
		if level < 1 {
			level = 1
		}
		lvMu.Unlock()
	}
	if len(signed) < rounds {
		t.Fatalf("only %d levels signed over %d runs: the test did not exercise the daemon", len(signed), rounds)
	}
	t.Logf("%d restarts, %d levels signed, highest %d", rounds, len(signed), maxSigned)
}
