package file

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/watermark"
)

// Benchmarks compare the store with the machine's raw fsync latency. Run:
//
//	go test -run x -bench . -benchtime 3s ./watermark/file
//
// They write under KEYWARD_BENCH_DIR when set (point it at the disk the
// daemon will use), else under the test temp directory.
//
// Targets (issue 3): Advance p50 ≤ 4× Fsync; 8 keys in parallel ≥ 2.5× the
// throughput of one key (ns/op of OneKey ÷ ns/op of 8Keys_Parallel).

func benchDir(b *testing.B) string {
	if d := os.Getenv("KEYWARD_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "wmbench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

// latencies records per-operation durations and reports their median.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B) {
	if len(l.d) == 0 {
		return
	}
	slices.Sort(l.d)
	b.ReportMetric(float64(l.d[len(l.d)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(l.d[len(l.d)*99/100].Nanoseconds()), "p99-ns")
}

// parallel runs b.N calls of f spread over exactly n goroutines (worker w
// gets its own state), so the figure does not depend on GOMAXPROCS.
func parallel(b *testing.B, n int, f func(worker int, i int64)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				f(w, i)
			}
		}()
	}
	wg.Wait()
}

func fsyncOnce(f *os.File, buf []byte) error {
	if _, err := f.WriteAt(buf, 0); err != nil {
		return err
	}
	return f.Sync()
}

// BenchmarkFsync is the machine's fsync latency: write 100 bytes, fsync.
func BenchmarkFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(benchDir(b), "fsync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 100)
	var lat latencies
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := fsyncOnce(f, buf); err != nil {
			b.Fatal(err)
		}
		lat.add(time.Since(t0))
	}
	b.StopTimer()
	lat.report(b)
}

// BenchmarkFsync_8Files_Parallel: 8 goroutines, each writing and fsyncing its own file.
func BenchmarkFsync_8Files_Parallel(b *testing.B) {
	dir := benchDir(b)
	files := make([]*os.File, 8)
	for i := range files {
		f, err := os.Create(filepath.Join(dir, fmt.Sprint("fsync", i)))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		files[i] = f
	}
	buf := make([]byte, 100)
	parallel(b, len(files), func(w int, _ int64) {
		if err := fsyncOnce(files[w], buf); err != nil {
			b.Error(err)
		}
	})
}

// BenchmarkRawTempRenameDirsync is the bare durable-replace sequence the
// store performs (write temp, fsync, rename, fsync dir), without the store.
func BenchmarkRawTempRenameDirsync(b *testing.B) {
	dir := benchDir(b)
	d, err := os.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	buf := make([]byte, 300)
	tmp, dst := filepath.Join(dir, "x.tmp"), filepath.Join(dir, "x")
	var lat latencies
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		if err := os.Rename(tmp, dst); err != nil {
			b.Fatal(err)
		}
		if err := d.Sync(); err != nil {
			b.Fatal(err)
		}
		lat.add(time.Since(t0))
	}
	b.StopTimer()
	lat.report(b)
}

func benchStore(b *testing.B) *Store {
	s, err := Open(benchDir(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func benchDigest(i int64) []byte {
	d := make([]byte, 32)
	binary.BigEndian.PutUint64(d, uint64(i))
	return d
}

// BenchmarkAdvance_OneKey: one client, sequential rising levels.
func BenchmarkAdvance_OneKey(b *testing.B) {
	s := benchStore(b)
	var lat latencies
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := s.Advance(bg, testI, int64(i), 0, benchDigest(int64(i))); err != nil {
			b.Fatal(err)
		}
		lat.add(time.Since(t0))
	}
	b.StopTimer()
	lat.report(b)
}

// BenchmarkAttest_OneKey is the store's share of one attestation: Advance,
// then SetSignature once signed.
func BenchmarkAttest_OneKey(b *testing.B) {
	s := benchStore(b)
	sig := make([]byte, 64)
	var lat latencies
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		d := benchDigest(int64(i))
		if _, err := s.Advance(bg, testI, int64(i), 0, d); err != nil {
			b.Fatal(err)
		}
		if err := s.SetSignature(bg, testI, int64(i), 0, d, sig); err != nil {
			b.Fatal(err)
		}
		lat.add(time.Since(t0))
	}
	b.StopTimer()
	lat.report(b)
}

// BenchmarkAdvance_8Keys_Parallel: 8 goroutines, one key each, rising levels.
func BenchmarkAdvance_8Keys_Parallel(b *testing.B) {
	s := benchStore(b)
	ids := make([]watermark.ID, 8)
	levels := make([]int64, 8)
	for i := range ids {
		ids[i] = watermark.ID{Key: fmt.Sprint("tz1bench", i), Chain: testI.Chain, Kind: testI.Kind}
	}
	parallel(b, len(ids), func(w int, i int64) {
		levels[w]++
		if _, err := s.Advance(bg, ids[w], levels[w], 0, benchDigest(i)); err != nil {
			b.Error(err)
		}
	})
}

// BenchmarkSetSignature: recording the signature of the current mark again
// and again (no fsync; must stay far below Fsync).
func BenchmarkSetSignature(b *testing.B) {
	s := benchStore(b)
	d := benchDigest(1)
	if _, err := s.Advance(bg, testI, 1, 0, d); err != nil {
		b.Fatal(err)
	}
	sig := make([]byte, 64)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sig[0] = byte(i)
		if err := s.SetSignature(bg, testI, 1, 0, d, sig); err != nil {
			b.Fatal(err)
		}
	}
}
