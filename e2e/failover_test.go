package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/internal/testutil"
	"github.com/keyward/keyward/internal/tezostest"
)

// haDaemon is one keyward instance of a failover test, with its metrics
// listener.
type haDaemon struct {
	*testutil.Daemon
	metrics string // http://host:port
}

// startHA starts keyward instances on the watermark URL, each with its own
// listeners, audit log and config (extra is added at the top level).
func startHA(t *testing.T, dir, watermarkURL, extra string, n int, keyPaths ...string) []haDaemon {
	t.Helper()
	var ds []haDaemon
	for i := range n {
		addr, maddr := testutil.Addr(t), testutil.Addr(t)
		cfg := pgConfig(t, dir, fmt.Sprint("k", i), addr, watermarkURL, keyPaths...)
		f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "server:\n  metrics_listen: %s\n%s", maddr, extra)
		f.Close()
		ds = append(ds, haDaemon{testutil.StartKeyward(t, cfg, addr, passEnv...), "http://" + maddr})
	}
	return ds
}

// readyz returns /readyz's status and body.
func (d haDaemon) readyz(t *testing.T) (int, string) {
	t.Helper()
	resp, err := http.Get(d.metrics + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// replicationState is the state keyward_watermark_replication reports.
func (d haDaemon) replicationState(t *testing.T) string {
	t.Helper()
	for _, s := range []string{"sync", "async", "blocked", "unknown"} {
		if metricValue(t, d.metrics+"/metrics", "keyward_watermark_replication", `state="`+s+`"`) == 1 {
			return s
		}
	}
	return "none"
}

// shot is one attestation request of the failover load and its answer.
type shot struct {
	key        int // index in the key list
	level      int32
	salt       uint16
	status     int // 0: no answer
	start, end time.Time
	instance   int
}

// levelClock is a baker's notion of the current level for one key: it
// moves on once perLevel requests at the level were answered (signed or
// refused by the watermark); unavailable answers are retried at the same
// level, as a baker would.
type levelClock struct {
	mu       sync.Mutex
	level    int32
	answered int
}

func (c *levelClock) current() int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.level
}

func (c *levelClock) done(level int32, perLevel int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if level == c.level {
		if c.answered++; c.answered >= perLevel {
			c.level, c.answered = c.level+1, 0
		}
	}
}

// haLoad sends racing attestations (four payloads per level) for several
// keys to random instances and records every answer.
type haLoad struct {
	t      *testing.T
	ds     []haDaemon
	pkhs   []string
	client *http.Client
	mu     sync.Mutex
	shots  []shot
}

func (l *haLoad) send(rng *rand.Rand, key int, level int32, salt uint16) shot {
	s := shot{key: key, level: level, salt: salt, instance: rng.IntN(len(l.ds)), start: time.Now()}
	body := hexBody(tezostest.Attestation(level, 0, salt))
	resp, err := l.client.Post(l.ds[s.instance].TezosURL+"/keys/"+l.pkhs[key], "application/json", bytes.NewReader(body))
	if err == nil {
		s.status = resp.StatusCode
		if resp.StatusCode == 200 {
			var v struct {
				Signature string `json:"signature"`
			}
			if json.NewDecoder(resp.Body).Decode(&v) != nil || v.Signature == "" {
				l.t.Errorf("level %d: 200 without a signature", level)
			}
		}
		resp.Body.Close()
	}
	s.end = time.Now()
	l.mu.Lock()
	l.shots = append(l.shots, s)
	l.mu.Unlock()
	return s
}

// run starts workers for key, from level from, until stop is closed.
func (l *haLoad) run(wg *sync.WaitGroup, stop <-chan struct{}, key int, from int32, workers, perLevel int) {
	clock := &levelClock{level: from}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(key), uint64(w)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				lv := clock.current()
				s := l.send(rng, key, lv, uint16(rng.IntN(4)))
				if s.status == 200 || s.status == http.StatusConflict {
					clock.done(lv, perLevel)
				} else {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}
}

func (l *haLoad) snapshot() []shot {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]shot(nil), l.shots...)
}

