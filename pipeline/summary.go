package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/keyward/keyward/audit"
)

// maxSummaryCauses bounds the causes tracked between two flushes; the
// causes are (chain, class, rule), a small fixed set, so this is a guard.
const maxSummaryCauses = 256

// summary turns the requests refused before identification into at most
// one audit record and one log line per cause and interval, with a count,
// so that a stranger cannot fill the disk (a full audit disk would
// withhold the baker's signatures).
type summary struct {
	p      *Pipeline
	mu     sync.Mutex
	causes map[cause]*tally
	stop   chan struct{}
	done   chan struct{}
}

type cause struct {
	chain Chain
	class Class
	rule  Rule
}

type tally struct {
	n       int       // requests not yet reported
	emitted time.Time // when the last summary of this cause was written
	reason  string    // the latest request's reason
	client  string    // the latest request's address
}

func newSummary(p *Pipeline) *summary {
	s := &summary{p: p, causes: map[cause]*tally{}, stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

func (s *summary) run() {
	defer close(s.done)
	t := time.NewTicker(s.p.opts.SummaryInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.flush(false)
		case <-s.stop:
			s.flush(true)
			return
		}
	}
}

func (s *summary) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

func (s *summary) add(chain Chain, caller Caller, e *Error) {
	now := s.p.opts.Now()
	c := cause{chain, e.Class, e.Rule}
	s.mu.Lock()
	t := s.causes[c]
	if t == nil {
		if len(s.causes) >= maxSummaryCauses {
			s.mu.Unlock()
			return
		}
		t = &tally{}
		s.causes[c] = t
	}
	t.n++
	t.reason, t.client = truncate(e.Msg, 256), truncate(caller.Addr, 64)
	var out *audit.Record
	if t.emitted.IsZero() || now.Sub(t.emitted) >= s.p.opts.SummaryInterval {
		out = s.take(c, t, now)
	}
	s.mu.Unlock()
	if out != nil {
		s.write(out)
	}
}

// take builds the summary record of c and resets its count. Caller holds mu.
func (s *summary) take(c cause, t *tally, now time.Time) *audit.Record {
	rec := &audit.Record{
		Chain: c.chain.String(), Client: t.client, Outcome: c.class.AuditOutcome(), Rule: string(c.rule),
		Status: s.p.code(c.chain, c.class, c.rule), Count: t.n,
		Reason: fmt.Sprintf("%d request(s) refused before a key and caller were known (%s), latest: %s", t.n, c.class, t.reason),
	}
	t.n = 0
	t.emitted = now
	return rec
}

func (s *summary) flush(all bool) {
	now := s.p.opts.Now()
	var out []*audit.Record
	s.mu.Lock()
	for c, t := range s.causes {
		if t.n > 0 && (all || now.Sub(t.emitted) >= s.p.opts.SummaryInterval) {
			out = append(out, s.take(c, t, now))
		} else if t.n == 0 && now.Sub(t.emitted) >= 2*s.p.opts.SummaryInterval {
			delete(s.causes, c)
		}
	}
	s.mu.Unlock()
	for _, r := range out {
		s.write(r)
	}
}

func (s *summary) write(rec *audit.Record) {
	if err := s.p.opts.Audit.Log(context.Background(), rec); err != nil {
		s.p.log.Error("audit log write failed", "chain", rec.Chain, "err", err)
	}
	s.p.log.LogAttrs(context.Background(), slog.LevelWarn, rec.Chain+" requests refused before identification",
		slog.Int("count", rec.Count), slog.String("rule", rec.Rule), slog.String("reason", rec.Reason), slog.String("client", rec.Client))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
