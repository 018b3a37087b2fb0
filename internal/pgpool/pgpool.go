// Package pgpool opens keyward's PostgreSQL connection pools (per-call timeout from the URL, READ COMMITTED sessions, pool size) and migrates a store's schema under an advisory lock.
package pgpool

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyward/keyward/internal/redact"
)

// DefaultCallTimeout bounds every call to the database unless the URL sets
// call_timeout.
const DefaultCallTimeout = 2 * time.Second

// defaultMaxConns is the pool size when the URL does not set pool_max_conns
// (pgx's own default, max(4, CPUs), is too small for many keys at once).
const defaultMaxConns = 16

// Pool is an open pool with the store's call timeout and redacted URL.
type Pool struct {
	*pgxpool.Pool
	Timeout time.Duration
	Name    string // the redacted URL, for errors
}

// ErrConfig: the URL is not a usable postgres:// URL; the error names only
// the redacted URL.
var ErrConfig = errors.New("invalid PostgreSQL URL")

// Open connects a pool to the database named by dsn (postgres:// or
// postgresql://). Besides libpq's and pgx's parameters the URL may carry
// call_timeout, a Go duration bounding each call (default 2s). Sessions run
// READ COMMITTED whatever the database default (the stores' statements rely
// on each statement seeing the latest committed rows), with
// application_name keyward unless the URL names one; the pool holds 16
// connections unless pool_max_conns says otherwise, and a connection
// attempt is bounded by the call timeout too.
//
// configure, when not nil, adjusts the configuration last, before the pool
// connects: a store's own session settings and connection hooks. A URL
// that cannot be used fails with an error wrapping ErrConfig.
func Open(ctx context.Context, dsn string, configure func(cfg *pgxpool.Config, p *Pool)) (*Pool, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("%w: need a postgres:// URL", ErrConfig)
	}
	p := &Pool{Timeout: DefaultCallTimeout, Name: redact.StoreURL(dsn)}
	q := u.Query()
	if v := q.Get("call_timeout"); v != "" {
		p.Timeout, err = time.ParseDuration(v)
		if err != nil || p.Timeout <= 0 {
			return nil, fmt.Errorf("%w: %s: call_timeout %q: want a positive duration like 2s", ErrConfig, p.Name, v)
		}
		q.Del("call_timeout")
	}
	setMax := !q.Has("pool_max_conns")
	u.RawQuery = q.Encode()
	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		// pgx's parse errors may quote the DSN; name only the redacted URL.
		return nil, fmt.Errorf("%w: %s", ErrConfig, p.Name)
	}
	if setMax {
		cfg.MaxConns = defaultMaxConns
	}
	rp := cfg.ConnConfig.RuntimeParams
	rp["default_transaction_isolation"] = "read committed"
	if _, ok := rp["application_name"]; !ok {
		rp["application_name"] = "keyward"
	}
	if cfg.ConnConfig.ConnectTimeout == 0 || cfg.ConnConfig.ConnectTimeout > p.Timeout {
		cfg.ConnConfig.ConnectTimeout = p.Timeout
	}
	if configure != nil {
		configure(cfg, p)
	}
	if p.Pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", p.Name, err)
	}
	return p, nil
}

// Call returns ctx bounded by the per-call timeout.
func (p *Pool) Call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, p.Timeout)
}

// ErrSchemaTooNew: the database was migrated by a newer keyward.
var ErrSchemaTooNew = errors.New("schema is newer than this keyward")

// Migrate creates a store's schema or brings it to len(migrations): in one
// transaction holding the advisory lock lockKey (so instances starting
// together take turns), versionTable (one row) records the version and
// migrations[v-1] takes it from v-1 to v. Migration is bounded by ten call
// timeouts.
func (p *Pool) Migrate(ctx context.Context, versionTable string, lockKey int64, migrations []string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*p.Timeout)
	defer cancel()
	table := pgx.Identifier{versionTable}.Sanitize()
	return pgx.BeginFunc(ctx, p.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (
			id         smallint    PRIMARY KEY CHECK (id = 1),
			version    integer     NOT NULL,
			checked_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+table+` (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING`); err != nil {
			return err
		}
		var v int
		if err := tx.QueryRow(ctx, `SELECT version FROM `+table+` WHERE id = 1 FOR UPDATE`).Scan(&v); err != nil {
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
		_, err := tx.Exec(ctx, `UPDATE `+table+` SET version = $1, checked_at = now() WHERE id = 1`, v)
		return err
	})
}

// Ping is a committed one-row write to versionTable, which fails when the
// server is down, read-only or a standby. It tries twice: after a failover
// the first idle connection of the pool is the dead one to the old
// primary, and the pool replaces it on that failure.
func (p *Pool) Ping(ctx context.Context, versionTable string) error {
	ctx, cancel := p.Call(ctx)
	defer cancel()
	q := `UPDATE ` + pgx.Identifier{versionTable}.Sanitize() + ` SET checked_at = now() WHERE id = 1`
	_, err := p.Exec(ctx, q)
	if err != nil && ctx.Err() == nil {
		_, err = p.Exec(ctx, q)
	}
	return err
}
