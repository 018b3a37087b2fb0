package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyward/keyward/watermark"
)

// ReplicationCheckInterval is how long a replication check is trusted
// before the next durable write makes it anew (a new connection, as after a
// failover, makes it anew at once).
const ReplicationCheckInterval = time.Second

// replicationSQL reads, in one round trip, what decides whether this
// session's commits wait for synchronous standbys and whether enough of them
// are streaming. Without pg_monitor (or pg_read_all_stats) the role sees
// the WAL senders but not their state, counted as unreadable.
const replicationSQL = `SELECT current_setting('synchronous_commit'), current_setting('synchronous_standby_names'),
		pg_is_in_recovery(), count(*), count(*) FILTER (WHERE state IS NULL),
		count(*) FILTER (WHERE state = 'streaming' AND sync_state IN ('sync', 'quorum'))
	FROM pg_stat_replication`

// syncCommitOnSQL makes a new session's commits wait for the synchronous
// standbys (require-sync) unless its synchronous_commit already does
// (on, remote_write, remote_apply).
const syncCommitOnSQL = `SELECT set_config('synchronous_commit', 'on', false) WHERE current_setting('synchronous_commit') IN ('off', 'local')`

// warningKey holds, in a connection's CustomData, the last WARNING the
// server sent on it.
const warningKey = "keyward.warning"

// ReplicationGuard applies watermark_replication to the durable writes made
// on one connection pool. Before a write under require-sync it checks that
// commits are acknowledged by a synchronous standby (a check at most
// ReplicationCheckInterval old, made anew after any new connection; under
// warn the same check is made in the background and only reported); after
// the write it rejects a commit the server warned about, such as a
// synchronous-replication wait cancelled by pg_cancel_backend, which
// PostgreSQL reports as a success with a WARNING although the standby may
// not have it.
//
// Under require-sync a failing check or such a warning makes the write fail
// with an error wrapping watermark.ErrUnavailable and
// watermark.ErrNotReplicated (nothing may be signed), and every new session
// gets synchronous_commit = on unless it already waits for the standbys.
// Under warn the write goes ahead and the guard logs; under ignore it only
// runs the write. A standby named in synchronous_standby_names that stops
// streaming makes commits wait: the caller's deadline then fails the write
// (its connection is closed; the transaction may have committed on the
// primary alone, which is safe, since nothing was signed for it and any
// later pass on it commits again and waits).
//
// The watermark store's Advance writes through its guard. Another ledger in
// the same database (budgets) gets the same guarantee by making its writes
// through the store's guard too:
//
//	err := st.Replication().Write(ctx, func(c *pgx.Conn) error {
//		_, err := c.Exec(ctx, debitSQL, args...)
//		return err
//	})
type ReplicationGuard struct {
	pool      *pgxpool.Pool
	name      string        // redacted URL, for errors
	timeout   time.Duration // bounds a check made in the background
	mode      atomic.Pointer[watermark.ReplicationMode]
	log       atomic.Pointer[slog.Logger]
	gen       atomic.Uint64 // counts new connections
	seq       atomic.Uint64 // counts checks made
	last      atomic.Pointer[replicationCheck]
	sem       chan struct{} // one check at a time
	closeOnce sync.Once
}

type replicationCheck struct {
	status watermark.ReplicationStatus
	gen    uint64    // connections made before the check started
	seq    uint64    // checks made before this one, plus one
	at     time.Time // monotonic
}

// newReplicationGuard makes a guard in ignore mode that logs nowhere, and
// hooks it into cfg: every new connection invalidates the last check, and
// warnings are recorded per connection. Set pool before use.
func newReplicationGuard(cfg *pgxpool.Config, name string, timeout time.Duration) *ReplicationGuard {
	g := &ReplicationGuard{name: name, timeout: timeout, sem: make(chan struct{}, 1)}
	mode := watermark.IgnoreReplication
	g.mode.Store(&mode)
	g.log.Store(slog.New(slog.DiscardHandler))
	cfg.AfterConnect = g.afterConnect
	cfg.ConnConfig.OnNotice = recordWarning
	// A role or database default of client_min_messages = error would hide
	// the warning that says a commit was not replicated.
	cfg.ConnConfig.RuntimeParams["client_min_messages"] = "warning"
	return g
}

func (g *ReplicationGuard) currentMode() watermark.ReplicationMode { return *g.mode.Load() }

func (g *ReplicationGuard) afterConnect(ctx context.Context, c *pgx.Conn) error {
	g.gen.Add(1)
	if g.currentMode() == watermark.RequireSync {
		if _, err := c.Exec(ctx, syncCommitOnSQL); err != nil {
			return fmt.Errorf("set synchronous_commit: %w", err)
		}
	}
	return nil
}

