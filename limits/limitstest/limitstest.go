// Package limitstest is the conformance suite every limits.Store must pass, run through the Store interface only.
//
// A store's test calls Run with a Harness:
//
//	func TestConformance(t *testing.T) {
//		limitstest.Run(t, limitstest.Harness{
//			Open:   func(t *testing.T) limits.Store { … },
//			Reopen: func(t *testing.T, old limits.Store) limits.Store { … },
//			Break:  func(t *testing.T, s limits.Store) (restore func()) { … },
//		})
//	}
//
// The suite never closes a store: Open and Reopen own the store's life and
// should register its Close with t.Cleanup. Every subtest uses keys of its
// own, so a store shared between subtests still passes.
package limitstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/limits"
)

// Harness tells the suite how to use a store.
type Harness struct {
	// Open returns a store for one subtest.
	Open func(t *testing.T) limits.Store
	// Reopen closes old and opens the same data again, as after a restart (or a SIGKILL: nothing is flushed at Close that Debit had not made durable).
	Reopen func(t *testing.T, old limits.Store) limits.Store
	// Break makes s's storage unreachable (directory gone, database down) until restore is called.
	Break func(t *testing.T, s limits.Store) (restore func())
	// Instances, when set, opens n stores sharing one budget (instances on one database); the races then run across them too.
	Instances func(t *testing.T, n int) []limits.Store
}

// The size of the races: Racers goroutines race for a budget that allows
// exactly Allowed of them.
const (
	Racers  = 200
	Allowed = 37
)

// Run runs the conformance table.
func Run(t *testing.T, h Harness) {
	t.Helper()
	cases := []struct {
		name string
		run  func(t *testing.T, h Harness)
	}{
		{"AtTheCapSignsOneUnitOverRefused", testAtTheCap},
		{"RefusalSaysWhenBudgetFreesUp", testFreesAt},
		{"SpendingCountsForTheWholeWindow", testWholeWindow},
		{"WindowRolloverFreesBudget", testRollover},
		{"CreditRestoresBudget", testCredit},
		{"AllLimitsOrNone", testAllOrNone},
		{"KeysAreIndependent", testKeysIndependent},
		{"UsageReportsSpentAndRemaining", testUsage},
		{"NoLimitsNoDebit", testNoLimits},
		{"LargerCapLaterAllowsMore", testCapChange},
		{"Concurrent200ExactlyNDebited", testRace},
		{"ConcurrentKeysDoNotShareBudgets", testRaceManyKeys},
		{"ReadyOnHealthyStore", testReady},
		{"RestartKeepsWhatWasSpent", testRestart},
		{"CreditAfterRestart", testCreditAfterRestart},
		{"StoreDownIsUnavailableAndDebitsNothing", testUnavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, h) })
	}
	if h.Instances != nil {
		t.Run("ThreeInstancesExactlyNDebited", func(t *testing.T) { race(t, h.Instances(t, 3), newKey(t)) })
	}
}

// --- helpers ---

// t0 is the suite's clock origin: a round hour, so bucket boundaries are predictable.
var t0 = time.Now().UTC().Truncate(time.Hour).Add(-48 * time.Hour)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func newKey(t *testing.T) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "tz1limits" + hex.EncodeToString(b[:])
}

const token = "KT1PWx2mnDueood7fEmfbBDKx1D9BAnnXitn"

// oracle is a day budget on every metric.
func oracle() limits.Limit {
	return limits.Limit{Rule: "tezos.limits[0]", Window: 24 * time.Hour, Unit: "mutez",
		MaxAmount: big.NewInt(500_000_000), MaxFee: big.NewInt(5_000_000), MaxRequests: 1000,
		MaxTokens: map[string]*big.Int{token: big.NewInt(100)}}
}

func amount(a int64) limits.Spend { return limits.Spend{Amount: big.NewInt(a), Requests: 1} }

func debit(t *testing.T, s limits.Store, key string, ls []limits.Limit, sp limits.Spend, at time.Time) limits.Debit {
	t.Helper()
	d, err := s.Debit(ctx(t), key, ls, sp, at)
	if err != nil {
		t.Fatalf("Debit(%s at %v): %v, want it debited", key, at, err)
	}
	return d
}

