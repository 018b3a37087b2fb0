package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/limits"
	"github.com/keyward/keyward/limits/limitstest"
	"github.com/keyward/keyward/limits/postgres"
	"github.com/keyward/keyward/watermark"
	_ "github.com/keyward/keyward/watermark/postgres"
)

func open(t testing.TB, dsn string, opts postgres.Options) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ctxT(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// exec runs SQL on its own connection (as an operator would with psql).
func exec(t testing.TB, dsn, sql string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(ctxT(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctxT(t), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestConformance(t *testing.T) {
	c := pgtest.Start(t)
	dsn := c.CreateDB(t, "conformance")
	limitstest.Run(t, limitstest.Harness{
		Open: func(t *testing.T) limits.Store { return open(t, dsn, postgres.Options{}) },
		Reopen: func(t *testing.T, old limits.Store) limits.Store {
			old.Close()
			return open(t, dsn, postgres.Options{})
		},
		Break: func(t *testing.T, s limits.Store) func() {
			c.Stop()
			return c.Start
		},
		Instances: func(t *testing.T, n int) []limits.Store {
			out := make([]limits.Store, n)
			for i := range out {
				out[i] = open(t, dsn, postgres.Options{})
			}
			return out
		},
	})
}

var hour = []limits.Limit{{Rule: "ethereum.limits[0]", Window: time.Hour, MaxRequests: 3, MaxAmount: big.NewInt(100)}}

func one(amount int64) limits.Spend { return limits.Spend{Amount: big.NewInt(amount), Requests: 1} }

// The budgets live in the watermark database, opened from the same URL
// under both schemes, beside the watermark tables.
func TestOpen_BesideTheWatermarks(t *testing.T) {
	c := pgtest.Start(t)
	for _, scheme := range []string{"postgres", "postgresql"} {
		dsn := strings.Replace(c.DSN(), "postgres://", scheme+"://", 1) + "&call_timeout=5s"
		wm, err := watermark.Open(ctxT(t), dsn)
		if err != nil {
			t.Fatal(err)
		}
		s, err := limits.Open(ctxT(t), dsn)
		if err != nil {
			t.Fatalf("%s: %v", scheme, err)
		}
		if _, err := s.Debit(ctxT(t), "k-"+scheme, hour, one(1), time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := errors.Join(s.Ready(ctxT(t)), wm.Ready(ctxT(t))); err != nil {
			t.Fatal(err)
		}
		s.Close()
		wm.Close()
	}
	for _, bad := range []string{"postgres://x/y?call_timeout=-1s", "postgres://%zz"} {
		if _, err := limits.Open(ctxT(t), bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The guard runs inside each debit before it is written; when it fails
// nothing is debited and the store is unavailable. Refusals never reach it.
func TestDebit_GuardRunsBeforeEachWrite(t *testing.T) {
	c := pgtest.Start(t)
	var calls atomic.Int64
	var fail atomic.Bool
	s := open(t, c.DSN(), postgres.Options{Guard: func(ctx context.Context, conn *pgx.Conn) error {
		calls.Add(1)
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'`).Scan(&n); err != nil {
			return err
		}
		if fail.Load() {
			return errors.New("no synchronous standby")
		}
		return nil
	}})
	now := time.Now()
	if _, err := s.Debit(ctxT(t), "k", hour, one(60), now); err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	if _, err := s.Debit(ctxT(t), "k", hour, one(40), now); !errors.Is(err, limits.ErrUnavailable) {
		t.Fatalf("guard failing: %v, want ErrUnavailable", err)
	}
	fail.Store(false)
	if _, err := s.Debit(ctxT(t), "k", hour, one(41), now); !errors.Is(err, limits.ErrExceeded) {
		t.Fatalf("41 more after the guard refused 40: %v, want exceeded", err)
	}
	if _, err := s.Debit(ctxT(t), "k", hour, one(40), now); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("guard called %d times, want 3 (the refusal writes nothing)", n)
	}
}

// A database whose default isolation is SERIALIZABLE changes nothing: the
// sessions run READ COMMITTED, racing instances get a debit or a refusal,
// never a serialization failure, and exactly the budget is debited.
func TestDebit_SerializableDatabaseDefaultStillExact(t *testing.T) {
	c := pgtest.Start(t)
	dsn := c.CreateDB(t, "serial")
	exec(t, dsn, `ALTER DATABASE serial SET default_transaction_isolation = 'serializable'`)
	stores := []*postgres.Store{open(t, dsn, postgres.Options{}), open(t, dsn, postgres.Options{})}
	ls := []limits.Limit{{Rule: "tezos.limits[0]", Window: time.Hour, MaxRequests: 10}}
	var ok atomic.Int64
	var wg sync.WaitGroup
	now := time.Now()
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := stores[i%2].Debit(ctxT(t), "k", ls, limits.Spend{Requests: 1}, now)
			switch {
			case err == nil:
				ok.Add(1)
			case !errors.Is(err, limits.ErrExceeded):
				t.Errorf("Debit: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 10 {
		t.Fatalf("%d debited, want 10", ok.Load())
	}
}

// A row that does not decode fails closed.
func TestDebit_CorruptRowIsUnavailable(t *testing.T) {
	c := pgtest.Start(t)
	s := open(t, c.DSN(), postgres.Options{})
	if _, err := s.Debit(ctxT(t), "k", hour, one(1), time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, state := range []string{`{"v":1,"key":"k","budgets":[{"rule":"r","window_ns":1}]}`, `{"v":1,"key":"other","budgets":[]}`, `[]`} {
		exec(t, c.DSN(), `UPDATE keyward_limits SET state = $1 WHERE key = 'k'`, state)
		if _, err := s.Debit(ctxT(t), "k", hour, one(1), time.Now()); !errors.Is(err, limits.ErrUnavailable) {
			t.Errorf("state %s: Debit = %v, want ErrUnavailable", state, err)
		}
	}
}

func TestStore_WorksInEveryQueryMode(t *testing.T) {
	c := pgtest.Start(t)
	for _, mode := range []string{"cache_statement", "cache_describe", "describe_exec", "exec", "simple_protocol"} {
		t.Run(mode, func(t *testing.T) {
			s := open(t, c.DSN()+"&default_query_exec_mode="+mode, postgres.Options{})
			key, now := "k-"+mode, time.Now()
			d, err := s.Debit(ctxT(t), key, hour, one(100), now)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Debit(ctxT(t), key, hour, one(1), now); !errors.Is(err, limits.ErrExceeded) {
				t.Fatalf("over the cap: %v", err)
			}
			if err := s.Credit(ctxT(t), d); err != nil {
				t.Fatal(err)
			}
			us, err := s.Usage(ctxT(t), key, hour, now)
			if err != nil || us[0].Spent.Sign() != 0 {
				t.Fatalf("usage %+v, %v", us, err)
			}
		})
	}
}

// With the database stopped every call fails within the call timeout.
func TestStore_DatabaseDownFailsWithinTheCallTimeout(t *testing.T) {
	c := pgtest.Start(t)
	s := open(t, c.DSN()+"&call_timeout=1s", postgres.Options{})
	c.Stop()
	defer c.Start()
	start := time.Now()
	_, err := s.Debit(ctxT(t), "k", hour, one(1), time.Now())
	if !errors.Is(err, limits.ErrUnavailable) {
		t.Fatalf("Debit: %v", err)
	}
	if _, err := s.Usage(ctxT(t), "k", hour, time.Now()); !errors.Is(err, limits.ErrUnavailable) {
		t.Fatalf("Usage: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}
	if _, err := postgres.Open(ctxT(t), c.DSN(), postgres.Options{}); !errors.Is(err, limits.ErrUnavailable) {
		t.Fatalf("Open with the database down: %v", err)
	}
}

func BenchmarkDebit_Postgres(b *testing.B) {
	c := pgtest.Start(b)
	s := open(b, c.DSN(), postgres.Options{})
	ls := []limits.Limit{{Rule: "tezos.limits[0]", Window: 24 * time.Hour, MaxRequests: 1 << 40}}
	now := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Debit(context.Background(), fmt.Sprint("k", i%4), ls, limits.Spend{Requests: 1}, now); err != nil {
			b.Fatal(err)
		}
	}
}
