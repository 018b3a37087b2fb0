package file

import (
	"github.com/keyward/keyward/watermark/watermarktest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkRawSlotOverwriteFdatasync is, for comparison only, the cost of
// the alternative the store does not use: overwriting one of two
// preallocated checksummed slots in place and fdatasync (no new inode, no
// rename, no directory fsync).
func BenchmarkRawSlotOverwriteFdatasync(b *testing.B) {
	f, err := os.Create(filepath.Join(benchDir(b), "slots"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 512)
	for off := int64(0); off < 1024; off += 512 {
		if _, err := f.WriteAt(buf, off); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	var lat watermarktest.Latencies
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := f.WriteAt(buf, int64(i%2)*512); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
		lat.Add(time.Since(t0))
	}
	b.StopTimer()
	lat.Report(b)
}