func refused(t *testing.T, s limits.Store, key string, ls []limits.Limit, sp limits.Spend, at time.Time, rule string) *limits.ExceededError {
	t.Helper()
	_, err := s.Debit(ctx(t), key, ls, sp, at)
	var e *limits.ExceededError
	if !errors.As(err, &e) || !errors.Is(err, limits.ErrExceeded) {
		t.Fatalf("Debit(%s at %v) = %v, want refused by %s", key, at, err, rule)
	}
	if e.Rule != rule {
		t.Fatalf("refused by %s, want %s (%v)", e.Rule, rule, err)
	}
	return e
}

// --- cases ---

func testAtTheCap(t *testing.T, h Harness) {
	s := h.Open(t)
	l := oracle()
	ls := []limits.Limit{l}
	for _, tc := range []struct {
		metric   string
		atCap    limits.Spend
		oneOver  limits.Spend
		halfCaps limits.Spend
	}{
		{"max_amount", amount(500_000_000), amount(1), amount(250_000_000)},
		{"max_fee", limits.Spend{Fee: big.NewInt(5_000_000), Requests: 1}, limits.Spend{Fee: big.NewInt(1), Requests: 1}, limits.Spend{Fee: big.NewInt(2_500_000), Requests: 1}},
		{"max_requests", limits.Spend{Requests: 1000}, limits.Spend{Requests: 1}, limits.Spend{Requests: 500}},
		{"max_token_amount[" + token + "]", limits.Spend{Requests: 1, Tokens: map[string]*big.Int{token: big.NewInt(100)}},
			limits.Spend{Requests: 1, Tokens: map[string]*big.Int{token: big.NewInt(1)}},
			limits.Spend{Requests: 1, Tokens: map[string]*big.Int{token: big.NewInt(50)}}},
	} {
		t.Run(tc.metric, func(t *testing.T) {
			key := newKey(t)
			// In one request and in two halves.
			debit(t, s, key, ls, tc.atCap, t0)
			refused(t, s, key, ls, tc.oneOver, t0.Add(time.Second), "tezos.limits[0]."+tc.metric)
			key = newKey(t)
			debit(t, s, key, ls, tc.halfCaps, t0)
			debit(t, s, key, ls, tc.halfCaps, t0.Add(time.Hour))
			e := refused(t, s, key, ls, tc.oneOver, t0.Add(2*time.Hour), "tezos.limits[0]."+tc.metric)
			if e.Window != l.Window || e.Cap == nil || e.Spent == nil || e.Request == nil || e.FreesAt.IsZero() {
				t.Fatalf("refusal %+v", e)
			}
		})
	}
}

func testFreesAt(t *testing.T, h Harness) {
	s := h.Open(t)
	key := newKey(t)
	l := limits.Limit{Rule: "ethereum.limits[0]", Window: time.Hour, MaxAmount: big.NewInt(100), Unit: "wei"}
	ls := []limits.Limit{l}
	debit(t, s, key, ls, amount(60), t0)
	debit(t, s, key, ls, amount(40), t0.Add(20*time.Minute))
	e := refused(t, s, key, ls, amount(50), t0.Add(30*time.Minute), "ethereum.limits[0].max_amount")
	if e.Spent.Int64() != 100 || e.Request.Int64() != 50 || e.Cap.Int64() != 100 || e.Unit != "wei" {
		t.Fatalf("refusal %+v", e)
	}
	// Frees once the first debit stops counting: after a whole window,
	// at most two buckets late.
	if e.FreesAt.Before(t0.Add(time.Hour)) || e.FreesAt.After(t0.Add(time.Hour+2*limits.BucketWidth(time.Hour))) {
		t.Fatalf("FreesAt %v, want within two buckets after %v", e.FreesAt, t0.Add(time.Hour))
	}
	refused(t, s, key, ls, amount(50), e.FreesAt.Add(-time.Nanosecond), "ethereum.limits[0].max_amount")
	debit(t, s, key, ls, amount(50), e.FreesAt)
	// Alone above the cap: never frees.
	if e := refused(t, s, key, ls, amount(101), e.FreesAt, "ethereum.limits[0].max_amount"); !e.FreesAt.IsZero() {
		t.Fatalf("FreesAt %v for a request above the cap", e.FreesAt)
	}
}

