// Package ledger is the bucketed arithmetic of rolling budgets that every limits store persists: one key's state, its debits, credits and usage, and its JSON form.
package ledger

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward/limits"
)

// State is everything spent by one key that still counts, per budget.
type State struct {
	Key     string
	Budgets []*Budget // sorted by rule, then window
}

// Budget is the spending of one (rule, window), per bucket.
type Budget struct {
	Rule    string
	Window  time.Duration
	Buckets []*Bucket // ascending index
}

// Bucket is what was debited in one bucket of a budget's window: the
// debits at times t with floor(t / width) = Index (t in Unix nanoseconds).
type Bucket struct {
	Index    int64
	Amount   *big.Int
	Fee      *big.Int
	Requests int64
	Tokens   map[string]*big.Int
}

// New returns the empty state of key.
func New(key string) *State { return &State{Key: key} }

// bucketIndex is the bucket of t for a window.
func bucketIndex(t time.Time, window time.Duration) int64 {
	w := int64(limits.BucketWidth(window))
	n := t.UnixNano()
	q := n / w
	if n%w < 0 {
		q--
	}
	return q
}

// bucketStart is the time bucket i of a window begins.
func bucketStart(i int64, window time.Duration) time.Time {
	return time.Unix(0, i*int64(limits.BucketWidth(window)))
}

// Clone returns a deep copy of s.
func (s *State) Clone() *State {
	c := &State{Key: s.Key, Budgets: make([]*Budget, len(s.Budgets))}
	for i, b := range s.Budgets {
		nb := &Budget{Rule: b.Rule, Window: b.Window, Buckets: make([]*Bucket, len(b.Buckets))}
		for j, k := range b.Buckets {
			nb.Buckets[j] = k.clone()
		}
		c.Budgets[i] = nb
	}
	return c
}

func (k *Bucket) clone() *Bucket {
	c := &Bucket{Index: k.Index, Amount: new(big.Int).Set(k.Amount), Fee: new(big.Int).Set(k.Fee), Requests: k.Requests}
	if len(k.Tokens) > 0 {
		c.Tokens = make(map[string]*big.Int, len(k.Tokens))
		for t, v := range k.Tokens {
			c.Tokens[t] = new(big.Int).Set(v)
		}
	}
	return c
}

func (s *State) budget(rule string, window time.Duration) *Budget {
	for _, b := range s.Budgets {
		if b.Rule == rule && b.Window == window {
			return b
		}
	}
	return nil
}

func (s *State) budgetFor(rule string, window time.Duration) *Budget {
	if b := s.budget(rule, window); b != nil {
		return b
	}
	b := &Budget{Rule: rule, Window: window}
	s.Budgets = append(s.Budgets, b)
	s.sortBudgets()
	return b
}

func (s *State) sortBudgets() {
	slices.SortFunc(s.Budgets, func(a, b *Budget) int {
		return cmp.Or(strings.Compare(a.Rule, b.Rule), cmp.Compare(a.Window, b.Window))
	})
}

// find returns the position of bucket i in b (or where it belongs).
func (b *Budget) find(i int64) (int, bool) {
	return slices.BinarySearchFunc(b.Buckets, i, func(k *Bucket, i int64) int { return cmp.Compare(k.Index, i) })
}

func (b *Budget) bucketFor(i int64) *Bucket {
	n, found := b.find(i)
	if found {
		return b.Buckets[n]
	}
	k := &Bucket{Index: i, Amount: new(big.Int), Fee: new(big.Int)}
	b.Buckets = slices.Insert(b.Buckets, n, k)
	return k
}

// counted returns the buckets of b that count at time now (every bucket
// from Counted whole buckets before now's, including any later one).
func (b *Budget) counted(now time.Time) []*Bucket {
	if b == nil {
		return nil
	}
	first := bucketIndex(now, b.Window) - limits.Counted(b.Window)
	n, _ := b.find(first)
	return b.Buckets[n:]
}

// stopsCounting is when bucket i of a window stops counting.
func stopsCounting(i int64, window time.Duration) time.Time {
	return bucketStart(i+limits.Counted(window)+1, window)
}

