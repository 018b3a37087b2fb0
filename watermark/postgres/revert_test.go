package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/watermark"
	"github.com/keyward/keyward/watermark/postgres"
)

func markOf(t *testing.T, s watermark.Store, id watermark.ID) watermark.Mark {
	t.Helper()
	es, err := s.Marks(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.ID == id {
			return e.Mark
		}
	}
	t.Fatalf("no mark for %s", id)
	return watermark.Mark{}
}

func isRefusal(err error) bool {
	var re *watermark.RefusedError
	return errors.As(err, &re)
}

// Passes are counted in the database: a mark advanced before a restart
// with no other pass since may be reverted afterwards (only the Advance that
// set it passed, and a caller reverts only after its own Advance), and one
// retried through another instance may not.
func TestRevert_CountsPassesAcrossInstancesAndRestarts(t *testing.T) {
	c := pgtest.Start(t)
	a := open(t, c.DSN())
	id := newID(t)
	for l := int64(1); l <= 2; l++ {
		if _, err := a.Advance(ctxT(t), id, l, 0, digest(fmt.Sprint(l))); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()
	a = open(t, c.DSN())
	if err := a.Revert(ctxT(t), id, 2, 0, digest("2")); err != nil {
		t.Fatal(err)
	}
	if m := markOf(t, a, id); m.Level != 1 {
		t.Fatalf("mark at level %d after Revert across a restart, want 1", m.Level)
	}

	b := open(t, c.DSN())
	if _, err := a.Advance(ctxT(t), id, 2, 0, digest("2")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Advance(ctxT(t), id, 2, 0, digest("2")); err != nil { // the retry on the other instance
		t.Fatal(err)
	}
	if err := a.Revert(ctxT(t), id, 2, 0, digest("2")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Advance(ctxT(t), id, 2, 0, digest("other")); !isRefusal(err) {
		t.Fatalf("other payload after a retry on another instance: %v, want *RefusedError", err)
	}
}

// Two instances: the failing request (Advance, Revert) on one, its
// identical retry (Advance, SetSignature) on the other, raced many times.
// The retry always passes and is signed, so another payload at that level
// must always be refused afterwards. The race must go both ways: some
// Reverts take effect (before the retry, which then advances afresh) and
// some are blocked (after the retry passed); the row's passes column tells
// which (1: the retry advanced after an effective Revert, 2: it counted as
// a second pass). The retry starts 0 to 1.75 ms late, varying by iteration,
// and the test runs until each way was seen 10 times (2,000 iterations at
// most).
func TestRevert_TwoInstancesRetryRaceNeverFreesTheLevel(t *testing.T) {
	c := pgtest.Start(t)
	a, b := open(t, c.DSN()), open(t, c.DSN())
	conn, err := pgx.Connect(ctxT(t), c.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	const want, maxIterations = 10, 2000
	called, effective, blocked, i := 0, 0, 0, 0
	for ; i < maxIterations && (i < 200 || effective < want || blocked < want); i++ {
		id := newID(t)
		if _, err := a.Advance(ctxT(t), id, 100, 0, digest("a")); err != nil {
			t.Fatal(err)
		}
		d := digest(fmt.Sprint("b", i))
		var wg sync.WaitGroup
		var errA, errB error
		var didRevert bool
		wg.Add(2)
		go func() {
			defer wg.Done()
			sig, err := a.Advance(ctxT(t), id, 101, 0, d)
			if err == nil && sig == nil {
				didRevert = true
				err = a.Revert(ctxT(t), id, 101, 0, d)
			}
			errA = err
		}()
		jitter := time.Duration(i%8) * 250 * time.Microsecond // spreads the interleavings
		go func() {
			defer wg.Done()
			time.Sleep(jitter)
			_, err := b.Advance(ctxT(t), id, 101, 0, d)
			if err == nil && i%2 == 0 {
				err = b.SetSignature(ctxT(t), id, 101, 0, d, []byte("sig"))
			}
			errB = err
		}()
		wg.Wait()
		if errA != nil || errB != nil {
			t.Fatalf("iteration %d: %v / %v", i, errA, errB)
		}
		if m := markOf(t, b, id); m.Level != 101 || !bytes.Equal(m.Digest, d) {
			t.Fatalf("iteration %d: mark level %d digest %x, want the retried payload at 101", i, m.Level, m.Digest)
		}
		var passes int16
		if err := conn.QueryRow(ctxT(t), `SELECT passes FROM keyward_marks WHERE key = $1`, id.Key).Scan(&passes); err != nil {
			t.Fatal(err)
		}
		if didRevert {
			called++
		}
		switch {
		case passes == 1 && !didRevert:
			t.Fatalf("iteration %d: the mark was advanced afresh without a Revert", i)
		case passes == 1:
			effective++
		default:
			blocked++
		}
		if _, err := a.Advance(ctxT(t), id, 101, 0, digest("other")); !isRefusal(err) {
			t.Fatalf("iteration %d: other payload at the signed level: %v, want *RefusedError", i, err)
		}
	}
	t.Logf("%d iterations: %d failing requests called Revert, %d Reverts took effect, %d were blocked by the retry", i, called, effective, blocked)
	if effective < want || blocked < want {
		t.Fatalf("after %d iterations %d Reverts took effect and %d were blocked, want %d of each: the race was not exercised", i, effective, blocked, want)
	}
}

// schemaV1 is the schema a keyward of schema version 1 created.
const schemaV1 = `CREATE TABLE keyward_schema_version (
		id         smallint    PRIMARY KEY CHECK (id = 1),
		version    integer     NOT NULL,
		checked_at timestamptz NOT NULL DEFAULT now()
	);
	INSERT INTO keyward_schema_version (id, version) VALUES (1, 1);
	CREATE TABLE keyward_watermarks (
		key        text        NOT NULL,
		chain      text        NOT NULL,
		kind       smallint    NOT NULL,
		level      bigint      NOT NULL,
		round      bigint      NOT NULL,
		digest     bytea       NOT NULL,
		signature  bytea,
		updated_at timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (key, chain, kind)
	)`

// advanceV1 is the statement a keyward of schema version 1 advances with.
const advanceV1 = `INSERT INTO keyward_watermarks AS t (key, chain, kind, level, round, digest, signature, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, NULL, now())
		ON CONFLICT (key, chain, kind) DO UPDATE
		SET level = excluded.level, round = excluded.round, digest = excluded.digest, signature = NULL, updated_at = excluded.updated_at
		WHERE (excluded.level, excluded.round) > (t.level, t.round)
		RETURNING 1`

// A database at schema version 1 is migrated in place: marks and
// signatures are kept, marks carried over are never reverted, new ones are;
// and a keyward still running version 1 can no longer pass anything.
func TestOpen_MigratesVersion1InPlace(t *testing.T) {
	c := pgtest.Start(t)
	dsn := c.CreateDB(t, "v1")
	exec(t, dsn, schemaV1)
	id, signed := newID(t), newID(t)
	exec(t, dsn, advanceV1, id.Key, id.Chain, int16(id.Kind), 10, 0, digest("a"))
	exec(t, dsn, advanceV1, signed.Key, signed.Chain, int16(signed.Kind), 20, 1, digest("s"))
	exec(t, dsn, `UPDATE keyward_watermarks SET signature = 'sig-s' WHERE key = $1`, signed.Key)

	old, err := pgx.Connect(ctxT(t), dsn) // an instance of the old keyward, connected before the upgrade
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close(ctxT(t))

	s := open(t, dsn)
	var v int
	conn, err := pgx.Connect(ctxT(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctxT(t))
	if err := conn.QueryRow(ctxT(t), `SELECT version FROM keyward_schema_version`).Scan(&v); err != nil || v != postgres.SchemaVersion || v != 2 {
		t.Fatalf("schema version %d (%v), want 2", v, err)
	}
	if m := markOf(t, s, id); m.Level != 10 || !bytes.Equal(m.Digest, digest("a")) || m.Signature != nil {
		t.Fatalf("carried-over mark %+v", m)
	}
	if sig, err := s.Advance(ctxT(t), signed, 20, 1, digest("s")); err != nil || string(sig) != "sig-s" {
		t.Fatalf("retry of a carried-over signed mark = %q, %v", sig, err)
	}
	// Carried-over marks cannot be reverted: whether an old instance passed
	// a retry on them is unknown.
	if err := s.Revert(ctxT(t), id, 10, 0, digest("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Advance(ctxT(t), id, 10, 0, digest("b")); !isRefusal(err) {
		t.Fatalf("other payload at a carried-over mark after Revert: %v, want *RefusedError", err)
	}
	// A mark advanced after the migration can be.
	if _, err := s.Advance(ctxT(t), id, 11, 0, digest("c")); err != nil {
		t.Fatal(err)
	}
	if err := s.Revert(ctxT(t), id, 11, 0, digest("c")); err != nil {
		t.Fatal(err)
	}
	if m := markOf(t, s, id); m.Level != 10 {
		t.Fatalf("mark at level %d after Revert, want 10", m.Level)
	}
	// The old instance's statements fail: it signs nothing rather than pass
	// retries Revert would not know about.
	_, err = old.Exec(ctxT(t), advanceV1, id.Key, id.Chain, int16(id.Kind), 11, 0, digest("c"))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42P01" { // undefined_table
		t.Fatalf("old keyward's Advance after the migration: %v, want undefined_table", err)
	}
	// Reopening an up-to-date database changes nothing.
	s.Close()
	s = open(t, dsn)
	if m := markOf(t, s, id); m.Level != 10 {
		t.Fatalf("mark at level %d after reopen, want 10", m.Level)
	}
}