// What was signed at t still counts at t + window - 1ns, whatever the
// bucket boundaries: keyward may refuse early, never late.
func testWholeWindow(t *testing.T, h Harness) {
	s := h.Open(t)
	l := limits.Limit{Rule: "tezos.limits[1]", Window: time.Hour, MaxRequests: 1}
	ls := []limits.Limit{l}
	w := limits.BucketWidth(time.Hour)
	for _, at := range []time.Time{t0, t0.Add(w - time.Nanosecond), t0.Add(w / 2), t0.Add(-time.Nanosecond)} {
		key := newKey(t)
		debit(t, s, key, ls, limits.Spend{Requests: 1}, at)
		refused(t, s, key, ls, limits.Spend{Requests: 1}, at.Add(time.Hour-time.Nanosecond), "tezos.limits[1].max_requests")
	}
}

func testRollover(t *testing.T, h Harness) {
	s := h.Open(t)
	key := newKey(t)
	ls := []limits.Limit{oracle()}
	debit(t, s, key, ls, amount(500_000_000), t0)
	refused(t, s, key, ls, amount(1), t0.Add(12*time.Hour), "tezos.limits[0].max_amount")
	refused(t, s, key, ls, amount(1), t0.Add(24*time.Hour-time.Second), "tezos.limits[0].max_amount")
	// A window and two buckets later everything is free again.
	later := t0.Add(24*time.Hour + 2*limits.BucketWidth(24*time.Hour))
	debit(t, s, key, ls, amount(500_000_000), later)
	refused(t, s, key, ls, amount(1), later.Add(time.Minute), "tezos.limits[0].max_amount")
}

func testCredit(t *testing.T, h Harness) {
	s := h.Open(t)
	key := newKey(t)
	ls := []limits.Limit{oracle()}
	d := debit(t, s, key, ls, amount(400_000_000), t0)
	refused(t, s, key, ls, amount(200_000_000), t0.Add(time.Minute), "tezos.limits[0].max_amount")
	if err := s.Credit(ctx(t), d); err != nil {
		t.Fatalf("Credit: %v", err)
	}
	debit(t, s, key, ls, amount(500_000_000), t0.Add(2*time.Minute))
	refused(t, s, key, ls, amount(1), t0.Add(3*time.Minute), "tezos.limits[0].max_amount")
}

func testAllOrNone(t *testing.T, h Harness) {
	s := h.Open(t)
	key := newKey(t)
	hour := limits.Limit{Rule: "ethereum.limits[0]", Window: time.Hour, MaxRequests: 3}
	day := limits.Limit{Rule: "ethereum.limits[1]", Window: 24 * time.Hour, MaxAmount: big.NewInt(10)}
	ls := []limits.Limit{hour, day}
	debit(t, s, key, ls, amount(8), t0)
	// Over the daily amount: the hourly request count must not move.
	refused(t, s, key, ls, amount(3), t0.Add(time.Minute), "ethereum.limits[1].max_amount")
	refused(t, s, key, ls, amount(3), t0.Add(time.Minute), "ethereum.limits[1].max_amount")
	debit(t, s, key, ls, amount(1), t0.Add(2*time.Minute))
	debit(t, s, key, ls, amount(1), t0.Add(3*time.Minute))
	refused(t, s, key, ls, amount(0), t0.Add(4*time.Minute), "ethereum.limits[0].max_requests")
	// The hourly budget frees first, the daily one still holds.
	next := t0.Add(time.Hour + 2*limits.BucketWidth(time.Hour) + 3*time.Minute)
	debit(t, s, key, ls, amount(0), next)
	refused(t, s, key, ls, amount(1), next.Add(time.Second), "ethereum.limits[1].max_amount")
}

func testKeysIndependent(t *testing.T, h Harness) {
	s := h.Open(t)
	a, b := newKey(t), newKey(t)
	ls := []limits.Limit{oracle()}
	debit(t, s, a, ls, amount(500_000_000), t0)
	debit(t, s, b, ls, amount(500_000_000), t0)
	refused(t, s, a, ls, amount(1), t0, "tezos.limits[0].max_amount")
	// The same rule name under another window is another budget.
	other := oracle()
	other.Window = time.Hour
	debit(t, s, a, []limits.Limit{other}, amount(500_000_000), t0)
}