// prune drops the buckets that no longer count at now, and the budgets left
// without buckets.
func (s *State) prune(now time.Time) {
	kept := s.Budgets[:0]
	for _, b := range s.Budgets {
		b.Buckets = slices.Clone(b.counted(now))
		if len(b.Buckets) > 0 {
			kept = append(kept, b)
		}
	}
	clear(s.Budgets[len(kept):])
	s.Budgets = kept
}

// metric is one capped quantity of a limit.
type metric struct {
	name string   // "max_amount", "max_token_amount[KT1…]"
	unit string   // for messages
	cap  *big.Int // the cap
	want *big.Int // what the spend adds
	of   func(*Bucket) *big.Int
}

func orZero(v *big.Int) *big.Int {
	if v == nil {
		return new(big.Int)
	}
	return v
}

// metrics lists the capped metrics of l, in a fixed order: amount, fee,
// requests, tokens by address.
func metrics(l limits.Limit, sp limits.Spend) []metric {
	var ms []metric
	if l.MaxAmount != nil {
		name := l.AmountName
		if name == "" {
			name = limits.MetricAmount
		}
		ms = append(ms, metric{name, l.Unit, l.MaxAmount, orZero(sp.Amount), func(k *Bucket) *big.Int { return k.Amount }})
	}
	if l.MaxFee != nil {
		ms = append(ms, metric{limits.MetricFee, l.Unit, l.MaxFee, orZero(sp.Fee), func(k *Bucket) *big.Int { return k.Fee }})
	}
	if l.MaxRequests > 0 {
		ms = append(ms, metric{limits.MetricRequests, "requests", big.NewInt(l.MaxRequests), big.NewInt(sp.Requests), func(k *Bucket) *big.Int { return big.NewInt(k.Requests) }})
	}
	for _, t := range slices.Sorted(maps.Keys(l.MaxTokens)) {
		ms = append(ms, metric{limits.MetricTokens + "[" + t + "]", "", l.MaxTokens[t], orZero(sp.Tokens[t]), func(k *Bucket) *big.Int { return orZero(k.Tokens[t]) }})
	}
	return ms
}

func sum(ks []*Bucket, of func(*Bucket) *big.Int) *big.Int {
	s := new(big.Int)
	for _, k := range ks {
		s.Add(s, of(k))
	}
	return s
}

// ErrClockBehind: the state holds spending in a bucket more than one bucket
// after now's, so this clock is behind the one that recorded it (or that
// one was ahead). Debiting by the slower clock could let spending count for
// less than a whole window, so the debit fails closed.
var ErrClockBehind = errors.New("clock behind the spending recorded in the store")

