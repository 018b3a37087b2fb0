// Package postgres keeps watermarks in a PostgreSQL table shared by many keyward instances, advancing each mark with one conditional statement committed before signing.
package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyward/keyward/watermark"
)

func init() {
	watermark.Register("postgres", openURL)
	watermark.Register("postgresql", openURL)
}

// DefaultCallTimeout bounds every call to the database unless the URL sets
// call_timeout.
const DefaultCallTimeout = 2 * time.Second

// defaultMaxConns is the pool size when the URL does not set pool_max_conns
// (pgx's own default, max(4, CPUs), is too small for many keys at once).
const defaultMaxConns = 16

// advisoryLockKey serializes schema migrations between instances starting
// at once (pg_advisory_xact_lock on this constant, per database).
const advisoryLockKey int64 = 0x6b65797761726431 // "keyward1"

// migrations[v-1] takes the schema from version v-1 to v. Append only.
var migrations = []string{
	// 1: the marks.
	`CREATE TABLE keyward_watermarks (
		key        text        NOT NULL,
		chain      text        NOT NULL,
		kind       smallint    NOT NULL,
		level      bigint      NOT NULL,
		round      bigint      NOT NULL,
		digest     bytea       NOT NULL,
		signature  bytea,
		updated_at timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (key, chain, kind)
	)`,
	// 2: what Revert needs (see revertSQL). The table is renamed so that a
	// keyward still running the version 1 statements fails (store
	// unavailable, nothing signed) instead of passing identical retries
	// without counting them, which would let this version revert a mark
	// the old one signed.
	`ALTER TABLE keyward_watermarks RENAME TO keyward_marks;
	ALTER INDEX keyward_watermarks_pkey RENAME TO keyward_marks_pkey;
	ALTER TABLE keyward_marks
		ADD COLUMN passes         smallint NOT NULL DEFAULT 0 CHECK (passes BETWEEN 0 AND 2),
		ADD COLUMN prev_level     bigint,
		ADD COLUMN prev_round     bigint,
		ADD COLUMN prev_digest    bytea,
		ADD COLUMN prev_signature bytea,
		ADD CONSTRAINT keyward_marks_prev_whole
			CHECK ((prev_level IS NULL) = (prev_round IS NULL) AND (prev_level IS NULL) = (prev_digest IS NULL))`,
}

// SchemaVersion is the schema version this package creates and expects.
var SchemaVersion = len(migrations)

// ErrSchemaTooNew: the database was migrated by a newer keyward.
var ErrSchemaTooNew = errors.New("watermark schema is newer than this keyward")

// Store is the PostgreSQL watermark store. Every call has its own deadline;
// every database failure wraps watermark.ErrUnavailable, so nothing is signed
// while the database cannot be written. Many processes may share one database.
//
// The table keyward_marks holds one row per ID: the mark (level, round,
// digest, signature) and, for Revert, the mark the last strictly-higher
// Advance replaced (prev_*) and passes: 1 when only that Advance has passed
// on the mark, 2 once any other Advance passed on it (an identical retry,
// through any instance), 0 for a mark written by Set or Revert or carried
// over from schema version 1.
type Store struct {
	pool    *pgxpool.Pool
	repl    *ReplicationGuard
	timeout time.Duration
	name    string // redacted URL, for errors
}

var (
	_ watermark.Store      = (*Store)(nil)
	_ watermark.Reverter   = (*Store)(nil)
	_ watermark.Replicated = (*Store)(nil)
)

// openURL opens postgres://… or postgresql://… (the whole URL is the DSN).
func openURL(ctx context.Context, u *url.URL) (watermark.Store, error) {
	return Open(ctx, u.String())
}

