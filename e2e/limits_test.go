package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/internal/testutil"
	"github.com/keyward/keyward/internal/tezostest"
)

// limitsConfig is one instance's config: an oracle key that may sign
// Michelson data within a budget of maxRequests per hour.
func limitsConfig(t *testing.T, dir, name, addr, watermarkURL, keyPath string, maxRequests int) string {
	t.Helper()
	d := filepath.Join(dir, name)
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return testutil.WriteConfig(t, d, fmt.Sprintf(`tezos:
  listen: %s
watermark: %s
audit: %s
keys:
  oracle:
    ref: file://%s
    tezos:
      allow: [michelson_data]
      limits: [{window: 1h, max_requests: %d}]
`, addr, watermarkURL, filepath.Join(d, "audit.jsonl"), keyPath, maxRequests))
}

// race sends n different Michelson payloads at once, spread over urls, and
// counts the answers by status; every refusal must name the limit.
func race(t *testing.T, pkh string, urls []string, n int) map[int]int {
	t.Helper()
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := postSign(t, urls[i%len(urls)], pkh, hexBody(tezostest.MichelsonString(fmt.Sprintf("price %d", i))), "")
			if r.status == http.StatusForbidden && !strings.Contains(r.body, "tezos.limits[0].max_requests") {
				t.Errorf("refusal does not name the limit: %s", r.body)
			}
			mu.Lock()
			codes[r.status]++
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	return codes
}

// TestLimits_ThreeDaemonsShareOneBudget: 200 concurrent requests through
// three keyward instances on one PostgreSQL database, against a budget
// that allows 37 of them: exactly 37 are signed.
func TestLimits_ThreeDaemonsShareOneBudget(t *testing.T) {
	cluster := pgtest.Start(t)
	dir := t.TempDir()
	keyPath, pkh := genKey(t, dir, "secp256k1")
	var urls []string
	for i := range 3 {
		addr := testutil.Addr(t)
		cfg := limitsConfig(t, dir, fmt.Sprint("k", i), addr, cluster.DSN(), keyPath, 37)
		urls = append(urls, testutil.StartKeyward(t, cfg, addr, passEnv...).TezosURL)
	}
	codes := race(t, pkh, urls, 200)
	if codes[200] != 37 || codes[403] != 163 {
		t.Fatalf("answers %v, want exactly 37 signed and 163 refused", codes)
	}
	t.Logf("200 racing requests over 3 daemons on PostgreSQL, budget 37: %v", codes)
}

// TestLimits_BudgetSurvivesSIGKILL: what was spent stays spent across a
// crash; `keyward limits show` reads it beside the running daemon.
func TestLimits_BudgetSurvivesSIGKILL(t *testing.T) {
	dir := t.TempDir()
	keyPath, pkh := genKey(t, dir, "secp256k1")
	addr := testutil.Addr(t)
	cfg := limitsConfig(t, dir, "k", addr, "file://"+filepath.Join(dir, "wm"), keyPath, 40)
	d := testutil.StartKeyward(t, cfg, addr, passEnv...)
	codes := race(t, pkh, []string{d.TezosURL}, 30)
	if codes[200] != 30 {
		t.Fatalf("answers %v, want 30 signed", codes)
	}
	out, err := testutil.Run(t, nil, "limits", "show", "--config", cfg)
	if err != nil || !strings.Contains(out, "tezos.limits[0].max_requests") || !strings.Contains(out, " 30 ") {
		t.Fatalf("limits show beside the daemon: %v\n%s", err, out)
	}
	d.Kill()
	<-d.Done()
	d = testutil.StartKeyward(t, cfg, addr, passEnv...)
	codes = race(t, pkh, []string{d.TezosURL}, 20)
	if codes[200] != 10 || codes[403] != 10 {
		t.Fatalf("after SIGKILL and restart: %v, want 10 signed and 10 refused (30 of 40 were spent before)", codes)
	}
}

// TestLimits_BudgetsGetTheWatermarksReplicationGuarantee: with
// watermark_replication: require-sync, a debit is refused (503, nothing
// signed) while no synchronous standby acknowledges commits, exactly as a
// mark is; a key without limits writes nothing durable and still signs.
func TestLimits_BudgetsGetTheWatermarksReplicationGuarantee(t *testing.T) {
	for _, sync := range []bool{false, true} {
		t.Run(fmt.Sprintf("synchronous=%v", sync), func(t *testing.T) {
			primary, _ := pgtest.StartPair(t, sync)
			dir := t.TempDir()
			keyPath, pkh := genKey(t, dir, "secp256k1")
			otherPath, other := genKey(t, filepath.Join(dir), "p256")
			addr := testutil.Addr(t)
			cfg := testutil.WriteConfig(t, dir, fmt.Sprintf(`tezos:
  listen: %s
watermark: %s
watermark_replication: require-sync
keys:
  oracle:
    ref: file://%s
    tezos: {allow: [michelson_data], limits: [{window: 1h, max_requests: 10}]}
  plain:
    ref: file://%s
    tezos: {allow: [michelson_data]}
`, addr, primary.DSN(), keyPath, otherPath))
			d := testutil.StartKeyward(t, cfg, addr, passEnv...)
			want := http.StatusServiceUnavailable
			if sync {
				want = 200
			}
			if r := postSign(t, d.TezosURL, pkh, hexBody(tezostest.MichelsonString("price")), ""); r.status != want {
				t.Fatalf("limited key: %d %s, want %d", r.status, r.body, want)
			}
			if r := postSign(t, d.TezosURL, other, hexBody(tezostest.MichelsonString("price")), ""); r.status != 200 {
				t.Fatalf("key without limits: %d %s", r.status, r.body)
			}
		})
	}
}