func recordWarning(c *pgconn.PgConn, n *pgconn.Notice) {
	sev := n.SeverityUnlocalized
	if sev == "" {
		sev = n.Severity
	}
	if sev == "WARNING" {
		c.CustomData()[warningKey] = n.Message
	}
}

// setMode sets the mode and logger, then runs the first check and logs it.
// Under require-sync the pool's connections are replaced so that every
// session gets synchronous_commit.
func (g *ReplicationGuard) setMode(ctx context.Context, mode watermark.ReplicationMode, log *slog.Logger) error {
	if _, err := watermark.ParseReplicationMode(string(mode)); err != nil {
		return err
	}
	if log != nil {
		g.log.Store(log)
	}
	g.mode.Store(&mode)
	g.last.Store(nil)
	if mode == watermark.RequireSync {
		g.pool.Reset()
	}
	g.check(ctx, true)
	return nil
}

// Status returns the latest replication check, made anew when it is older
// than ReplicationCheckInterval or a connection was made since it started.
func (g *ReplicationGuard) Status(ctx context.Context) watermark.ReplicationStatus {
	return g.check(ctx, false)
}

// Write runs f on one connection of the pool as a durable write under the
// guard (see ReplicationGuard). f should run its statements on c with ctx
// and return their error; Write returns it, or an error wrapping
// watermark.ErrUnavailable when the pool cannot give a connection or, under
// require-sync, when commits are not acknowledged by a synchronous standby.
func (g *ReplicationGuard) Write(ctx context.Context, f func(c *pgx.Conn) error) error {
	mode := g.currentMode()
	switch mode {
	case watermark.RequireSync:
		if st := g.check(ctx, false); st.State != watermark.ReplicationSync {
			return fmt.Errorf("watermark postgres %s: %w: %w: %s", g.name, watermark.ErrUnavailable, watermark.ErrNotReplicated, st.Detail)
		}
	case watermark.WarnAsync:
		g.refresh() // decides nothing: no write waits for it
	}
	pc, err := g.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("watermark postgres %s: %w: %w", g.name, watermark.ErrUnavailable, err)
	}
	defer pc.Release()
	c := pc.Conn()
	delete(c.PgConn().CustomData(), warningKey)
	err = f(c)
	warning, warned := c.PgConn().CustomData()[warningKey].(string)
	if !warned || mode == watermark.IgnoreReplication {
		return err
	}
	g.last.Store(nil) // check again before the next write
	if mode == watermark.RequireSync {
		return fmt.Errorf("watermark postgres %s: %w: %w: the server warned during the commit: %s", g.name, watermark.ErrUnavailable, watermark.ErrNotReplicated, warning)
	}
	g.log.Load().Warn("watermark replication: the server warned during a commit; it may not have reached a standby", "warning", warning, "mode", mode)
	return err
}

// check returns the last check when it is still trusted (and !force), or
// makes a new one, one at a time, and logs it when its result changed. A
// caller that waited for another caller's check uses that one: it was made
// after the caller came (otherwise, while the pool opens connections, each
// waiter in turn would check again).
func (g *ReplicationGuard) check(ctx context.Context, force bool) watermark.ReplicationStatus {
	if !force {
		if c := g.trusted(); c != nil {
			return c.status
		}
	}
	seen := g.seq.Load()
	select {
	case g.sem <- struct{}{}:
	case <-ctx.Done():
		st := g.status(watermark.ReplicationUnknown, 0, "check not made (timed out waiting for another check)")
		st.Err = ctx.Err()
		return st
	}
	defer func() { <-g.sem }()
	if !force {
		if c := g.last.Load(); c != nil && c.seq > seen {
			return c.status // made while this call waited
		}
	}
	return g.recheck(ctx)
}

// refresh starts a check in the background when the last one is no longer
// trusted and no other check is running.
func (g *ReplicationGuard) refresh() {
	if g.trusted() != nil {
		return
	}
	select {
	case g.sem <- struct{}{}:
	default:
		return
	}
	go func() {
		defer func() { <-g.sem }()
		ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
		defer cancel()
		g.recheck(ctx)
	}()
}

// close waits for a running check and keeps any other from starting; the
// pool may then be closed. Closing twice does nothing.
func (g *ReplicationGuard) close() { g.closeOnce.Do(func() { g.sem <- struct{}{} }) }

// recheck makes a check, logs it when its result changed and returns it.
// The caller holds sem.
func (g *ReplicationGuard) recheck(ctx context.Context) watermark.ReplicationStatus {
	gen := g.gen.Load()
	st := g.query(ctx)
	prev := g.last.Swap(&replicationCheck{status: st, gen: gen, seq: g.seq.Add(1), at: time.Now()})
	if prev == nil || prev.status.State != st.State || prev.status.Detail != st.Detail {
		g.report(st)
	}
	return st
}