// Open connects to the database named by the URL dsn, then creates or
// migrates the schema. Besides libpq's and pgx's parameters (sslmode,
// connect_timeout, pool_max_conns, pool_max_conn_lifetime,
// pool_max_conn_idle_time, pool_health_check_period, search_path, …) the URL
// may carry call_timeout, a Go duration bounding each call (default 2s):
//
//	postgres://keyward@db.internal:5432/keyward?sslmode=verify-full&pool_max_conns=32&call_timeout=1s
//
// Several hosts may be named, as libpq and pgx allow, with
// target_session_attrs=read-write so that only the primary is used:
//
//	postgres://keyward@db1:5432,db2:5432/keyward?target_session_attrs=read-write
//
// After the primary is lost every call fails (nothing is signed) until one
// of the hosts accepts writes again; the pool then connects to it by itself.
// With watermark_replication (SetReplicationMode), the role needs pg_monitor
// to see its synchronous standbys in pg_stat_replication; see
// ReplicationGuard.
//
// The pool holds 16 connections unless pool_max_conns says otherwise.
// Behind PgBouncer in transaction mode add
// default_query_exec_mode=simple_protocol (or exec), since cached prepared
// statements do not survive a change of server connection; under
// require-sync, set synchronous_commit on the role there (ALTER ROLE … SET
// synchronous_commit = on), since a session SET does not follow the client
// either. Sessions are opened with client_min_messages = warning. The
// password may come from the URL, PGPASSWORD or ~/.pgpass; errors show only
// the redacted URL.
//
// The role needs, at the first start, the right to create tables in the
// first schema of its search_path (on PostgreSQL 15 and later: own the
// database, or a schema named in search_path), and afterwards SELECT,
// INSERT and UPDATE on keyward_marks and keyward_schema_version. A schema
// migration (version 1 to 2 renames keyward_watermarks to keyward_marks and
// adds columns) needs the tables' owner. Once one instance has migrated,
// instances of an older keyward fail with the store unavailable until they
// are upgraded too: they would not count identical retries, which Revert
// relies on.
//
// The database must be reachable: Open fails (wrapping
// watermark.ErrUnavailable) rather than start without the marks.
func Open(ctx context.Context, dsn string) (*Store, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("watermark postgres: need a postgres:// URL")
	}
	name := u.Redacted()
	q := u.Query()
	timeout := DefaultCallTimeout
	if v := q.Get("call_timeout"); v != "" {
		timeout, err = time.ParseDuration(v)
		if err != nil || timeout <= 0 {
			return nil, fmt.Errorf("watermark postgres %s: call_timeout %q: want a positive duration like 2s", name, v)
		}
		q.Del("call_timeout")
	}
	setMax := !q.Has("pool_max_conns")
	u.RawQuery = q.Encode()
	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		// pgx's parse errors may quote the DSN; name only the redacted URL.
		return nil, fmt.Errorf("watermark postgres %s: invalid connection URL", name)
	}
	if setMax {
		cfg.MaxConns = defaultMaxConns
	}
	// Advance relies on READ COMMITTED: each statement sees the latest
	// committed marks, and ON CONFLICT re-checks under the row lock rather
	// than failing with a serialization error. A database or role default of
	// REPEATABLE READ or SERIALIZABLE is overridden for these sessions.
	cfg.ConnConfig.RuntimeParams["default_transaction_isolation"] = "read committed"
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "keyward"
	}
	if cfg.ConnConfig.ConnectTimeout == 0 || cfg.ConnConfig.ConnectTimeout > timeout {
		cfg.ConnConfig.ConnectTimeout = timeout
	}
	repl := newReplicationGuard(cfg, name, timeout)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("watermark postgres %s: %w: %w", name, watermark.ErrUnavailable, err)
	}
	repl.pool = pool
	s := &Store{pool: pool, repl: repl, timeout: timeout, name: name}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// call returns ctx bounded by the per-call timeout.
func (s *Store) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

func (s *Store) unavailable(what string, err error) error {
	return fmt.Errorf("watermark postgres %s: %s: %w: %w", s.name, what, watermark.ErrUnavailable, err)
}

