package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/watermark"
	"github.com/keyward/keyward/watermark/postgres"
)

// logBuffer collects a store's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// openMode opens a store on dsn under a watermark_replication mode and
// returns its log.
func openMode(t *testing.T, dsn string, mode watermark.ReplicationMode) (*postgres.Store, *logBuffer) {
	t.Helper()
	s := open(t, dsn)
	log := &logBuffer{}
	if err := s.SetReplicationMode(ctxT(t), mode, slog.New(slog.NewTextHandler(log, nil))); err != nil {
		t.Fatal(err)
	}
	return s, log
}

// waitState waits until the store's replication check reports want.
func waitState(t *testing.T, s *postgres.Store, want watermark.ReplicationState) watermark.ReplicationStatus {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st := s.ReplicationStatus(ctxT(t))
		if st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("replication state stayed %s, want %s", st, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func isNotReplicated(err error) bool {
	return errors.Is(err, watermark.ErrNotReplicated) && errors.Is(err, watermark.ErrUnavailable)
}

// Under require-sync the store signs while a synchronous standby streams,
// refuses (fast, not by hanging) once it is gone and resumes when it is
// back. A session default of synchronous_commit = local is raised to on
// under require-sync, and reported as async under warn. Another ledger's
// write through the store's guard reaches the standby.
func TestReplication_RequireSyncSignsOnlyWhileASynchronousStandbyStreams(t *testing.T) {
	primary, standby := pgtest.StartPair(t, true)
	primary.AlterSystem(t, "synchronous_commit", "local")
	s, log := openMode(t, primary.DSN(), watermark.RequireSync)
	st := s.ReplicationStatus(ctxT(t))
	if st.State != watermark.ReplicationSync || st.SyncStandbys != 1 || !strings.Contains(st.Detail, "synchronous_commit = on") {
		t.Fatalf("with a synchronous standby streaming: %s (%d sync standbys)", st, st.SyncStandbys)
	}
	if !strings.Contains(log.String(), "state=sync") {
		t.Fatalf("the start-up check is not in the log:\n%s", log)
	}
	if w, _ := openMode(t, primary.DSN(), watermark.WarnAsync); w.ReplicationStatus(ctxT(t)).State != watermark.ReplicationAsync {
		t.Fatalf("warn with synchronous_commit = local: %s, want async", w.ReplicationStatus(ctxT(t)))
	}
	id := newID(t)
	if _, err := s.Advance(ctxT(t), id, 1, 0, digest("a")); err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	// Another ledger in the same database, written through the guard.
	primary.Exec(t, `CREATE TABLE budget (key text PRIMARY KEY, spent bigint)`)
	err := s.Replication().Write(ctxT(t), func(c *pgx.Conn) error {
		_, err := c.Exec(ctxT(t), `INSERT INTO budget VALUES ('baker', 5)`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var spent int64
	for deadline := time.Now().Add(10 * time.Second); spent != 5; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the ledger's write never appeared on the standby")
		}
		conn, err := pgx.Connect(ctxT(t), standby.DSN())
		if err == nil {
			conn.QueryRow(ctxT(t), `SELECT spent FROM budget WHERE key = 'baker'`).Scan(&spent)
			conn.Close(context.Background())
		}
	}

	standby.Stop()
	st = waitState(t, s, watermark.ReplicationBlocked)
	if !strings.Contains(st.Detail, "0 streaming") {
		t.Fatalf("standby gone: %s", st)
	}
	start := time.Now()
	if _, err := s.Advance(ctxT(t), id, 2, 0, digest("b")); !isNotReplicated(err) {
		t.Fatalf("Advance with the synchronous standby gone: %v, want ErrNotReplicated", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("refusing took %v: it should not wait for the commit to time out", d)
	}
	if err := s.Ready(ctxT(t)); !isNotReplicated(err) || !strings.Contains(err.Error(), "0 streaming") {
		t.Fatalf("Ready with the synchronous standby gone: %v, want ErrNotReplicated with the detail", err)
	}
	ran := false
	if err := s.Replication().Write(ctxT(t), func(*pgx.Conn) error { ran = true; return nil }); !isNotReplicated(err) || ran {
		t.Fatalf("another ledger's write with the standby gone: %v (ran: %v), want ErrNotReplicated before it runs", err, ran)
	}
	if !strings.Contains(log.String(), "level=ERROR") || !strings.Contains(log.String(), "state=blocked") {
		t.Fatalf("the lost standby is not in the log:\n%s", log)
	}

	standby.Start()
	primary.WaitStandby(t, "standby1", "sync")
	waitState(t, s, watermark.ReplicationSync)
	if _, err := s.Advance(ctxT(t), id, 2, 0, digest("b")); err != nil {
		t.Fatalf("Advance once the standby is back: %v", err)
	}
}

// With an asynchronous standby, require-sync refuses from the start (the
// store, and another ledger's write, before it runs); warn passes and warns;
// ignore passes and reports at info level only.
func TestReplication_AsyncStandbyByMode(t *testing.T) {
	primary, _ := pgtest.StartPair(t, false)
	for _, c := range []struct {
		mode    watermark.ReplicationMode
		passes  bool
		logWant string
	}{
		{watermark.RequireSync, false, "level=ERROR"},
		{watermark.WarnAsync, true, "level=WARN"},
		{watermark.IgnoreReplication, true, "level=INFO"},
	} {
		t.Run(string(c.mode), func(t *testing.T) {
			s, log := openMode(t, primary.DSN(), c.mode)
			st := s.ReplicationStatus(ctxT(t))
			if st.State != watermark.ReplicationAsync || st.Mode != c.mode || !strings.Contains(st.Detail, "synchronous_standby_names is empty") || !strings.Contains(st.Detail, "1 connected") {
				t.Fatalf("status %s", st)
			}
			if l := log.String(); !strings.Contains(l, c.logWant) || !strings.Contains(l, "state=async") {
				t.Fatalf("log:\n%s\nwant %s and state=async", l, c.logWant)
			}
			if c.mode == watermark.IgnoreReplication && strings.Contains(log.String(), "level=WARN") {
				t.Fatalf("ignore warned:\n%s", log)
			}
			_, err := s.Advance(ctxT(t), newID(t), 1, 0, digest("a"))
			ready := s.Ready(ctxT(t))
			ran := false
			werr := s.Replication().Write(ctxT(t), func(*pgx.Conn) error { ran = true; return nil })
			if c.passes {
				if err != nil || ready != nil || werr != nil || !ran {
					t.Fatalf("Advance %v, Ready %v, Write %v (ran %v); want all to pass", err, ready, werr, ran)
				}
				return
			}
			if !isNotReplicated(err) || !isNotReplicated(ready) || !isNotReplicated(werr) || ran {
				t.Fatalf("Advance %v, Ready %v, Write %v (ran %v); want ErrNotReplicated, nothing run", err, ready, werr, ran)
			}
		})
	}
}

// stallWALReceiver freezes the standby's WAL receiver (SIGSTOP): the primary
// still lists it as a streaming synchronous standby, but no commit is
// acknowledged any more. It is thawed when the test ends, or by the
// returned function.
func stallWALReceiver(t *testing.T, standby *pgtest.Cluster) (thaw func()) {
	t.Helper()
	conn, err := pgx.Connect(ctxT(t), standby.DSN())
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	err = conn.QueryRow(ctxT(t), `SELECT pid FROM pg_stat_wal_receiver`).Scan(&pid)
	conn.Close(context.Background())
	if err != nil {
		t.Fatalf("WAL receiver pid: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP the WAL receiver: %v", err)
	}
	var once sync.Once
	thaw = func() { once.Do(func() { syscall.Kill(pid, syscall.SIGCONT) }) }
	t.Cleanup(thaw) // before the clusters stop
	return thaw
}

// cancelSyncRepWait cancels (pg_cancel_backend) the backend of the
// application named app once it waits for synchronous replication:
// PostgreSQL then reports its commit as a success, with a WARNING, though
// the standby may not have it.
func cancelSyncRepWait(t *testing.T, primary *pgtest.Cluster, app string) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		conn, err := pgx.Connect(ctxT(t), primary.DSN())
		if err != nil {
			t.Error(err)
			return
		}
		var n int
		err = conn.QueryRow(ctxT(t), `SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity WHERE wait_event = 'SyncRep' AND application_name = $1`, app).Scan(&n)
		conn.Close(context.Background())
		if err != nil || n > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("%s never waited for synchronous replication", app)
}

// A synchronous standby that stops acknowledging while still listed as
// streaming makes commits wait: the call timeout turns that into
// ErrUnavailable, not a hang; a wait cancelled on the server (which
// PostgreSQL reports as a committed success with a warning) is not taken as
// durable under require-sync, and only logged under warn. Once the standby
// is back, the mark committed on the primary alone meanwhile still rules.
func TestAdvance_CommitWaitingForAStalledStandbyIsNotSigned(t *testing.T) {
	primary, standby := pgtest.StartPair(t, true)
	quick, _ := openMode(t, primary.DSN()+"&call_timeout=700ms", watermark.RequireSync)
	patient, _ := openMode(t, primary.DSN()+"&call_timeout=10s&application_name=patient", watermark.RequireSync)
	warn, warnLog := openMode(t, primary.DSN()+"&call_timeout=10s&application_name=warn", watermark.WarnAsync)
	id := newID(t)
	if _, err := quick.Advance(ctxT(t), id, 1, 0, digest("a")); err != nil {
		t.Fatal(err)
	}
	thaw := stallWALReceiver(t, standby)
	if st := patient.ReplicationStatus(ctxT(t)); st.State != watermark.ReplicationSync {
		t.Fatalf("a stalled standby is still listed as streaming, want sync: %s", st)
	}

	start := time.Now()
	if _, err := quick.Advance(ctxT(t), id, 2, 0, digest("b")); !errors.Is(err, watermark.ErrUnavailable) {
		t.Fatalf("Advance waiting for a stalled standby: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 700*time.Millisecond+time.Second {
		t.Fatalf("Advance waited %v with call_timeout=700ms", d)
	}

	cancelled := newID(t)
	for _, c := range []struct {
		app   string
		s     *postgres.Store
		id    watermark.ID
		check func(error)
	}{
		{"patient", patient, cancelled, func(err error) {
			if !isNotReplicated(err) || !strings.Contains(err.Error(), "synchronous replication") {
				t.Fatalf("require-sync, wait cancelled on the server: %v, want ErrNotReplicated naming the warning", err)
			}
		}},
		{"warn", warn, newID(t), func(err error) {
			if err != nil {
				t.Fatalf("warn, wait cancelled on the server: %v, want a pass", err)
			}
			if !strings.Contains(warnLog.String(), "the server warned during a commit") {
				t.Fatalf("warn: the warning is not in the log:\n%s", warnLog)
			}
		}},
	} {
		done := make(chan error, 1)
		go func() { _, err := c.s.Advance(ctxT(t), c.id, 10, 0, digest("x")); done <- err }()
		cancelSyncRepWait(t, primary, c.app)
		c.check(<-done)
	}

	thaw()
	primary.WaitStandby(t, "standby1", "sync")
	if _, err := patient.Advance(ctxT(t), cancelled, 10, 0, digest("other")); !isRefusal(err) {
		t.Fatalf("another payload at the mark committed on the primary alone: %v, want *RefusedError", err)
	}
	if _, err := patient.Advance(ctxT(t), cancelled, 10, 0, digest("x")); err != nil {
		t.Fatalf("identical retry once the standby is back: %v", err)
	}
}

// On a multi-host URL (the standby listed first) the store uses the
// primary; with the primary killed it is unavailable; once the standby is
// promoted the same store signs again, keeps every mark acknowledged before,
// and its check, made anew on the new connection, reports the new primary's
// replication (no standby: async).
func TestOpen_MultiHostFollowsThePromotedStandby(t *testing.T) {
	primary, standby := pgtest.StartPair(t, true)
	dsn := pgtest.MultiHostDSN(standby, primary) + "&call_timeout=500ms"
	s, log := openMode(t, dsn, watermark.WarnAsync)
	if st := s.ReplicationStatus(ctxT(t)); st.State != watermark.ReplicationSync {
		t.Fatalf("before failover: %s", st)
	}
	id := newID(t)
	for l := int64(1); l <= 20; l++ {
		if _, err := s.Advance(ctxT(t), id, l, 0, digest(fmt.Sprint(l))); err != nil {
			t.Fatal(err)
		}
	}
	primary.Kill()
	for range 20 { // one per dead connection in the pool, and more
		if _, err := s.Advance(ctxT(t), id, 21, 0, digest("21")); !errors.Is(err, watermark.ErrUnavailable) {
			t.Fatalf("Advance with no primary: %v, want ErrUnavailable", err)
		}
	}
	if err := s.Ready(ctxT(t)); !errors.Is(err, watermark.ErrUnavailable) {
		t.Fatalf("Ready with no primary: %v, want ErrUnavailable", err)
	}
	standby.Promote(t)
	start := time.Now()
	for {
		_, err := s.Advance(ctxT(t), id, 21, 0, digest("21"))
		if err == nil {
			break
		}
		if !errors.Is(err, watermark.ErrUnavailable) || time.Since(start) > 15*time.Second {
			t.Fatalf("Advance after promotion: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("first pass %v after promotion", time.Since(start))
	for l := int64(1); l <= 21; l++ {
		if _, err := s.Advance(ctxT(t), id, l, 0, digest("other")); !isRefusal(err) {
			t.Fatalf("other payload at level %d after failover: %v, want *RefusedError (the mark was lost)", l, err)
		}
	}
	if st := s.ReplicationStatus(ctxT(t)); st.State != watermark.ReplicationAsync {
		t.Fatalf("after failover to a primary with no standby: %s, want async", st)
	}
	if l := log.String(); !strings.Contains(l, "state=sync") || !strings.Contains(l, "state=async") {
		t.Fatalf("the log does not show the change from sync to async:\n%s", l)
	}
}
