// Package postgres keeps rolling budgets in a PostgreSQL table beside the watermarks, shared by many keyward instances: each debit locks the key's row, checks and commits before signing.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyward/keyward/internal/pgpool"
	"github.com/keyward/keyward/limits"
	"github.com/keyward/keyward/limits/internal/ledger"
)

func init() {
	limits.Register("postgres", openURL)
	limits.Register("postgresql", openURL)
}

// openURL opens the budgets in the watermark database.
func openURL(ctx context.Context, u *url.URL) (limits.Store, error) {
	return Open(ctx, u.String(), Options{})
}

// advisoryLockKey serializes this store's schema migrations between
// instances starting at once ("keywardL", distinct from the watermarks').
const advisoryLockKey int64 = 0x6b6579776172644c

const versionTable = "keyward_limits_schema_version"

// migrations[v-1] takes the schema from version v-1 to v. Append only.
var migrations = []string{
	// 1: one row per key: its budgets as ledger JSON.
	`CREATE TABLE keyward_limits (
		key        text        PRIMARY KEY,
		state      jsonb       NOT NULL,
		updated_at timestamptz NOT NULL DEFAULT now()
	)`,
}

// ErrSchemaTooNew: the database was migrated by a newer keyward.
var ErrSchemaTooNew = pgpool.ErrSchemaTooNew

// The statements.
const (
	// insertSQL makes sure the key has a row to lock; an existing row is
	// left alone (no write).
	insertSQL = `INSERT INTO keyward_limits (key, state) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`
	// lockSQL runs as its own statement after insertSQL, so under READ
	// COMMITTED it reads the latest committed state once it holds the
	// row lock: every debit of the key, by any instance, is decided on
	// the state the previous one committed.
	lockSQL   = `SELECT state FROM keyward_limits WHERE key = $1 FOR UPDATE`
	updateSQL = `UPDATE keyward_limits SET state = $2, updated_at = now() WHERE key = $1`
	readSQL   = `SELECT state FROM keyward_limits WHERE key = $1`
)

// Options tune a Store.
type Options struct {
	// Guard, when set, runs on the connection of each debit, inside its
	// transaction once the key's row is locked and before anything is
	// written (the hook for a replication guard: check a synchronous
	// standby is attached, or SET LOCAL synchronous_commit). An error
	// debits nothing and Debit fails with ErrUnavailable.
	Guard func(ctx context.Context, conn *pgx.Conn) error
	// Write, when set, runs each debit's transaction on a connection it
	// provides (watermark/postgres's ReplicationGuard.Write), so budgets
	// get the watermarks' replication guarantee; Credit and reads use the
	// store's own pool (a lost credit only makes a budget stricter).
	Write func(ctx context.Context, f func(c *pgx.Conn) error) error
}

// Store is the PostgreSQL budget store. Every call has its own deadline
// (the URL's call_timeout, default 2s); every database failure wraps
// limits.ErrUnavailable, so nothing is signed while the database cannot be
// written. Many processes may share one database: a debit locks its key's
// row (SELECT … FOR UPDATE in a READ COMMITTED transaction), checks every
// limit on the state the last debit committed, writes the new state and
// commits, all before Debit returns, so N instances never debit more than
// one budget allows.
type Store struct {
	pool *pgpool.Pool
	opts Options
}

var _ limits.Store = (*Store)(nil)

// Open connects to the database named by the URL dsn (the watermark URL:
// see watermark/postgres for the parameters, call_timeout included), then
// creates or migrates the table keyward_limits. The role needs, at the first
// start, the right to create tables, and afterwards SELECT, INSERT and
// UPDATE on keyward_limits and keyward_limits_schema_version. The database
// must be reachable: Open fails (wrapping limits.ErrUnavailable) rather
// than start without the budgets.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	pool, err := pgpool.Open(ctx, dsn)
	if errors.Is(err, pgpool.ErrConfig) {
		return nil, fmt.Errorf("limits postgres: %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("limits postgres: %w: %w", limits.ErrUnavailable, err)
	}
	s := &Store{pool: pool, opts: opts}
	if err := pool.Migrate(ctx, versionTable, advisoryLockKey, migrations); err != nil {
		pool.Close()
		if errors.Is(err, ErrSchemaTooNew) {
			return nil, fmt.Errorf("limits postgres %s: %w", pool.Name, err)
		}
		return nil, s.unavailable("schema", err)
	}
	return s, nil
}

func (s *Store) unavailable(what string, err error) error {
	return fmt.Errorf("limits postgres %s: %s: %w: %w", s.pool.Name, what, limits.ErrUnavailable, err)
}

