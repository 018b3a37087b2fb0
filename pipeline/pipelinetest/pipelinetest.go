// Package pipelinetest provides test doubles around the signing pipeline: an observer that records every decision and a key whose backend fails.
package pipelinetest

import (
	"context"
	"sync"
	"time"

	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/pipeline"
	"github.com/keyward/keyward/signer"
)

// Decision is one observed outcome.
type Decision struct {
	Chain      pipeline.Chain
	Key        string // "" for a request rejected before identification
	Kind       string
	Class      pipeline.Class
	Rule       pipeline.Rule
	Identified bool
}

// Recorder is a pipeline.Observer that keeps every decision.
type Recorder struct {
	mu sync.Mutex
	ds []Decision
}

var _ pipeline.Observer = (*Recorder)(nil)

// Decision records a decision about an identified key.
func (r *Recorder) Decision(chain pipeline.Chain, key *keyring.Key, kind string, class pipeline.Class, rule pipeline.Rule, _ time.Duration) {
	d := Decision{Chain: chain, Kind: kind, Class: class, Rule: rule, Identified: true}
	if key != nil {
		d.Key = key.Name
	}
	r.mu.Lock()
	r.ds = append(r.ds, d)
	r.mu.Unlock()
}

// Rejected records a request rejected before identification.
func (r *Recorder) Rejected(chain pipeline.Chain, class pipeline.Class, rule pipeline.Rule) {
	r.mu.Lock()
	r.ds = append(r.ds, Decision{Chain: chain, Class: class, Rule: rule})
	r.mu.Unlock()
}

// All returns the decisions so far.
func (r *Recorder) All() []Decision {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Decision(nil), r.ds...)
}

// Last returns the last decision (zero when none).
func (r *Recorder) Last() Decision {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ds) == 0 {
		return Decision{}
	}
	return r.ds[len(r.ds)-1]
}

// Reset forgets the decisions so far.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.ds = nil
	r.mu.Unlock()
}

// FailingKey wraps a key; while Err is set (SetErr), Sign fails with it, as
// a backend that is down does.
type FailingKey struct {
	signer.Key
	mu  sync.Mutex
	err error
}

// SetErr makes Sign fail with err (nil: sign again).
func (f *FailingKey) SetErr(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

// Sign fails with the error set, or signs with the wrapped key.
func (f *FailingKey) Sign(ctx context.Context, digest []byte) ([]byte, error) {
	f.mu.Lock()
	err := f.err
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return f.Key.Sign(ctx, digest)
}