// TestFailover_SynchronousStandbyLosesNoMark is issue 15's scenario: a
// PostgreSQL primary with a synchronous standby, three keyward instances on
// the multi-host URL (default watermark_replication: warn), many clients
// racing attestations at rising levels for two keys. Key A is signed
// throughout; key B only until just before the failover, so that its marks
// can be checked afterwards. The primary is killed (pg_ctl stop -m
// immediate) and, 0.5 s later, the standby promoted. Checked: no (key,
// level) ever answered or audited with two payloads; nothing signed while
// there was no primary (every answer then is 503); every instance signs
// again on the new primary without a restart; key B's last mark is on the
// new primary and every level B was answered at refuses another payload
// (no mark lost); each instance reports the new primary's replication
// (async: it has no standby) in /readyz and the metric. The failover gap
// (primary lost to the first signature on the new primary), the requests
// refused in it and the marks lost are logged.
func TestFailover_SynchronousStandbyLosesNoMark(t *testing.T) {
	primary, standby := pgtest.StartPair(t, true)
	dir := t.TempDir()
	keyA, pkhA := genKey(t, dir, "secp256k1")
	keyB, pkhB := genKey(t, dir, "p256")
	ds := startHA(t, dir, pgtest.MultiHostDSN(primary, standby), "", 3, keyA, keyB)
	for i, d := range ds {
		if code, body := d.readyz(t); code != 200 || !strings.Contains(body, "watermark replication: sync") {
			t.Fatalf("instance %d before failover: /readyz %d %q", i, code, body)
		}
		if s := d.replicationState(t); s != "sync" {
			t.Fatalf("instance %d before failover: keyward_watermark_replication state %s, want sync", i, s)
		}
	}
	const levelB = 1_000_000 // B's levels never meet A's (the audit check reads levels only)
	load := &haLoad{t: t, ds: ds, pkhs: []string{pkhA, pkhB}, client: &http.Client{
		Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64},
	}}
	var wgA, wgB sync.WaitGroup
	stopA, stopB := make(chan struct{}), make(chan struct{})
	load.run(&wgA, stopA, 0, 1, 12, 6)
	load.run(&wgB, stopB, 1, levelB, 4, 6)

	time.Sleep(1500 * time.Millisecond)
	close(stopB)
	wgB.Wait()
	tKill := time.Now()
	primary.Kill()
	tDead := time.Now()
	time.Sleep(500 * time.Millisecond)
	tPromote := time.Now()
	standby.Promote(t)
	tPromoted := time.Now()
	// Every instance signs again on the new primary, then a little more.
	deadline := time.Now().Add(20 * time.Second)
	for {
		signedAfter := map[int]bool{}
		for _, s := range load.snapshot() {
			if s.status == 200 && s.start.After(tPromote) {
				signedAfter[s.instance] = true
			}
		}
		if len(signedAfter) == len(ds) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only instances %v signed after the promotion", signedAfter)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	close(stopA)
	wgA.Wait()

	shots := load.snapshot()
	type mark struct {
		key   int
		level int32
	}
	signed := map[mark]uint16{}
	var firstNew time.Time
	noPrimary, maxB, saltB := 0, int32(0), uint16(0)
	for _, s := range shots {
		switch s.status {
		case 200, http.StatusConflict, http.StatusServiceUnavailable:
		default:
			t.Fatalf("key %d level %d: status %d, want 200, 409 or 503", s.key, s.level, s.status)
		}
		if s.start.After(tDead) && s.end.Before(tPromote) {
			if s.status != http.StatusServiceUnavailable {
				t.Fatalf("key %d level %d answered %d with no primary, want 503", s.key, s.level, s.status)
			}
			noPrimary++
		}
		if s.status != 200 {
			continue
		}
		m := mark{s.key, s.level}
		if prev, ok := signed[m]; ok && prev != s.salt {
			t.Fatalf("double signature: key %d level %d signed for payloads %d and %d", s.key, s.level, prev, s.salt)
		}
		signed[m] = s.salt
		if s.start.After(tDead) && (firstNew.IsZero() || s.end.Before(firstNew)) {
			firstNew = s.end
		}
		if s.key == 1 && s.level > maxB {
			maxB, saltB = s.level, s.salt
		}
	}
	if noPrimary == 0 {
		t.Fatal("no request was made while there was no primary: the gap was not exercised")
	}
	refused := 0
	for _, s := range shots {
		if s.status == http.StatusServiceUnavailable && s.end.After(tKill) && s.end.Before(firstNew) {
			refused++
		}
	}
	var audits []string
	for i := range ds {
		audits = append(audits, filepath.Join(dir, fmt.Sprint("k", i), "audit.jsonl"))
	}
	audited := signedDigests(t, audits...)

	// Key B: its last mark is on the new primary, and no level it was
	// answered at can be signed for another payload.
	conn, err := pgx.Connect(context.Background(), standby.DSN())
	if err != nil {
		t.Fatal(err)
	}
	var level int64
	var dg []byte
	err = conn.QueryRow(context.Background(), `SELECT level, digest FROM keyward_marks WHERE key = $1 AND kind = 19`, pkhB).Scan(&level, &dg)
	conn.Close(context.Background())
	want := tezos.Digest(tezostest.Attestation(maxB, 0, saltB))
	if err != nil || level != int64(maxB) || !bytes.Equal(dg, want[:]) {
		t.Fatalf("key B's mark on the new primary: level %d digest %x (%v), want the last answered: level %d digest %x", level, dg, err, maxB, want)
	}
	lost, checkedB := 0, 0
	rng := rand.New(rand.NewPCG(1, 2))
	for m := range signed {
		if m.key != 1 {
			continue
		}
		checkedB++
		if s := load.send(rng, 1, m.level, 100); s.status != http.StatusConflict {
			lost++
			t.Errorf("key B level %d, signed before the failover, answered %d for another payload after it, want 409", m.level, s.status)
		}
	}
	if s := load.send(rng, 1, maxB, saltB); s.status != 200 {
		t.Errorf("identical retry of key B's last mark after the failover: %d, want 200", s.status)
	}

	for i, d := range ds {
		if code, body := d.readyz(t); code != 200 || !strings.Contains(body, "watermark replication: async") {
			t.Errorf("instance %d after failover: /readyz %d %q, want ready with the async replication", i, code, body)
		}
		if s := d.replicationState(t); s != "async" {
			t.Errorf("instance %d after failover: keyward_watermark_replication state %s, want async", i, s)
		}
		if !strings.Contains(d.Output(), "state=async") {
			t.Errorf("instance %d: the new primary's replication is not in the log", i)
		}
	}
	t.Logf("%d requests, %d (key, level) signed (%d in the audit logs), none twice", len(shots), len(signed), len(audited))
	t.Logf("failover gap (primary killed -> first signature on the new primary): %v, of which 500ms waiting before the promotion; promotion started -> first signature: %v (pg_ctl stop -m immediate took %v, pg_ctl promote -w %v)",
		firstNew.Sub(tKill).Round(time.Millisecond), firstNew.Sub(tPromote).Round(time.Millisecond), tDead.Sub(tKill).Round(time.Millisecond), tPromoted.Sub(tPromote).Round(time.Millisecond))
	t.Logf("requests refused (503) during the gap: %d (%d made and answered while there was no primary); key B levels checked after failover: %d, marks lost: %d", refused, noPrimary, checkedB, lost)
}