// migrate creates the schema or brings it to SchemaVersion, in one
// transaction holding an advisory lock so instances starting together take
// turns. Migration is bounded by 10 call timeouts (other instances may hold
// the lock briefly).
func (s *Store) migrate(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*s.timeout)
	defer cancel()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, advisoryLockKey); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS keyward_schema_version (
			id         smallint    PRIMARY KEY CHECK (id = 1),
			version    integer     NOT NULL,
			checked_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO keyward_schema_version (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING`); err != nil {
			return err
		}
		var v int
		if err := tx.QueryRow(ctx, `SELECT version FROM keyward_schema_version WHERE id = 1 FOR UPDATE`).Scan(&v); err != nil {
			return err
		}
		if v > len(migrations) {
			return fmt.Errorf("%w: database at version %d, this keyward knows up to %d", ErrSchemaTooNew, v, len(migrations))
		}
		for ; v < len(migrations); v++ {
			if _, err := tx.Exec(ctx, migrations[v]); err != nil {
				return fmt.Errorf("migration to version %d: %w", v+1, err)
			}
		}
		_, err := tx.Exec(ctx, `UPDATE keyward_schema_version SET version = $1, checked_at = now() WHERE id = 1`, v)
		return err
	})
	switch {
	case errors.Is(err, ErrSchemaTooNew):
		return fmt.Errorf("watermark postgres %s: %w", s.name, err)
	case err != nil:
		return s.unavailable("schema", err)
	}
	return nil
}

// higher is true in ON CONFLICT DO UPDATE when the request is strictly
// above the stored mark (t is the stored row, excluded the request).
const higher = `(excluded.level, excluded.round) > (t.level, t.round)`

// The statements. Each runs alone, so it commits (durably, with the server's
// synchronous_commit) before the call returns.
const (
	// advanceSQL inserts the mark, moves it up, or counts an identical
	// retry; a row (with the stored signature, NULL unless a retry found
	// one) is returned only when the request passed. Under the row lock ON
	// CONFLICT takes, the WHERE sees the latest committed mark, so of two
	// different payloads at one (level, round) at most one ever passes, and
	// every pass is recorded in passes before the call returns: moving up
	// keeps the replaced mark in prev_* and sets passes to 1, a retry sets
	// it to 2.
	advanceSQL = `INSERT INTO keyward_marks AS t (key, chain, kind, level, round, digest, signature, passes, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, NULL, 1, now())
		ON CONFLICT (key, chain, kind) DO UPDATE SET
			level          = excluded.level,
			round          = excluded.round,
			digest         = excluded.digest,
			signature      = CASE WHEN ` + higher + ` THEN NULL ELSE t.signature END,
			prev_level     = CASE WHEN ` + higher + ` THEN t.level ELSE t.prev_level END,
			prev_round     = CASE WHEN ` + higher + ` THEN t.round ELSE t.prev_round END,
			prev_digest    = CASE WHEN ` + higher + ` THEN t.digest ELSE t.prev_digest END,
			prev_signature = CASE WHEN ` + higher + ` THEN t.signature ELSE t.prev_signature END,
			passes         = CASE WHEN ` + higher + ` THEN 1 ELSE 2 END,
			updated_at     = CASE WHEN ` + higher + ` THEN excluded.updated_at ELSE t.updated_at END
		WHERE ` + higher + `
			OR (excluded.level = t.level AND excluded.round = t.round AND excluded.digest = t.digest)
		RETURNING t.signature`
	markSQL   = `SELECT level, round, digest, signature FROM keyward_marks WHERE key = $1 AND chain = $2 AND kind = $3`
	setSigSQL = `UPDATE keyward_marks SET signature = $7
		WHERE key = $1 AND chain = $2 AND kind = $3 AND level = $4 AND round = $5 AND digest = $6`
	// revertSQL puts the replaced mark back when the mark is still exactly
	// the request's, unsigned, and passed only by the Advance that set it.
	// The restored mark has passes 0 and no prev_*, so it is never
	// reverted in turn.
	revertSQL = `UPDATE keyward_marks SET
			level = prev_level, round = prev_round, digest = prev_digest, signature = prev_signature,
			prev_level = NULL, prev_round = NULL, prev_digest = NULL, prev_signature = NULL,
			passes = 0, updated_at = now()
		WHERE key = $1 AND chain = $2 AND kind = $3 AND level = $4 AND round = $5 AND digest = $6
			AND signature IS NULL AND passes = 1 AND prev_level IS NOT NULL`
	setSQL = `INSERT INTO keyward_marks AS t (key, chain, kind, level, round, digest, signature, passes, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 0, now())
		ON CONFLICT (key, chain, kind) DO UPDATE
		SET level = excluded.level, round = excluded.round, digest = excluded.digest, signature = excluded.signature,
			prev_level = NULL, prev_round = NULL, prev_digest = NULL, prev_signature = NULL,
			passes = 0, updated_at = excluded.updated_at`
	marksSQL = `SELECT key, chain, kind, level, round, digest, signature FROM keyward_marks ORDER BY key, chain, kind`
	// readySQL is a real write: it fails on a read-only server or standby.
	readySQL = `UPDATE keyward_schema_version SET checked_at = now() WHERE id = 1`
)

// maxAttempts bounds Advance's loop; it repeats only when a mark was lowered
// (Set, Revert) between its two statements.
const maxAttempts = 8

// Advance implements watermark.Store. Whether the request passes (strictly
// higher, or an identical retry) is decided and recorded by one conditional
// upsert, committed before Advance returns. When the upsert changes nothing,
// the current mark is read (a later snapshot than the one the upsert saw,
// never an older mark unless Set or Revert lowered it, in which case Advance
// starts over) and the request is refused against it. Each outcome is
// decided by one committed state of the row, so Advance is linearizable
// across processes.
func (s *Store) Advance(ctx context.Context, id watermark.ID, level, round int64, digest []byte) ([]byte, error) {
	if len(digest) != 32 {
		return nil, fmt.Errorf("watermark postgres %s: digest is %d bytes, want 32", id, len(digest))
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	var sig []byte
	err := s.repl.Write(ctx, func(c *pgx.Conn) error {
		var err error
		sig, err = s.advance(ctx, c, id, level, round, digest)
		return err
	})
	return sig, err
}

func (s *Store) advance(ctx context.Context, c *pgx.Conn, id watermark.ID, level, round int64, digest []byte) ([]byte, error) {
	kind := int16(id.Kind)
	for attempt := 0; attempt < maxAttempts; attempt++ {
		var sig []byte
		err := c.QueryRow(ctx, advanceSQL, id.Key, id.Chain, kind, level, round, digest).Scan(&sig)
		if err == nil {
			if len(sig) == 0 {
				sig = nil // an empty stored signature is none
			}
			return sig, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return nil, s.unavailable(id.String(), err)
		}
		var have watermark.Mark
		err = c.QueryRow(ctx, markSQL, id.Key, id.Chain, kind).Scan(&have.Level, &have.Round, &have.Digest, &have.Signature)
		if errors.Is(err, pgx.ErrNoRows) {
			continue // deleted by hand in between: start over
		}
		if err != nil {
			return nil, s.unavailable(id.String(), err)
		}
		if !watermark.Above(have.Level, have.Round, level, round) && !(have.Level == level && have.Round == round && !bytes.Equal(have.Digest, digest)) {
			// Lowered by Set or Revert in between (to the request's mark or
			// below it): start over, so that the pass is counted.
			continue
		}
		return nil, &watermark.RefusedError{ID: id, Have: have, Level: level, Round: round}
	}
	return nil, s.unavailable(id.String(), fmt.Errorf("mark kept moving down under %d attempts", maxAttempts))
}

// Revert implements watermark.Reverter with one conditional UPDATE (see
// revertSQL), committed before it returns. Passes are counted in the
// database, so Revert is sound across instances, and it still works after a
// restart of the instance (a restarted instance only calls it after an
// Advance of its own, which counts). A mark carried over from schema
// version 1, set by Set, restored by Revert, or the first mark of an ID is
// never reverted.
func (s *Store) Revert(ctx context.Context, id watermark.ID, level, round int64, digest []byte) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	if _, err := s.pool.Exec(ctx, revertSQL, id.Key, id.Chain, int16(id.Kind), level, round, digest); err != nil {
		return s.unavailable(id.String()+": revert", err)
	}
	return nil
}

// SetSignature implements watermark.Store: one UPDATE matching the exact
// mark. It commits without waiting for the WAL flush (synchronous_commit off
// for this transaction only): a crash may lose the signature, never the
// mark, and an identical retry is then signed afresh, which is safe.
func (s *Store) SetSignature(ctx context.Context, id watermark.ID, level, round int64, digest, sig []byte) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(`SET LOCAL synchronous_commit = off`)
	b.Queue(setSigSQL, id.Key, id.Chain, int16(id.Kind), level, round, digest, sig)
	b.Queue(`COMMIT`)
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return s.unavailable(id.String(), err)
	}
	return nil
}

// Marks implements watermark.Store.
func (s *Store) Marks(ctx context.Context) ([]watermark.Entry, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, marksSQL)
	if err != nil {
		return nil, s.unavailable("marks", err)
	}
	out := []watermark.Entry{}
	for rows.Next() {
		var e watermark.Entry
		var kind int16
		if err := rows.Scan(&e.ID.Key, &e.ID.Chain, &kind, &e.Mark.Level, &e.Mark.Round, &e.Mark.Digest, &e.Mark.Signature); err != nil {
			rows.Close()
			return nil, s.unavailable("marks", err)
		}
		if kind < 0 || kind > 0xff {
			rows.Close()
			return nil, s.unavailable("marks", fmt.Errorf("%s/%s: kind %d is not a byte", e.ID.Key, e.ID.Chain, kind))
		}
		e.ID.Kind = byte(kind)
		if len(e.Mark.Digest) == 0 {
			e.Mark.Digest = nil // set by hand without a digest (Set stores it as empty)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.unavailable("marks", err)
	}
	return out, nil
}

// Set implements watermark.Store: an unconditional upsert, committed before
// it returns.
func (s *Store) Set(ctx context.Context, id watermark.ID, m watermark.Mark) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	digest := m.Digest
	if digest == nil {
		digest = []byte{} // a mark set by hand may have no digest; the column is NOT NULL
	}
	if _, err := s.pool.Exec(ctx, setSQL, id.Key, id.Chain, int16(id.Kind), m.Level, m.Round, digest, m.Signature); err != nil {
		return s.unavailable(id.String(), err)
	}
	return nil
}

// Ready implements watermark.Store with a committed one-row write through
// the replication guard, which fails when the server is down, read-only or
// a standby, and under require-sync when its commits are not acknowledged by
// a synchronous standby (checked anew for each call, unless the mode is
// ignore).
func (s *Store) Ready(ctx context.Context) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	if s.repl.currentMode() != watermark.IgnoreReplication {
		s.repl.check(ctx, true)
	}
	err := s.repl.Write(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, readySQL)
		return err
	})
	switch {
	case errors.Is(err, watermark.ErrUnavailable):
		return err
	case err != nil:
		return s.unavailable("ready", err)
	}
	return nil
}

// SetReplicationMode implements watermark.Replicated (see ReplicationGuard).
// A store opened without it checks nothing before signing (ignore).
func (s *Store) SetReplicationMode(ctx context.Context, mode watermark.ReplicationMode, log *slog.Logger) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	return s.repl.setMode(ctx, mode, log)
}

// ReplicationStatus implements watermark.Replicated.
func (s *Store) ReplicationStatus(ctx context.Context) watermark.ReplicationStatus {
	ctx, cancel := s.call(ctx)
	defer cancel()
	return s.repl.Status(ctx)
}

// Replication returns the guard the store's durable writes go through, for
// other ledgers kept in the same database (see ReplicationGuard).
func (s *Store) Replication() *ReplicationGuard { return s.repl }

// Close closes the pool, waiting for connections in use to be returned (and
// for a replication check in progress).
func (s *Store) Close() error {
	s.repl.close()
	s.pool.Close()
	return nil
}

// String names the store by its redacted URL.
func (s *Store) String() string { return s.name }
