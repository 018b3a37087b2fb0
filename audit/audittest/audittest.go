// Package audittest provides an in-memory audit logger for tests.
package audittest

import (
	"context"
	"sync"
	"testing"

	"github.com/keyward/keyward/audit"
)

// Memory keeps every record in memory. Set Err to make Log fail (the
// record is then not kept). Safe for concurrent use.
type Memory struct {
	mu   sync.Mutex
	recs []audit.Record
	err  error
}

var _ audit.Logger = (*Memory)(nil)

// Log keeps a copy of r, or returns the error set with Fail.
func (m *Memory) Log(_ context.Context, r *audit.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.recs = append(m.recs, *r)
	return nil
}

// Close does nothing.
func (m *Memory) Close() error { return nil }

// Fail makes every later Log return err (nil: succeed again).
func (m *Memory) Fail(err error) {
	m.mu.Lock()
	m.err = err
	m.mu.Unlock()
}

// Records returns a copy of the records so far.
func (m *Memory) Records() []audit.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]audit.Record(nil), m.recs...)
}

// Len is the number of records so far.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.recs)
}

// Count is the number of records with the outcome (audit.Signed, …).
func (m *Memory) Count(outcome string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, r := range m.recs {
		if r.Outcome == outcome {
			n++
		}
	}
	return n
}

// Last returns the last record; the test fails when there is none.
func (m *Memory) Last(t testing.TB) audit.Record {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.recs) == 0 {
		t.Fatal("no audit record")
	}
	return m.recs[len(m.recs)-1]
}
