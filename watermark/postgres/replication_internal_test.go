package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyward/keyward/watermark"
)

// synchronous_standby_names in each of PostgreSQL's three forms.
func TestSyncStandbysRequired_ReadsEveryForm(t *testing.T) {
	for _, c := range []struct {
		names string
		want  int
	}{
		{"", 0},
		{"   ", 0},
		{"standby1", 1},
		{"s1, s2, s3", 1},
		{"*", 1},
		{`"standby 1"`, 1},
		{"FIRST 2 (s1, s2, s3)", 2},
		{"first 2 (s1, s2)", 2},
		{"2 (s1, s2)", 2},
		{"2(s1,s2)", 2},
		{"ANY 3 (s1, s2, s3, s4)", 3},
		{"any 1 (*)", 1},
		{"ANY 2(s1,s2)", 2},
		{"1standby", 1},   // a name starting with digits
		{"any", 1},        // a standby named any
		{"first", 1},      // a standby named first
		{"ANY s1, s2", 1}, // not valid PostgreSQL; at least one
		{"FIRST 0 (s1)", 1},
		{"99999999999999999999 (s1)", 1},
	} {
		if got := syncStandbysRequired(c.names); got != c.want {
			t.Errorf("syncStandbysRequired(%q) = %d, want %d", c.names, got, c.want)
		}
	}
}

// Any synchronous_standby_names that is not blank asks for at least one
// standby: the parser never turns a synchronous setting into "async".
func FuzzSyncStandbysRequired(f *testing.F) {
	for _, s := range []string{"", "s1", "FIRST 2 (a, b)", "ANY 1 (*)", "2(a)", "any", " \t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := syncStandbysRequired(s)
		if blank := strings.TrimSpace(s) == ""; blank != (n == 0) || n < 0 {
			t.Fatalf("syncStandbysRequired(%q) = %d", s, n)
		}
	})
}

// Commits count as acknowledged only when the session waits for the
// standbys and enough synchronous standbys stream.
func TestJudge_SyncOnlyWhenCommitsWaitForStreamingStandbys(t *testing.T) {
	sync := replicationSettings{syncCommit: "on", standbyNames: "standby1", senders: 1, syncStreams: 1}
	with := func(f func(*replicationSettings)) replicationSettings { r := sync; f(&r); return r }
	for _, c := range []struct {
		name   string
		r      replicationSettings
		want   watermark.ReplicationState
		detail string
	}{
		{"one synchronous standby streaming", sync, watermark.ReplicationSync, `synchronous_standby_names = "standby1"`},
		{"remote_apply", with(func(r *replicationSettings) { r.syncCommit = "remote_apply" }), watermark.ReplicationSync, "remote_apply"},
		{"remote_write", with(func(r *replicationSettings) { r.syncCommit = "remote_write" }), watermark.ReplicationSync, "remote_write"},
		{"quorum of two met", with(func(r *replicationSettings) { r.standbyNames = "ANY 2 (a, b, c)"; r.senders, r.syncStreams = 3, 2 }), watermark.ReplicationSync, "2 synchronous"},
		{"synchronous_commit local", with(func(r *replicationSettings) { r.syncCommit = "local" }), watermark.ReplicationAsync, "synchronous_commit = local"},
		{"synchronous_commit off", with(func(r *replicationSettings) { r.syncCommit = "off" }), watermark.ReplicationAsync, "synchronous_commit = off"},
		{"no synchronous_standby_names", with(func(r *replicationSettings) { r.standbyNames = ""; r.syncStreams = 0 }), watermark.ReplicationAsync, "synchronous_standby_names is empty"},
		{"no standby at all", replicationSettings{syncCommit: "on"}, watermark.ReplicationAsync, "0 connected"},
		{"named standby gone", with(func(r *replicationSettings) { r.senders, r.syncStreams = 0, 0 }), watermark.ReplicationBlocked, "0 streaming"},
		{"quorum of two not met", with(func(r *replicationSettings) { r.standbyNames = "FIRST 2 (a, b)"; r.senders = 2 }), watermark.ReplicationBlocked, "wants 2"},
		{"pg_stat_replication unreadable", with(func(r *replicationSettings) { r.unreadable, r.syncStreams = 1, 0 }), watermark.ReplicationUnknown, "GRANT pg_monitor"},
		{"a standby", with(func(r *replicationSettings) { r.inRecovery = true }), watermark.ReplicationUnknown, "in recovery"},
	} {
		state, detail := judge(c.r)
		if state != c.want || !strings.Contains(detail, c.detail) {
			t.Errorf("%s: %s (%s), want %s mentioning %q", c.name, state, detail, c.want, c.detail)
		}
	}
}

// BenchmarkReplicationGuard_TrustedCheck: the gate every Advance passes
// under warn and require-sync between two checks (no query).
func BenchmarkReplicationGuard_TrustedCheck(b *testing.B) {
	cfg, err := pgxpool.ParseConfig("postgres://keyward@127.0.0.1:1/keyward")
	if err != nil {
		b.Fatal(err)
	}
	g := newReplicationGuard(cfg, "bench", time.Second)
	mode := watermark.RequireSync
	g.mode.Store(&mode)
	g.last.Store(&replicationCheck{status: watermark.ReplicationStatus{State: watermark.ReplicationSync}, gen: g.gen.Load(), at: time.Now().Add(time.Hour)})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if g.check(ctx, false).State != watermark.ReplicationSync {
			b.Fatal("not sync")
		}
	}
}