// Debit checks sp against every limit of ls at now and, when all allow it,
// adds it to the current bucket of each; otherwise it changes nothing and
// returns the first *limits.ExceededError. Buckets that no longer count are
// dropped either way.
func (s *State) Debit(ls []limits.Limit, sp limits.Spend, now time.Time) (limits.Debit, error) {
	if err := limits.Check(ls); err != nil {
		return limits.Debit{}, err
	}
	if sp.Requests < 0 || sp.Amount != nil && sp.Amount.Sign() < 0 || sp.Fee != nil && sp.Fee.Sign() < 0 {
		return limits.Debit{}, errors.New("limits: negative spend")
	}
	for t, v := range sp.Tokens {
		if v == nil || v.Sign() < 0 {
			return limits.Debit{}, fmt.Errorf("limits: negative or missing spend of token %s", t)
		}
	}
	s.prune(now)
	var first *limits.ExceededError
	var freesAt time.Time
	never := false
	for _, l := range ls {
		b := s.budget(l.Rule, l.Window)
		ks := b.counted(now)
		if n := len(ks); n > 0 && ks[n-1].Index > bucketIndex(now, l.Window)+1 {
			return limits.Debit{}, fmt.Errorf("%w: %s has spending recorded at %s, after %s", ErrClockBehind, l.Rule,
				bucketStart(ks[n-1].Index, l.Window).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		}
		ms := metrics(l, sp)
		var over *metric
		var spent *big.Int
		for i := range ms {
			m := &ms[i]
			have := sum(ks, m.of)
			if new(big.Int).Add(have, m.want).Cmp(m.cap) > 0 {
				over, spent = m, have
				break
			}
		}
		if over == nil {
			continue
		}
		at, ok := whenFits(ks, ms, l.Window)
		if !ok {
			never = true
		} else if at.After(freesAt) {
			freesAt = at
		}
		if first == nil {
			first = &limits.ExceededError{Rule: l.Rule + "." + over.name, Window: l.Window, Unit: over.unit,
				Cap: new(big.Int).Set(over.cap), Spent: spent, Request: new(big.Int).Set(over.want)}
		}
	}
	if first != nil {
		if !never {
			first.FreesAt = freesAt
		}
		return limits.Debit{}, first
	}
	d := limits.Debit{Key: s.Key, At: now, Spend: cloneSpend(sp)}
	for _, l := range ls {
		k := s.budgetFor(l.Rule, l.Window).bucketFor(bucketIndex(now, l.Window))
		k.add(sp, 1)
		d.Budgets = append(d.Budgets, limits.BudgetID{Rule: l.Rule, Window: l.Window})
	}
	return d, nil
}

// whenFits returns when the spend of ms fits every cap once enough of the
// counted buckets ks (ascending) have stopped counting, assuming nothing
// else is spent; false when it never fits (a spend alone above a cap).
func whenFits(ks []*Bucket, ms []metric, window time.Duration) (time.Time, bool) {
	for _, m := range ms {
		if m.want.Cmp(m.cap) > 0 {
			return time.Time{}, false
		}
	}
	rest := make([]*big.Int, len(ms))
	for i, m := range ms {
		rest[i] = sum(ks, m.of)
	}
	for _, k := range ks {
		fits := true
		for i, m := range ms {
			rest[i].Sub(rest[i], m.of(k))
			if new(big.Int).Add(rest[i], m.want).Cmp(m.cap) > 0 {
				fits = false
			}
		}
		if fits {
			return stopsCounting(k.Index, window), true
		}
	}
	// Unreachable: with every bucket gone each spend fits its cap.
	return time.Time{}, false
}

func (k *Bucket) add(sp limits.Spend, sign int64) {
	addClamped(k.Amount, sp.Amount, sign)
	addClamped(k.Fee, sp.Fee, sign)
	k.Requests += sign * sp.Requests
	if k.Requests < 0 {
		k.Requests = 0
	}
	for t, v := range sp.Tokens {
		if k.Tokens == nil {
			k.Tokens = map[string]*big.Int{}
		}
		if k.Tokens[t] == nil {
			k.Tokens[t] = new(big.Int)
		}
		addClamped(k.Tokens[t], v, sign)
		if k.Tokens[t].Sign() == 0 {
			delete(k.Tokens, t)
		}
	}
}

// addClamped adds sign × v to dst, not going below zero.
func addClamped(dst, v *big.Int, sign int64) {
	if v == nil {
		return
	}
	if sign > 0 {
		dst.Add(dst, v)
		return
	}
	dst.Sub(dst, v)
	if dst.Sign() < 0 {
		dst.SetInt64(0)
	}
}

func cloneSpend(sp limits.Spend) limits.Spend {
	c := limits.Spend{Requests: sp.Requests}
	if sp.Amount != nil {
		c.Amount = new(big.Int).Set(sp.Amount)
	}
	if sp.Fee != nil {
		c.Fee = new(big.Int).Set(sp.Fee)
	}
	if len(sp.Tokens) > 0 {
		c.Tokens = make(map[string]*big.Int, len(sp.Tokens))
		for t, v := range sp.Tokens {
			c.Tokens[t] = new(big.Int).Set(v)
		}
	}
	return c
}

// Credit takes d's spend back out of the buckets it was added to (those
// still kept); amounts never go below zero.
func (s *State) Credit(d limits.Debit) {
	for _, id := range d.Budgets {
		b := s.budget(id.Rule, id.Window)
		if b == nil {
			continue
		}
		if n, found := b.find(bucketIndex(d.At, id.Window)); found {
			b.Buckets[n].add(d.Spend, -1)
		}
	}
}

// Usage reports every capped metric of ls at now.
func (s *State) Usage(ls []limits.Limit, now time.Time) []limits.Usage {
	var out []limits.Usage
	for _, l := range ls {
		ks := s.budget(l.Rule, l.Window).counted(now)
		for _, m := range metrics(l, limits.Spend{}) {
			u := limits.Usage{Rule: l.Rule + "." + m.name, Window: l.Window, Unit: m.unit, Cap: new(big.Int).Set(m.cap), Spent: sum(ks, m.of)}
			u.Remaining = new(big.Int).Sub(u.Cap, u.Spent)
			if u.Remaining.Sign() < 0 {
				u.Remaining.SetInt64(0)
			}
			for _, k := range ks {
				if m.of(k).Sign() > 0 {
					if u.FreesAt.IsZero() {
						u.FreesAt = stopsCounting(k.Index, l.Window)
					}
					u.ResetsAt = stopsCounting(k.Index, l.Window)
				}
			}
			out = append(out, u)
		}
	}
	return out
}

// The JSON form: amounts as decimal strings, windows in nanoseconds.
type jsonState struct {
	V       int          `json:"v"`
	Key     string       `json:"key"`
	Budgets []jsonBudget `json:"budgets"`
}

type jsonBudget struct {
	Rule     string       `json:"rule"`
	WindowNS int64        `json:"window_ns"`
	Buckets  []jsonBucket `json:"buckets"`
}

type jsonBucket struct {
	Index    int64             `json:"i"`
	Amount   string            `json:"amount"`
	Fee      string            `json:"fee"`
	Requests int64             `json:"requests"`
	Tokens   map[string]string `json:"tokens,omitempty"`
}

const version = 1

// Marshal encodes s as JSON.
func (s *State) Marshal() ([]byte, error) {
	js := jsonState{V: version, Key: s.Key, Budgets: []jsonBudget{}}
	for _, b := range s.Budgets {
		jb := jsonBudget{Rule: b.Rule, WindowNS: int64(b.Window), Buckets: []jsonBucket{}}
		for _, k := range b.Buckets {
			bk := jsonBucket{Index: k.Index, Amount: k.Amount.String(), Fee: k.Fee.String(), Requests: k.Requests}
			if len(k.Tokens) > 0 {
				bk.Tokens = map[string]string{}
				for t, v := range k.Tokens {
					bk.Tokens[t] = v.String()
				}
			}
			jb.Buckets = append(jb.Buckets, bk)
		}
		js.Budgets = append(js.Budgets, jb)
	}
	return json.Marshal(js)
}

// ErrCorrupt: stored state that does not decode, or is not in order; a
// store refuses to use it rather than forget what was spent.
var ErrCorrupt = errors.New("corrupt budget state")

// Unmarshal decodes and checks the JSON form of a state; the caller checks
// its Key is the one it expects.
func Unmarshal(data []byte) (*State, error) {
	var js jsonState
	if err := json.Unmarshal(data, &js); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if js.V != version {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrCorrupt, js.V, version)
	}
	s := &State{Key: js.Key}
	for _, jb := range js.Budgets {
		w := time.Duration(jb.WindowNS)
		if jb.Rule == "" || w < limits.MinWindow || w > limits.MaxWindow || s.budget(jb.Rule, w) != nil {
			return nil, fmt.Errorf("%w: budget %q window %v", ErrCorrupt, jb.Rule, w)
		}
		b := &Budget{Rule: jb.Rule, Window: w}
		for i, jk := range jb.Buckets {
			if i > 0 && jk.Index <= jb.Buckets[i-1].Index {
				return nil, fmt.Errorf("%w: %s: buckets out of order", ErrCorrupt, jb.Rule)
			}
			k := &Bucket{Index: jk.Index, Requests: jk.Requests}
			var ok1, ok2 bool
			k.Amount, ok1 = parseNat(jk.Amount)
			k.Fee, ok2 = parseNat(jk.Fee)
			if !ok1 || !ok2 || jk.Requests < 0 {
				return nil, fmt.Errorf("%w: %s: bucket %d", ErrCorrupt, jb.Rule, jk.Index)
			}
			for t, v := range jk.Tokens {
				n, ok := parseNat(v)
				if !ok {
					return nil, fmt.Errorf("%w: %s: bucket %d token %s", ErrCorrupt, jb.Rule, jk.Index, t)
				}
				if k.Tokens == nil {
					k.Tokens = map[string]*big.Int{}
				}
				k.Tokens[t] = n
			}
			b.Buckets = append(b.Buckets, k)
		}
		s.Budgets = append(s.Budgets, b)
	}
	s.sortBudgets()
	return s, nil
}

func parseNat(s string) (*big.Int, bool) {
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || v.Sign() < 0 {
		return nil, false
	}
	return v, true
}
