package file

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyward/keyward/watermark"
	"github.com/keyward/keyward/watermark/watermarktest"
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
	var lat watermarktest.Latencies
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := fsyncOnce(f, buf); err != nil {
			b.Fatal(err)
		}
		lat.Add(time.Since(t0))
	}
	b.StopTimer()
	lat.Report(b)
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
	watermarktest.Parallel(b, len(files), func(w int, _ int64) {
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
	var lat watermarktest.Latencies
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
		lat.Add(time.Since(t0))
	}
	b.StopTimer()
	lat.Report(b)
}

func benchStore(b *testing.B) *Store {
	s, err := Open(benchDir(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkAdvance_OneKey: one client, sequential rising levels.
func BenchmarkAdvance_OneKey(b *testing.B) {
	s := benchStore(b)
	var lat watermarktest.Latencies
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := s.Advance(bg, testI, int64(i), 0, watermarktest.Digest(int64(i))); err != nil {
			b.Fatal(err)
		}
		lat.Add(time.Since(t0))
	}
	b.StopTimer()
	lat.Report(b)
}

// BenchmarkAttest_OneKey is the store's share of one attestation: Advance,
// then SetSignature once signed.
func BenchmarkAttest_OneKey(b *testing.B) {
	s := benchStore(b)
	sig := make([]byte, 64)
	var lat watermarktest.Latencies
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		d := watermarktest.Digest(int64(i))
		if _, err := s.Advance(bg, testI, int64(i), 0, d); err != nil {
			b.Fatal(err)
		}
		if err := s.SetSignature(bg, testI, int64(i), 0, d, sig); err != nil {
			b.Fatal(err)
		}
		lat.Add(time.Since(t0))
	}
	b.StopTimer()
	lat.Report(b)
}

// BenchmarkAdvance_8Keys_Parallel: 8 goroutines, one key each, rising levels.
func BenchmarkAdvance_8Keys_Parallel(b *testing.B) {
	s := benchStore(b)
	ids := make([]watermark.ID, 8)
	levels := make([]int64, 8)
	for i := range ids {
		ids[i] = watermark.ID{Key: fmt.Sprint("tz1bench", i), Chain: testI.Chain, Kind: testI.Kind}
	}
	watermarktest.Parallel(b, len(ids), func(w int, i int64) {
		levels[w]++
		if _, err := s.Advance(bg, ids[w], levels[w], 0, watermarktest.Digest(i)); err != nil {
			b.Error(err)
		}
	})
}

// BenchmarkSetSignature: recording the signature of the current mark again
// and again (no fsync; must stay far below Fsync).
func BenchmarkSetSignature(b *testing.B) {
	s := benchStore(b)
	d := watermarktest.Digest(1)
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
