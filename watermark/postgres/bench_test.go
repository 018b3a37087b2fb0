package postgres_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/pgtest"
	"github.com/keyward/keyward/watermark"
	"github.com/keyward/keyward/watermark/watermarktest"
)

// Benchmarks run against a throwaway cluster (fsync=on) on loopback, or
// against KEYWARD_BENCH_PG (a postgres:// URL) when set. Run:
//
//	go test -run x -bench . -benchtime 3s ./watermark/postgres
//
// Target (issue 7): Advance p50 ≤ 2 ms on loopback. Every Advance that moves
// the mark is a committed transaction, so its latency is bounded below by
// the server's WAL flush (pg_test_fsync shows the disk's).

func benchDSN(b *testing.B) string {
	if dsn := os.Getenv("KEYWARD_BENCH_PG"); dsn != "" {
		return dsn
	}
	return pgtest.Start(b).DSN()
}

// BenchmarkAdvance_Postgres: one key, rising levels, one at a time (a
// baker's attestation stream).
func BenchmarkAdvance_Postgres(b *testing.B) {
	s := open(b, benchDSN(b))
	id := newID(b)
	ctx := context.Background()
	var lat watermarktest.Latencies
	b.ResetTimer()
	for i := range int64(b.N) {
		start := time.Now()
		if _, err := s.Advance(ctx, id, i+1, 0, watermarktest.Digest(i)); err != nil {
			b.Fatal(err)
		}
		lat.Add(time.Since(start))
	}
	b.StopTimer()
	lat.Report(b)
}

// BenchmarkAdvanceAndSetSignature_Postgres: the store's whole share of one
// consensus request (Advance, then SetSignature after signing).
func BenchmarkAdvanceAndSetSignature_Postgres(b *testing.B) {
	s := open(b, benchDSN(b))
	id := newID(b)
	ctx := context.Background()
	sig := make([]byte, 99)
	var lat watermarktest.Latencies
	b.ResetTimer()
	for i := range int64(b.N) {
		start := time.Now()
		d := watermarktest.Digest(i)
		if _, err := s.Advance(ctx, id, i+1, 0, d); err != nil {
			b.Fatal(err)
		}
		if err := s.SetSignature(ctx, id, i+1, 0, d, sig); err != nil {
			b.Fatal(err)
		}
		lat.Add(time.Since(start))
	}
	b.StopTimer()
	lat.Report(b)
}

// BenchmarkAdvance_PostgresRefusal: the path of a request below the mark
// (two reads, no write).
func BenchmarkAdvance_PostgresRefusal(b *testing.B) {
	s := open(b, benchDSN(b))
	id := newID(b)
	ctx := context.Background()
	if _, err := s.Advance(ctx, id, 1000, 0, watermarktest.Digest(0)); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range int64(b.N) {
		if _, err := s.Advance(ctx, id, 999, 0, watermarktest.Digest(i)); err == nil {
			b.Fatal("passed below the mark")
		}
	}
}

// BenchmarkAdvance_PostgresManyKeysParallel: workers each advancing their
// own key (many bakers on one signer; the server groups their commits).
// ns/op is per Advance across all workers; compare with
// BenchmarkAdvance_Postgres for the speed-up.
func BenchmarkAdvance_PostgresManyKeysParallel(b *testing.B) {
	for _, workers := range []int{4, 16, 64} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			s := open(b, benchDSN(b)+"&pool_max_conns="+fmt.Sprint(workers))
			ids := make([]watermark.ID, workers)
			levels := make([]int64, workers)
			for w := range ids {
				ids[w] = newID(b)
			}
			ctx := context.Background()
			var lat watermarktest.Latencies
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						levels[w]++
						start := time.Now()
						if _, err := s.Advance(ctx, ids[w], levels[w], 0, watermarktest.Digest(levels[w])); err != nil {
							b.Error(err)
							return
						}
						lat.Add(time.Since(start))
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			lat.Report(b)
		})
	}
}

// BenchmarkAdvance_PostgresReplicationModes: BenchmarkAdvance_Postgres on a
// primary with a synchronous standby (every commit waits for it), under
// each watermark_replication mode. ignore makes no replication check; warn
// and require-sync make one per second (ReplicationCheckInterval) on the
// hot path, and require-sync gates every Advance on it: the difference to
// ignore is the guard's cost.
func BenchmarkAdvance_PostgresReplicationModes(b *testing.B) {
	primary, _ := pgtest.StartPair(b, true)
	for _, mode := range []watermark.ReplicationMode{watermark.IgnoreReplication, watermark.WarnAsync, watermark.RequireSync} {
		b.Run("mode="+string(mode), func(b *testing.B) {
			s := open(b, primary.DSN())
			ctx := context.Background()
			if err := s.SetReplicationMode(ctx, mode, nil); err != nil {
				b.Fatal(err)
			}
			id := newID(b)
			var lat watermarktest.Latencies
			b.ResetTimer()
			for i := range int64(b.N) {
				start := time.Now()
				if _, err := s.Advance(ctx, id, i+1, 0, watermarktest.Digest(i)); err != nil {
					b.Fatal(err)
				}
				lat.Add(time.Since(start))
			}
			b.StopTimer()
			lat.Report(b)
		})
	}
}