func (g *ReplicationGuard) trusted() *replicationCheck {
	c := g.last.Load()
	if c == nil || c.gen != g.gen.Load() || time.Since(c.at) >= ReplicationCheckInterval {
		return nil
	}
	return c
}

func (g *ReplicationGuard) report(st watermark.ReplicationStatus) {
	log := g.log.Load()
	args := []any{"state", st.State, "mode", st.Mode, "sync_standbys", st.SyncStandbys, "detail", st.Detail}
	if st.Err != nil {
		args = append(args, "err", st.Err)
	}
	switch {
	case st.State == watermark.ReplicationSync || st.Mode == watermark.IgnoreReplication:
		log.Info("watermark replication", args...)
	case st.Mode == watermark.RequireSync:
		log.Error("watermark replication: nothing is signed until commits are acknowledged by a synchronous standby", args...)
	default:
		log.Warn("watermark replication: a failover may lose the last marks", args...)
	}
}

func (g *ReplicationGuard) status(state watermark.ReplicationState, syncStandbys int, detail string) watermark.ReplicationStatus {
	return watermark.ReplicationStatus{Mode: g.currentMode(), State: state, SyncStandbys: syncStandbys, Detail: detail, CheckedAt: time.Now()}
}

// replicationSettings is what replicationSQL reads.
type replicationSettings struct {
	syncCommit   string // synchronous_commit of the session
	standbyNames string // synchronous_standby_names
	inRecovery   bool
	senders      int // WAL senders (standbys connected)
	unreadable   int // WAL senders whose state the role may not read
	syncStreams  int // streaming with sync_state sync or quorum
}

// query makes the check, twice if the first attempt fails: after a
// failover the pool still holds connections to the lost primary, and the
// first query on one only discards it.
func (g *ReplicationGuard) query(ctx context.Context) watermark.ReplicationStatus {
	var r replicationSettings
	var err error
	for range 2 {
		err = g.pool.QueryRow(ctx, replicationSQL).Scan(&r.syncCommit, &r.standbyNames, &r.inRecovery, &r.senders, &r.unreadable, &r.syncStreams)
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		st := g.status(watermark.ReplicationUnknown, 0, "check failed (the database could not be queried)")
		st.Err = err
		return st
	}
	state, detail := judge(r)
	return g.status(state, r.syncStreams, detail)
}

// judge decides whether commits made with these settings are acknowledged
// by a synchronous standby.
func judge(r replicationSettings) (watermark.ReplicationState, string) {
	names := fmt.Sprintf("synchronous_standby_names = %q", r.standbyNames)
	switch {
	case r.inRecovery:
		return watermark.ReplicationUnknown, "the server is a standby (in recovery)"
	case r.syncCommit == "off" || r.syncCommit == "local":
		return watermark.ReplicationAsync, fmt.Sprintf("synchronous_commit = %s: commits do not wait for any standby (%d connected)", r.syncCommit, r.senders)
	}
	need := syncStandbysRequired(r.standbyNames)
	switch {
	case need == 0:
		return watermark.ReplicationAsync, fmt.Sprintf("synchronous_standby_names is empty: commits do not wait for any standby (%d connected, asynchronous)", r.senders)
	case r.unreadable > 0:
		return watermark.ReplicationUnknown, fmt.Sprintf("%s, but this role cannot read pg_stat_replication (GRANT pg_monitor TO it)", names)
	case r.syncStreams < need:
		return watermark.ReplicationBlocked, fmt.Sprintf("%s wants %d synchronous standbys, %d streaming: commits wait (and time out) until they are back", names, need, r.syncStreams)
	}
	return watermark.ReplicationSync, fmt.Sprintf("commits wait for %d synchronous standby(s), %d streaming (%s, synchronous_commit = %s)", need, r.syncStreams, names, r.syncCommit)
}

// syncStandbysRequired returns how many standbys must acknowledge a commit
// under synchronous_standby_names s: 0 when s is empty, num_sync for
// "[FIRST] num_sync (names)" and "ANY num_sync (names)", else 1 (a plain
// list of names is FIRST 1).
func syncStandbysRequired(s string) int {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0
	}
	rest := s
	if kw, after, ok := strings.Cut(rest, " "); ok && (strings.EqualFold(kw, "FIRST") || strings.EqualFold(kw, "ANY")) {
		rest = strings.TrimSpace(after)
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	if end > 0 && strings.HasPrefix(strings.TrimSpace(rest[end:]), "(") {
		if n, err := strconv.Atoi(rest[:end]); err == nil && n > 0 {
			return n
		}
	}
	return 1
}
