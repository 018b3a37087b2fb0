package postgres_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/internal/testutil"
	"github.com/keyward/keyward/watermark"
	"github.com/keyward/keyward/watermark/postgres"
	"github.com/keyward/keyward/watermark/watermarktest"
)

func open(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ctxT(t testing.TB) context.Context { return testutil.Context(t, time.Minute) }

func digest(s string) []byte { d := sha256.Sum256([]byte(s)); return d[:] }

func newID(t testing.TB) watermark.ID {
	var b [8]byte
	rand.Read(b[:])
	return watermark.ID{Key: "tz1pg" + hex.EncodeToString(b[:]), Chain: "NetXdQprcVkpaWU", Kind: 0x13}
}

func TestConformance(t *testing.T) {
	c := pgtest.Start(t)
	dsn := c.CreateDB(t, "conformance")
	watermarktest.RunPersistent(t,
		func(t *testing.T) watermark.Store { return open(t, dsn) },
		func(t *testing.T, old watermark.Store) watermark.Store {
			old.Close()
			return open(t, dsn)
		})
	watermarktest.RunRevertPersistent(t,
		func(t *testing.T) watermark.Store { return open(t, dsn) },
		func(t *testing.T, old watermark.Store) watermark.Store {
			old.Close()
			return open(t, dsn)
		})
}

// The registry opens both URL schemes, and the store's own parameter is not
// sent to the server.
func TestOpen_BothSchemesRegistered(t *testing.T) {
	c := pgtest.Start(t)
	dsn := c.DSN() + "&call_timeout=500ms&pool_max_conns=3"
	for _, u := range []string{dsn, "postgresql" + strings.TrimPrefix(dsn, "postgres")} {
		s, err := watermark.Open(ctxT(t), u)
		if err != nil {
			t.Fatalf("watermark.Open(%s): %v", u, err)
		}
		if err := s.Ready(ctxT(t)); err != nil {
			t.Fatalf("Ready: %v", err)
		}
		s.Close()
	}
}

// Every pgx query mode works, including those PgBouncer's transaction mode
// needs (no cached prepared statements).
func TestStore_WorksInEveryQueryMode(t *testing.T) {
	c := pgtest.Start(t)
	for _, mode := range []string{"cache_statement", "cache_describe", "describe_exec", "exec", "simple_protocol"} {
		t.Run(mode, func(t *testing.T) {
			s := open(t, c.DSN()+"&default_query_exec_mode="+mode)
			id := newID(t)
			for level := int64(1); level <= 3; level++ {
				d := digest(fmt.Sprint(level))
				if _, err := s.Advance(ctxT(t), id, level, 0, d); err != nil {
					t.Fatal(err)
				}
				if err := s.SetSignature(ctxT(t), id, level, 0, d, []byte{byte(level), 0, 0xff}); err != nil {
					t.Fatal(err)
				}
				sig, err := s.Advance(ctxT(t), id, level, 0, d)
				if err != nil || !bytes.Equal(sig, []byte{byte(level), 0, 0xff}) {
					t.Fatalf("retry = %x, %v", sig, err)
				}
				var re *watermark.RefusedError
				if _, err := s.Advance(ctxT(t), id, level, 0, digest("other")); !errors.As(err, &re) {
					t.Fatalf("other payload: %v, want *RefusedError", err)
				}
			}
			if err := s.Ready(ctxT(t)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A database whose default isolation is SERIALIZABLE changes nothing: the
// store's sessions use READ COMMITTED, so racing instances get a pass or a
// refusal, never a serialization failure.
func TestAdvance_SerializableDatabaseDefaultStillRacesCleanly(t *testing.T) {
	c := pgtest.Start(t)
	dsn := c.CreateDB(t, "serial")
	pgtest.ExecDSN(t, dsn, `ALTER DATABASE serial SET default_transaction_isolation = 'serializable'`)
	stores := []*postgres.Store{open(t, dsn), open(t, dsn)}
	id := newID(t)
	for level := int64(1); level <= 10; level++ {
		var wg sync.WaitGroup
		var mu sync.Mutex
		passed := 0
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := stores[i%2].Advance(ctxT(t), id, level, 0, digest(fmt.Sprint(level, i%3)))
				var re *watermark.RefusedError
				switch {
				case err == nil:
					mu.Lock()
					passed++
					mu.Unlock()
				case !errors.As(err, &re):
					t.Errorf("level %d: %v", level, err)
				}
			}()
		}
		wg.Wait()
		if passed == 0 {
			t.Fatalf("level %d: nothing passed", level)
		}
	}
}

// The usual deployment: keyward logs in as an unprivileged role that owns
// its database (on PostgreSQL 15 only the owner may create tables in public).
func TestOpen_AsUnprivilegedDatabaseOwner(t *testing.T) {
	c := pgtest.Start(t)
	c.Exec(t, `CREATE ROLE keyward LOGIN`)
	c.Exec(t, `CREATE DATABASE kw OWNER keyward`)
	dsn := fmt.Sprintf("postgres://keyward@127.0.0.1:%d/kw?sslmode=disable", c.Port)
	s := open(t, dsn)
	id := newID(t)
	if _, err := s.Advance(ctxT(t), id, 1, 0, digest("a")); err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	// A second role without rights on the tables cannot open the store.
	c.Exec(t, `CREATE ROLE intruder LOGIN`)
	_, err := postgres.Open(ctxT(t), fmt.Sprintf("postgres://intruder@127.0.0.1:%d/kw?sslmode=disable", c.Port))
	if err == nil {
		t.Fatal("a role without rights on the schema opened the store")
	}
}

func TestOpen_RejectsBadCallTimeout(t *testing.T) {
	for _, v := range []string{"soon", "-1s", "0"} {
		_, err := postgres.Open(context.Background(), "postgres://u@127.0.0.1:1/db?call_timeout="+v)
		if err == nil || errors.Is(err, watermark.ErrUnavailable) {
			t.Errorf("call_timeout=%s: err = %v, want a configuration error", v, err)
		}
	}
}

func TestOpen_DatabaseUnreachableIsUnavailable(t *testing.T) {
	c := pgtest.Start(t)
	dsn := c.DSN()
	c.Stop()
	_, err := postgres.Open(ctxT(t), dsn+"&connect_timeout=2")
	if !errors.Is(err, watermark.ErrUnavailable) {
		t.Fatalf("Open with the database down: %v, want ErrUnavailable", err)
	}
}

// The password never appears in an error.
func TestOpen_ErrorsRedactPassword(t *testing.T) {
	c := pgtest.Start(t)
	c.Stop()
	_, err := postgres.Open(ctxT(t), fmt.Sprintf("postgres://postgres:s3cret-pw@127.0.0.1:%d/postgres?sslmode=disable", c.Port))
	if err == nil || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("error %v shows the password", err)
	}
}

// Instances starting at once against an empty database all succeed and the
// schema is created once.
func TestOpen_ConcurrentStartsMigrateOnce(t *testing.T) {
	c := pgtest.Start(t)
	dsn := c.CreateDB(t, "migrate")
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := postgres.Open(ctxT(t), dsn)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
	}
	conn, err := pgx.Connect(ctxT(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var v, rows int
	if err := conn.QueryRow(ctxT(t), `SELECT version, (SELECT count(*) FROM keyward_schema_version) FROM keyward_schema_version`).Scan(&v, &rows); err != nil {
		t.Fatal(err)
	}
	if v != postgres.SchemaVersion || rows != 1 {
		t.Fatalf("schema version %d in %d rows, want %d in 1", v, rows, postgres.SchemaVersion)
	}
}

func TestOpen_RefusesSchemaFromNewerKeyward(t *testing.T) {
	c := pgtest.Start(t)
	dsn := c.CreateDB(t, "newer")
	open(t, dsn).Close()
	pgtest.ExecDSN(t, dsn, `UPDATE keyward_schema_version SET version = $1`, postgres.SchemaVersion+1)
	_, err := postgres.Open(ctxT(t), dsn)
	if !errors.Is(err, postgres.ErrSchemaTooNew) {
		t.Fatalf("Open on a newer schema: %v, want ErrSchemaTooNew", err)
	}
}

// With the database stopped every call fails with ErrUnavailable (never a
// pass, never a refusal); once it is back the same store resumes with every
// mark intact.
func TestStore_DatabaseDownThenRestarted(t *testing.T) {
	c := pgtest.Start(t)
	s := open(t, c.DSN())
	id := newID(t)
	if _, err := s.Advance(ctxT(t), id, 10, 0, digest("a")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSignature(ctxT(t), id, 10, 0, digest("a"), []byte("sig-a")); err != nil {
		t.Fatal(err)
	}
	c.Stop()
	calls := []struct {
		name string
		f    func(context.Context) error
	}{
		{"Advance higher", func(ctx context.Context) error { _, err := s.Advance(ctx, id, 11, 0, digest("b")); return err }},
		{"Advance retry", func(ctx context.Context) error { _, err := s.Advance(ctx, id, 10, 0, digest("a")); return err }},
		{"Advance lower", func(ctx context.Context) error { _, err := s.Advance(ctx, id, 9, 0, digest("c")); return err }},
		{"SetSignature", func(ctx context.Context) error { return s.SetSignature(ctx, id, 10, 0, digest("a"), []byte("x")) }},
		{"Set", func(ctx context.Context) error { return s.Set(ctx, id, watermark.Mark{Level: 1, Digest: digest("z")}) }},
		{"Marks", func(ctx context.Context) error { _, err := s.Marks(ctx); return err }},
		{"Ready", func(ctx context.Context) error { return s.Ready(ctx) }},
	}
	for _, call := range calls {
		start := time.Now()
		err := call.f(ctxT(t))
		if !errors.Is(err, watermark.ErrUnavailable) {
			t.Errorf("%s with the database down: %v, want ErrUnavailable", call.name, err)
		}
		if d := time.Since(start); d > postgres.DefaultCallTimeout+time.Second {
			t.Errorf("%s took %v, beyond the call timeout", call.name, d)
		}
	}
	c.Start()
	if err := s.Ready(ctxT(t)); err != nil {
		t.Fatalf("Ready after restart: %v", err)
	}
	sig, err := s.Advance(ctxT(t), id, 10, 0, digest("a"))
	if err != nil || string(sig) != "sig-a" {
		t.Fatalf("retry after restart = %q, %v; want the stored signature", sig, err)
	}
	var re *watermark.RefusedError
	if _, err := s.Advance(ctxT(t), id, 10, 0, digest("other")); !errors.As(err, &re) {
		t.Fatalf("other payload at the mark after restart: %v, want *RefusedError", err)
	}
	if _, err := s.Advance(ctxT(t), id, 11, 0, digest("b")); err != nil {
		t.Fatalf("higher level after restart: %v", err)
	}
}

// A server that turns read-only (default_transaction_read_only, as after a
// failover to a standby) is not ready and signs nothing; a store cannot be
// opened on it either.
func TestStore_ReadOnlyServerIsUnavailable(t *testing.T) {
	c := pgtest.Start(t)
	s := open(t, c.DSN())
	if err := s.Ready(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	c.Exec(t, `ALTER SYSTEM SET default_transaction_read_only = on`)
	c.Exec(t, `SELECT pg_reload_conf()`)
	time.Sleep(200 * time.Millisecond) // backends apply the reload at their next command
	if err := s.Ready(ctxT(t)); !errors.Is(err, watermark.ErrUnavailable) {
		t.Fatalf("Ready on a read-only server: %v, want ErrUnavailable", err)
	}
	if _, err := s.Advance(ctxT(t), newID(t), 1, 0, digest("a")); !errors.Is(err, watermark.ErrUnavailable) {
		t.Fatalf("Advance on a read-only server: %v, want ErrUnavailable", err)
	}
	if _, err := postgres.Open(ctxT(t), c.DSN()); !errors.Is(err, watermark.ErrUnavailable) {
		t.Fatalf("Open on a read-only server: %v, want ErrUnavailable", err)
	}
}

// A row held locked elsewhere (a stuck instance, a long operator
// transaction) makes Advance give up after the call timeout.
func TestAdvance_GivesUpAfterCallTimeout(t *testing.T) {
	c := pgtest.Start(t)
	s := open(t, c.DSN()+"&call_timeout=300ms")
	id := newID(t)
	if _, err := s.Advance(ctxT(t), id, 1, 0, digest("a")); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctxT(t), c.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctxT(t), `SELECT 1 FROM keyward_marks WHERE key = $1 FOR UPDATE`, id.Key); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = s.Advance(ctxT(t), id, 2, 0, digest("b"))
	if !errors.Is(err, watermark.ErrUnavailable) {
		t.Fatalf("Advance on a locked row: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Advance took %v with call_timeout=300ms", d)
	}
	tx.Rollback(context.Background())
	if _, err := s.Advance(ctxT(t), id, 2, 0, digest("b")); err != nil {
		t.Fatalf("Advance once the lock is gone: %v", err)
	}
}

// Two stores (two pools, as two keyward instances) race on the same IDs
// with different payloads: at every (level, round) exactly one passes, and
// identical retries through either store pass and return the one signature.
func TestAdvance_TwoInstancesRacingExactlyOneWins(t *testing.T) {
	c := pgtest.Start(t)
	stores := []*postgres.Store{open(t, c.DSN()), open(t, c.DSN())}
	id := newID(t)
	const levels, perLevel = 30, 16
	for level := int64(1); level <= levels; level++ {
		var mu sync.Mutex
		winners := map[int]bool{}
		var wg sync.WaitGroup
		for i := range perLevel {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := stores[i%2]
				_, err := s.Advance(ctxT(t), id, level, 0, digest(fmt.Sprint(level, "/", i)))
				var re *watermark.RefusedError
				switch {
				case err == nil:
					mu.Lock()
					winners[i] = true
					mu.Unlock()
				case errors.As(err, &re):
				default:
					t.Errorf("level %d request %d: %v", level, i, err)
				}
			}()
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("level %d: %d different payloads passed, want exactly 1", level, len(winners))
		}
		var w int
		for w = range winners {
		}
		d := digest(fmt.Sprint(level, "/", w))
		if err := stores[w%2].SetSignature(ctxT(t), id, level, 0, d, []byte(fmt.Sprint("sig", level))); err != nil {
			t.Fatal(err)
		}
		// Identical retries through both instances return the signature.
		for _, s := range stores {
			sig, err := s.Advance(ctxT(t), id, level, 0, d)
			if err != nil || string(sig) != fmt.Sprint("sig", level) {
				t.Fatalf("level %d retry = %q, %v", level, sig, err)
			}
		}
	}
}

// Identical retries racing with a higher advance on the other instance: each
// retry either passes (before the advance) or is refused (after), never an
// error, and the final mark is the higher one.
func TestAdvance_RetriesRacingAnAdvanceAreLinearizable(t *testing.T) {
	c := pgtest.Start(t)
	a, b := open(t, c.DSN()), open(t, c.DSN())
	for round := 0; round < 20; round++ {
		id := newID(t)
		if _, err := a.Advance(ctxT(t), id, 100, 0, digest("a")); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 20)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i == 10 {
					_, errs[i] = b.Advance(ctxT(t), id, 101, 0, digest("b"))
					return
				}
				_, err := a.Advance(ctxT(t), id, 100, 0, digest("a"))
				var re *watermark.RefusedError
				if errors.As(err, &re) {
					if re.Have.Level != 101 {
						err = fmt.Errorf("refused against mark %d, want 101", re.Have.Level)
					} else {
						err = nil
					}
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
		ms, err := b.Marks(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ms {
			if e.ID == id && e.Mark.Level != 101 {
				t.Fatalf("final mark %d, want 101", e.Mark.Level)
			}
		}
	}
}