func testUsage(t *testing.T, h Harness) {
	s := h.Open(t)
	key := newKey(t)
	ls := []limits.Limit{oracle()}
	us, err := s.Usage(ctx(t), key, ls, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != 4 || us[0].Spent.Sign() != 0 || us[0].Remaining.Int64() != 500_000_000 || !us[0].FreesAt.IsZero() {
		t.Fatalf("usage of an unused key: %+v", us)
	}
	debit(t, s, key, ls, limits.Spend{Amount: big.NewInt(100_000_000), Fee: big.NewInt(3), Requests: 1, Tokens: map[string]*big.Int{token: big.NewInt(7)}}, t0)
	debit(t, s, key, ls, amount(50_000_000), t0.Add(6*time.Hour))
	us, err = s.Usage(ctx(t), key, ls, t0.Add(7*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		rule             string
		spent, remaining int64
	}{
		{"tezos.limits[0].max_amount", 150_000_000, 350_000_000},
		{"tezos.limits[0].max_fee", 3, 4_999_997},
		{"tezos.limits[0].max_requests", 2, 998},
		{"tezos.limits[0].max_token_amount[" + token + "]", 7, 93},
	}
	if len(us) != len(want) {
		t.Fatalf("%d usages: %+v", len(us), us)
	}
	for i, w := range want {
		u := us[i]
		if u.Rule != w.rule || u.Spent.Int64() != w.spent || u.Remaining.Int64() != w.remaining || u.Window != 24*time.Hour {
			t.Errorf("usage %d = %s spent %v remaining %v, want %+v", i, u.Rule, u.Spent, u.Remaining, w)
		}
		if u.FreesAt.Before(t0.Add(24*time.Hour)) || u.ResetsAt.Before(u.FreesAt) {
			t.Errorf("%s frees at %v, resets at %v", u.Rule, u.FreesAt, u.ResetsAt)
		}
	}
	if !us[0].ResetsAt.After(t0.Add(30 * time.Hour)) {
		t.Errorf("amount resets at %v, before the second debit stops counting", us[0].ResetsAt)
	}
}

func testNoLimits(t *testing.T, h Harness) {
	s := h.Open(t)
	d, err := s.Debit(ctx(t), newKey(t), nil, amount(1), t0)
	if err != nil || len(d.Budgets) != 0 {
		t.Fatalf("Debit without limits = %+v, %v", d, err)
	}
	if err := s.Credit(ctx(t), d); err != nil {
		t.Fatalf("Credit of an empty debit: %v", err)
	}
	if _, err := s.Debit(ctx(t), newKey(t), []limits.Limit{{Rule: "tezos.limits[0]", Window: time.Hour}}, amount(1), t0); err == nil || errors.Is(err, limits.ErrExceeded) {
		t.Fatalf("a limit without caps: %v, want an error", err)
	}
}

func testCapChange(t *testing.T, h Harness) {
	s := h.Open(t)
	key := newKey(t)
	l := oracle()
	debit(t, s, key, []limits.Limit{l}, amount(500_000_000), t0)
	l.MaxAmount = big.NewInt(600_000_000)
	debit(t, s, key, []limits.Limit{l}, amount(100_000_000), t0.Add(time.Minute))
	refused(t, s, key, []limits.Limit{l}, amount(1), t0.Add(2*time.Minute), "tezos.limits[0].max_amount")
}

// race has Racers goroutines debit one request each against a budget that
// allows exactly Allowed, spread over stores, and checks exactly Allowed
// pass and every other one is refused by the cap.
func race(t *testing.T, stores []limits.Store, key string) {
	t.Helper()
	ls := []limits.Limit{{Rule: "ethereum.limits[0]", Window: time.Hour, MaxAmount: big.NewInt(Allowed), MaxRequests: 1000}}
	var ok, over atomic.Int64
	errs := make(chan error, Racers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < Racers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			_, err := stores[i%len(stores)].Debit(ctx(t), key, ls, amount(1), t0.Add(time.Duration(i)*time.Millisecond))
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, limits.ErrExceeded):
				over.Add(1)
			default:
				errs <- err
			}
		}(i)
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Debit: %v", err)
	}
	if ok.Load() != Allowed || over.Load() != Racers-Allowed {
		t.Fatalf("%d debited and %d refused of %d racing for a budget of %d", ok.Load(), over.Load(), Racers, Allowed)
	}
	// Every store sees the budget spent.
	for i, s := range stores {
		refused(t, s, key, ls, amount(1), t0.Add(time.Second), "ethereum.limits[0].max_amount")
		us, err := s.Usage(ctx(t), key, ls, t0.Add(time.Second))
		if err != nil || us[0].Spent.Int64() != Allowed {
			t.Fatalf("store %d: usage %+v, %v", i, us, err)
		}
	}
}