// update runs f on key's state under the row lock and, when f returns
// write = true, writes the state f leaves, in one transaction committed
// before update returns: BEGIN, the insert and the locking read in one
// round trip, then the update and COMMIT in another, so the row lock is
// held for one round trip and the commit. An error of f is returned as
// is, with nothing written.
func (s *Store) update(ctx context.Context, key string, guard bool, f func(st *ledger.State) (write bool, err error)) error {
	ctx, cancel := s.pool.Call(ctx)
	defer cancel()
	if guard && s.opts.Write != nil {
		// A debit goes through the watermark store's replication guard, on
		// its connection: the same check, the same synchronous_commit and
		// the same refusal of a commit the standby never acknowledged.
		var inner error
		err := s.opts.Write(ctx, func(c *pgx.Conn) error {
			inner = s.updateOn(ctx, c, key, guard, f)
			return inner
		})
		if err != nil && err != inner {
			return s.unavailable(key+": replication guard", err)
		}
		return err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return s.unavailable(key, err)
	}
	defer conn.Release() // a connection still in a transaction is closed, not reused
	return s.updateOn(ctx, conn.Conn(), key, guard, f)
}

// updateOn is update's transaction on the connection conn.
func (s *Store) updateOn(ctx context.Context, conn *pgx.Conn, key string, guard bool, f func(st *ledger.State) (write bool, err error)) error {
	empty, err := ledger.New(key).Marshal()
	if err != nil {
		return err
	}
	rollback := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.pool.Timeout)
		defer cancel()
		conn.Exec(rctx, "ROLLBACK")
	}
	var raw []byte
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(insertSQL, key, string(empty))
	b.Queue(lockSQL, key).QueryRow(func(row pgx.Row) error { return row.Scan(&raw) })
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		rollback()
		return s.unavailable(key, err)
	}
	st, err := decodeRow(key, raw)
	if err != nil {
		rollback()
		return s.unavailable(key, err)
	}
	write, err := f(st)
	if err != nil || !write {
		rollback()
		return err
	}
	if guard && s.opts.Guard != nil {
		if err := s.opts.Guard(ctx, conn); err != nil {
			rollback()
			return s.unavailable(key+": guard", err)
		}
	}
	data, err := st.Marshal()
	if err != nil {
		rollback()
		return err
	}
	b = &pgx.Batch{}
	b.Queue(updateSQL, key, string(data))
	b.Queue("COMMIT")
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		// Committed or not, nothing is signed; a debit that did commit
		// only makes the budget stricter.
		return s.unavailable(key, err)
	}
	return nil
}

// decodeRow decodes the state of key's row.
func decodeRow(key string, raw []byte) (*ledger.State, error) {
	st, err := ledger.Unmarshal(raw)
	if err == nil && st.Key != key {
		err = fmt.Errorf("%w: row %q holds the budgets of %q", ledger.ErrCorrupt, key, st.Key)
	}
	return st, err
}

// read returns key's latest committed state (empty without a row), without locking.
func (s *Store) read(ctx context.Context, key string) (*ledger.State, error) {
	ctx, cancel := s.pool.Call(ctx)
	defer cancel()
	var raw []byte
	err := s.pool.QueryRow(ctx, readSQL, key).Scan(&raw)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return ledger.New(key), nil
	case err != nil:
		return nil, s.unavailable(key, err)
	}
	st, err := decodeRow(key, raw)
	if err != nil {
		return nil, s.unavailable(key, err)
	}
	return st, nil
}

// Debit implements limits.Store. A request the latest committed state
// already refuses is refused on that read, without taking the row lock
// (the refusal holds at the moment of the read, so racing refusals never
// queue behind the debits). Otherwise one transaction locks the key's row,
// decides again on the state the last debit committed, writes and commits.
func (s *Store) Debit(ctx context.Context, key string, ls []limits.Limit, sp limits.Spend, now time.Time) (limits.Debit, error) {
	if len(ls) == 0 {
		return limits.Debit{}, nil
	}
	if err := limits.Check(ls); err != nil {
		return limits.Debit{}, err
	}
	decide := func(st *ledger.State) (limits.Debit, error) {
		d, err := st.Debit(ls, sp, now)
		if errors.Is(err, ledger.ErrClockBehind) {
			return d, s.unavailable(key, err)
		}
		return d, err
	}
	st, err := s.read(ctx, key)
	if err != nil {
		return limits.Debit{}, err
	}
	if _, err := decide(st); err != nil {
		return limits.Debit{}, err
	}
	var d limits.Debit
	err = s.update(ctx, key, true, func(st *ledger.State) (bool, error) {
		var err error
		d, err = decide(st)
		return err == nil, err
	})
	if err != nil {
		return limits.Debit{}, err
	}
	return d, nil
}

// Credit implements limits.Store in one transaction, as Debit.
func (s *Store) Credit(ctx context.Context, d limits.Debit) error {
	if len(d.Budgets) == 0 {
		return nil
	}
	return s.update(ctx, d.Key, false, func(st *ledger.State) (bool, error) {
		st.Credit(d)
		return true, nil
	})
}

// Usage implements limits.Store with one read of the key's row.
func (s *Store) Usage(ctx context.Context, key string, ls []limits.Limit, now time.Time) ([]limits.Usage, error) {
	st, err := s.read(ctx, key)
	if err != nil {
		return nil, err
	}
	return st.Usage(ls, now), nil
}

// Ready implements limits.Store with a committed one-row write, which
// fails when the server is down, read-only or a standby.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.pool.Ping(ctx, versionTable); err != nil {
		return s.unavailable("ready", err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be returned.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// String names the store by its redacted URL.
func (s *Store) String() string { return s.pool.Name }
