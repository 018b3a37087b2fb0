package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/internal/testutil"
	"github.com/keyward/keyward/internal/tezostest"
)

// TestPostgres_ReadyzFollowsTheDatabase: /readyz is 200 while PostgreSQL
// runs, 503 while it is stopped (and nothing is signed), 200 again after.
func TestPostgres_ReadyzFollowsTheDatabase(t *testing.T) {
	cluster := pgtest.Start(t)
	dir := t.TempDir()
	p, pkh := genKey(t, dir, "secp256k1")
	addr, maddr := testutil.Addr(t), testutil.Addr(t)
	cfg := fmt.Sprintf("tezos:\n  listen: %s\nserver:\n  metrics_listen: %s\nwatermark: %s\naudit: %s\nkeys:\n  baker:\n    ref: file://%s\n    tezos:\n      allow: [attestation]\n",
		addr, maddr, cluster.DSN(), filepath.Join(dir, "audit.jsonl"), p)
	if err := os.WriteFile(filepath.Join(dir, "keyward.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := testutil.StartKeyward(t, filepath.Join(dir, "keyward.yaml"), addr, passEnv...)
	ready := func() int {
		resp, err := http.Get("http://" + maddr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor := func(want int) {
		deadline := time.Now().Add(15 * time.Second)
		for ready() != want {
			if time.Now().After(deadline) {
				t.Fatalf("/readyz never became %d", want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor(200)
	if r := postSign(t, d.TezosURL, pkh, hexBody(tezostest.Attestation(10, 0, 1)), ""); r.status != 200 {
		t.Fatal(r.body)
	}
	cluster.Stop()
	waitFor(503)
	if r := postSign(t, d.TezosURL, pkh, hexBody(tezostest.Attestation(11, 0, 1)), ""); r.status != 503 {
		t.Fatalf("signing with the database down: %d %s", r.status, r.body)
	}
	cluster.Start()
	waitFor(200)
	if r := postSign(t, d.TezosURL, pkh, hexBody(tezostest.Attestation(11, 0, 1)), ""); r.status != 200 {
		t.Fatalf("after the database came back: %d %s", r.status, r.body)
	}
}