func testRace(t *testing.T, h Harness) {
	race(t, []limits.Store{h.Open(t)}, newKey(t))
}

func testRaceManyKeys(t *testing.T, h Harness) {
	s := h.Open(t)
	ls := []limits.Limit{{Rule: "tezos.limits[0]", Window: time.Hour, MaxRequests: 3}}
	keys := make([]string, 20)
	for i := range keys {
		keys[i] = newKey(t)
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := s.Debit(ctx(t), keys[i%len(keys)], ls, limits.Spend{Requests: 1}, t0)
			if err == nil {
				ok.Add(1)
			} else if !errors.Is(err, limits.ErrExceeded) {
				t.Errorf("Debit: %v", err)
			}
		}(i)
	}
	wg.Wait()
	if ok.Load() != 60 {
		t.Fatalf("%d debited, want 3 for each of 20 keys", ok.Load())
	}
}

func testReady(t *testing.T, h Harness) {
	if err := h.Open(t).Ready(ctx(t)); err != nil {
		t.Fatalf("Ready: %v", err)
	}
}

func testRestart(t *testing.T, h Harness) {
	s := h.Open(t)
	key := newKey(t)
	ls := []limits.Limit{oracle()}
	debit(t, s, key, ls, amount(300_000_000), t0)
	debit(t, s, key, ls, amount(200_000_000), t0.Add(time.Hour))
	s = h.Reopen(t, s)
	refused(t, s, key, ls, amount(1), t0.Add(2*time.Hour), "tezos.limits[0].max_amount")
	us, err := s.Usage(ctx(t), key, ls, t0.Add(2*time.Hour))
	if err != nil || us[0].Spent.Int64() != 500_000_000 {
		t.Fatalf("usage after restart: %+v, %v", us, err)
	}
}

func testCreditAfterRestart(t *testing.T, h Harness) {
	s := h.Open(t)
	key := newKey(t)
	ls := []limits.Limit{oracle()}
	d := debit(t, s, key, ls, amount(500_000_000), t0)
	s = h.Reopen(t, s)
	if err := s.Credit(ctx(t), d); err != nil {
		t.Fatal(err)
	}
	debit(t, s, key, ls, amount(500_000_000), t0.Add(time.Minute))
}

func testUnavailable(t *testing.T, h Harness) {
	s := h.Open(t)
	key := newKey(t)
	ls := []limits.Limit{{Rule: "tezos.limits[0]", Window: time.Hour, MaxRequests: 3}}
	d := debit(t, s, key, ls, limits.Spend{Requests: 1}, t0)
	restore := h.Break(t, s)
	_, derr := s.Debit(ctx(t), key, ls, limits.Spend{Requests: 1}, t0.Add(time.Second))
	_, nerr := s.Debit(ctx(t), newKey(t), ls, limits.Spend{Requests: 1}, t0.Add(time.Second))
	cerr := s.Credit(ctx(t), d)
	rerr := s.Ready(ctx(t))
	restore()
	for name, err := range map[string]error{"Debit": derr, "Debit of a new key": nerr, "Credit": cerr, "Ready": rerr} {
		if !errors.Is(err, limits.ErrUnavailable) || errors.Is(err, limits.ErrExceeded) {
			t.Errorf("%s with the store down = %v, want ErrUnavailable", name, err)
		}
	}
	// Nothing moved while it was down: exactly two more requests fit.
	debit(t, s, key, ls, limits.Spend{Requests: 1}, t0.Add(2*time.Second))
	debit(t, s, key, ls, limits.Spend{Requests: 1}, t0.Add(3*time.Second))
	refused(t, s, key, ls, limits.Spend{Requests: 1}, t0.Add(4*time.Second), "tezos.limits[0].max_requests")
}