// TestFailover_AsyncStandbyByMode: with an asynchronous standby, an
// instance under require-sync refuses to sign (503, /readyz not ready,
// naming why) from the start, and still after a failover; under warn it
// signs, warns in the log and reports async in the metric and /readyz,
// and signs again after the failover.
func TestFailover_AsyncStandbyByMode(t *testing.T) {
	primary, standby := pgtest.StartPair(t, false)
	dir := t.TempDir()
	key, pkh := genKey(t, dir, "secp256k1")
	dsn := pgtest.MultiHostDSN(primary, standby)
	strict := startHA(t, filepath.Join(dir, "strict"), dsn, "watermark_replication: require-sync\n", 1, key)[0]
	warn := startHA(t, filepath.Join(dir, "warn"), dsn, "watermark_replication: warn\n", 1, key)[0]

	check := func(phase string, from int32) {
		for lv := from; lv < from+5; lv++ {
			if r := postSign(t, strict.TezosURL, pkh, hexBody(tezostest.Attestation(lv, 0, 1)), ""); r.status != http.StatusServiceUnavailable {
				t.Fatalf("%s: require-sync with an asynchronous standby answered %d %s, want 503", phase, r.status, r.body)
			}
		}
		code, body := strict.readyz(t)
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "synchronous_standby_names is empty") || !strings.Contains(body, "async") {
			t.Fatalf("%s: require-sync /readyz %d %q, want 503 naming the replication", phase, code, body)
		}
		if s := strict.replicationState(t); s != "async" {
			t.Fatalf("%s: require-sync metric state %s, want async", phase, s)
		}
		deadline := time.Now().Add(15 * time.Second)
		for lv := from; lv < from+5; {
			r := postSign(t, warn.TezosURL, pkh, hexBody(tezostest.Attestation(lv, 0, 1)), "")
			switch {
			case r.status == 200:
				lv++
			case r.status != http.StatusServiceUnavailable || time.Now().After(deadline):
				t.Fatalf("%s: warn with an asynchronous standby answered %d %s, want 200", phase, r.status, r.body)
			default:
				time.Sleep(20 * time.Millisecond) // a failover in progress
			}
		}
		if code, body := warn.readyz(t); code != 200 || !strings.Contains(body, "async") {
			t.Fatalf("%s: warn /readyz %d %q, want ready naming the replication", phase, code, body)
		}
		if s := warn.replicationState(t); s != "async" {
			t.Fatalf("%s: warn metric state %s, want async", phase, s)
		}
	}
	check("before failover", 1)
	if out := strict.Output(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "nothing is signed until commits are acknowledged") {
		t.Errorf("require-sync: the refusal is not in the log:\n%s", out)
	}
	if out := warn.Output(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "a failover may lose the last marks") {
		t.Errorf("warn: the warning is not in the log:\n%s", out)
	}
	primary.Kill()
	standby.Promote(t)
	check("after failover", 100)
}

// require-sync on a store that is not replicated (the file store) is a
// start-up error, not a silent downgrade.
func TestFailover_RequireSyncNeedsAReplicatedStore(t *testing.T) {
	dir := t.TempDir()
	p, _ := genKey(t, dir, "secp256k1")
	addr := testutil.Addr(t)
	cfg := tezosConfig(t, dir, addr, "watermark_replication: require-sync\n", keySpec{"baker", p, ""})
	d, err := testutil.TryStartKeyward(t, cfg, addr, passEnv...)
	if err == nil {
		d.Stop()
		t.Fatal("keyward started with require-sync on a file store")
	}
	if !strings.Contains(err.Error(), "require-sync needs a replicated watermark store") {
		t.Fatalf("start-up error does not say why: %v", err)
	}
}
