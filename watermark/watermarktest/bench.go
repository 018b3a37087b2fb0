package watermarktest

import (
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Latencies records per-operation durations in a benchmark and reports
// their median and 99th percentile.
type Latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

// Add records one duration (safe for concurrent use).
func (l *Latencies) Add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// Report adds p50-ns and p99-ns metrics to b.
func (l *Latencies) Report(b *testing.B) {
	if len(l.d) == 0 {
		return
	}
	slices.Sort(l.d)
	b.ReportMetric(float64(l.d[len(l.d)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(l.d[len(l.d)*99/100].Nanoseconds()), "p99-ns")
}

// Parallel runs b.N calls of f spread over exactly n goroutines (worker w
// gets its own state), so the figure does not depend on GOMAXPROCS.
func Parallel(b *testing.B, n int, f func(worker int, i int64)) {
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

// Digest is a distinct 32-byte digest for benchmark iteration i.
func Digest(i int64) []byte {
	d := make([]byte, 32)
	binary.BigEndian.PutUint64(d, uint64(i))
	return d
}
