package ledger

import (
	"errors"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/keyward/keyward/limits"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func amountLimit(window time.Duration, max int64) limits.Limit {
	return limits.Limit{Rule: "tezos.limits[0]", Window: window, MaxAmount: big.NewInt(max), Unit: "mutez"}
}

func spend(amount int64) limits.Spend { return limits.Spend{Amount: big.NewInt(amount), Requests: 1} }

func exceeded(t *testing.T, err error) *limits.ExceededError {
	t.Helper()
	var e *limits.ExceededError
	if !errors.As(err, &e) || !errors.Is(err, limits.ErrExceeded) {
		t.Fatalf("err = %v, want *ExceededError", err)
	}
	return e
}

// Against a brute-force record of every accepted debit, random debits at
// random times never put more than the cap into any interval of the
// window's length (never late), and a debit is refused only when what the
// ledger counts (at most the window plus two buckets) would exceed the cap.
func TestDebit_NeverExceedsTheCapInAnyWindow(t *testing.T) {
	for _, window := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour, 7*time.Minute + 3*time.Second} {
		rng := rand.New(rand.NewPCG(1, uint64(window)))
		const max = 1000
		l := amountLimit(window, max)
		s := New("k")
		type debit struct {
			at     time.Time
			amount int64
		}
		var accepted []debit
		now := t0
		refused := 0
		for i := 0; i < 3000; i++ {
			now = now.Add(time.Duration(rng.Int64N(int64(window / 20))))
			a := rng.Int64N(300)
			_, err := s.Debit([]limits.Limit{l}, spend(a), now)
			// What the last window plus two buckets hold: a refusal is
			// only right when this is over the cap.
			var recent int64
			for _, d := range accepted {
				if now.Sub(d.at) < window+2*limits.BucketWidth(window) {
					recent += d.amount
				}
			}
			if err != nil {
				exceeded(t, err)
				refused++
				if recent+a <= max {
					t.Fatalf("window %v: %d refused at %v with only %d spent in the last window and two buckets", window, a, now, recent)
				}
				continue
			}
			accepted = append(accepted, debit{now, a})
		}
		// Every interval [s, s+window) starting at an accepted debit holds at most max.
		for i, d := range accepted {
			var in int64
			for _, e := range accepted[i:] {
				if e.at.Sub(d.at) < window {
					in += e.amount
				}
			}
			if in > max {
				t.Fatalf("window %v: %d signed in the window starting at %v, cap %d", window, in, d.at, max)
			}
		}
		if refused == 0 || len(accepted) < 100 {
			t.Fatalf("window %v: %d accepted, %d refused: the test does not exercise the cap", window, len(accepted), refused)
		}
	}
}

// A refusal says when the request fits: one nanosecond before, it is still
// refused; at that time it passes.
func TestDebit_FreesAtIsWhenTheRequestFits(t *testing.T) {
	l := amountLimit(time.Hour, 100)
	s := New("k")
	for i, a := range []int64{30, 30, 40} {
		if _, err := s.Debit([]limits.Limit{l}, spend(a), t0.Add(time.Duration(i)*10*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	now := t0.Add(50 * time.Minute)
	e := exceeded(t, func() error { _, err := s.Debit([]limits.Limit{l}, spend(50), now); return err }())
	if e.Rule != "tezos.limits[0].max_amount" || e.Spent.Int64() != 100 || e.Request.Int64() != 50 || e.Cap.Int64() != 100 || e.Unit != "mutez" {
		t.Fatalf("%+v", e)
	}
	// 50 fits once the first two debits (t0, t0+10m) stop counting.
	if e.FreesAt.Before(t0.Add(10*time.Minute+time.Hour)) || e.FreesAt.After(t0.Add(10*time.Minute+time.Hour+2*limits.BucketWidth(time.Hour))) {
		t.Fatalf("FreesAt %v, want shortly after %v", e.FreesAt, t0.Add(70*time.Minute))
	}
	if _, err := s.Clone().Debit([]limits.Limit{l}, spend(50), e.FreesAt.Add(-time.Nanosecond)); err == nil {
		t.Fatal("passed before FreesAt")
	}
	if _, err := s.Debit([]limits.Limit{l}, spend(50), e.FreesAt); err != nil {
		t.Fatalf("at FreesAt: %v", err)
	}
	// A request above the cap by itself never fits.
	if e := exceeded(t, func() error { _, err := s.Debit([]limits.Limit{l}, spend(101), e.FreesAt); return err }()); !e.FreesAt.IsZero() {
		t.Fatalf("FreesAt %v for a request above the cap", e.FreesAt)
	}
}

// Several limits are debited all or none; the refusal names the first limit
// exceeded and FreesAt is when every exceeded limit allows the request.
func TestDebit_AllLimitsOrNone(t *testing.T) {
	hour := limits.Limit{Rule: "ethereum.limits[0]", Window: time.Hour, MaxRequests: 2, MaxFee: big.NewInt(10)}
	day := limits.Limit{Rule: "ethereum.limits[1]", Window: 24 * time.Hour, MaxAmount: big.NewInt(100), MaxTokens: map[string]*big.Int{"0xT": big.NewInt(5)}}
	ls := []limits.Limit{hour, day}
	s := New("k")
	if _, err := s.Debit(ls, limits.Spend{Amount: big.NewInt(90), Fee: big.NewInt(1), Requests: 1, Tokens: map[string]*big.Int{"0xT": big.NewInt(5)}}, t0); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Marshal()
	// Within the hourly budget, above the daily token cap: nothing moves.
	e := exceeded(t, func() error {
		_, err := s.Debit(ls, limits.Spend{Requests: 1, Tokens: map[string]*big.Int{"0xT": big.NewInt(1)}}, t0.Add(time.Minute))
		return err
	}())
	if e.Rule != "ethereum.limits[1].max_token_amount[0xT]" {
		t.Fatalf("refused by %s", e.Rule)
	}
	if after, _ := s.Marshal(); string(after) != string(before) {
		t.Fatalf("a refused debit changed the state:\n%s\n%s", before, after)
	}
	// Both exceeded: named after the first, frees when the daily one does.
	e = exceeded(t, func() error {
		_, err := s.Debit(ls, limits.Spend{Fee: big.NewInt(10), Requests: 1, Amount: big.NewInt(20)}, t0.Add(time.Minute))
		return err
	}())
	if e.Rule != "ethereum.limits[0].max_fee" || e.FreesAt.Before(t0.Add(24*time.Hour)) {
		t.Fatalf("%s frees at %v", e.Rule, e.FreesAt)
	}
}

func TestCredit_GivesTheDebitBack(t *testing.T) {
	l := limits.Limit{Rule: "tezos.limits[0]", Window: time.Hour, MaxRequests: 1, MaxTokens: map[string]*big.Int{"KT1": big.NewInt(3)}}
	s := New("k")
	sp := limits.Spend{Requests: 1, Tokens: map[string]*big.Int{"KT1": big.NewInt(3)}}
	d, err := s.Debit([]limits.Limit{l}, sp, t0)
	if err != nil {
		t.Fatal(err)
	}
	sp.Tokens["KT1"].SetInt64(99) // the Debit holds its own copy
	if _, err := s.Debit([]limits.Limit{l}, limits.Spend{Requests: 1}, t0); err == nil {
		t.Fatal("second request passed")
	}
	s.Credit(d)
	if _, err := s.Debit([]limits.Limit{l}, limits.Spend{Requests: 1, Tokens: map[string]*big.Int{"KT1": big.NewInt(3)}}, t0.Add(time.Second)); err != nil {
		t.Fatalf("after Credit: %v", err)
	}
	// A repeated credit does not go below zero, and credits of pruned buckets are ignored.
	s.Credit(d)
	s.Credit(d)
	for _, u := range s.Usage([]limits.Limit{l}, t0) {
		if u.Spent.Sign() < 0 {
			t.Fatalf("%s spent %v", u.Rule, u.Spent)
		}
	}
	s.Debit([]limits.Limit{l}, limits.Spend{}, t0.Add(48*time.Hour))
	s.Credit(d)
}

func TestUsage_SpentRemainingAndResets(t *testing.T) {
	l := limits.Limit{Rule: "tezos.limits[0]", Window: time.Hour, MaxAmount: big.NewInt(100), MaxFee: big.NewInt(10), MaxRequests: 5, Unit: "mutez"}
	s := New("k")
	s.Debit([]limits.Limit{l}, limits.Spend{Amount: big.NewInt(30), Requests: 1}, t0)
	s.Debit([]limits.Limit{l}, limits.Spend{Amount: big.NewInt(80), Requests: 1}, t0.Add(30*time.Minute)) // refused: 110 > 100
	s.Debit([]limits.Limit{l}, limits.Spend{Amount: big.NewInt(20), Fee: big.NewInt(2), Requests: 1}, t0.Add(30*time.Minute))
	us := s.Usage([]limits.Limit{l}, t0.Add(40*time.Minute))
	if len(us) != 3 {
		t.Fatalf("%d usages", len(us))
	}
	amount, fee, reqs := us[0], us[1], us[2]
	if amount.Rule != "tezos.limits[0].max_amount" || amount.Spent.Int64() != 50 || amount.Remaining.Int64() != 50 || amount.Unit != "mutez" {
		t.Fatalf("amount %+v", amount)
	}
	if fee.Spent.Int64() != 2 || reqs.Spent.Int64() != 2 || reqs.Remaining.Int64() != 3 || reqs.Unit != "requests" {
		t.Fatalf("fee %+v requests %+v", fee, reqs)
	}
	if !amount.FreesAt.After(t0.Add(time.Hour)) || !amount.ResetsAt.After(t0.Add(90*time.Minute)) || !fee.FreesAt.Equal(fee.ResetsAt) {
		t.Fatalf("frees %v resets %v, fee frees %v resets %v", amount.FreesAt, amount.ResetsAt, fee.FreesAt, fee.ResetsAt)
	}
	if us := s.Usage([]limits.Limit{l}, t0.Add(3*time.Hour)); us[0].Spent.Sign() != 0 || !us[0].FreesAt.IsZero() || us[0].Remaining.Int64() != 100 {
		t.Fatalf("after the window: %+v", us[0])
	}
}

// A clock more than a bucket behind the newest spending fails closed.
func TestDebit_ClockBehindFailsClosed(t *testing.T) {
	l := amountLimit(time.Hour, 100)
	s := New("k")
	if _, err := s.Debit([]limits.Limit{l}, spend(1), t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Debit([]limits.Limit{l}, spend(1), t0.Add(-limits.BucketWidth(time.Hour))); err != nil {
		t.Fatalf("one bucket behind: %v", err)
	}
	if _, err := s.Debit([]limits.Limit{l}, spend(1), t0.Add(-3*limits.BucketWidth(time.Hour))); !errors.Is(err, ErrClockBehind) {
		t.Fatalf("three buckets behind: %v", err)
	}
}

func TestDebit_RejectsBadLimitsAndSpends(t *testing.T) {
	ok := amountLimit(time.Hour, 1)
	for name, tc := range map[string]struct {
		ls []limits.Limit
		sp limits.Spend
	}{
		"no rule":          {[]limits.Limit{{Window: time.Hour, MaxRequests: 1}}, spend(0)},
		"rule twice":       {[]limits.Limit{ok, ok}, spend(0)},
		"window too short": {[]limits.Limit{{Rule: "r", Window: time.Second, MaxRequests: 1}}, spend(0)},
		"no cap":           {[]limits.Limit{{Rule: "r", Window: time.Hour}}, spend(0)},
		"negative cap":     {[]limits.Limit{{Rule: "r", Window: time.Hour, MaxFee: big.NewInt(-1)}}, spend(0)},
		"negative spend":   {[]limits.Limit{ok}, spend(-1)},
		"nil token spend":  {[]limits.Limit{ok}, limits.Spend{Tokens: map[string]*big.Int{"x": nil}}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New("k").Debit(tc.ls, tc.sp, t0); err == nil || errors.Is(err, limits.ErrExceeded) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestMarshal_RoundTripAndCorruption(t *testing.T) {
	l := limits.Limit{Rule: "ethereum.limits[0]", Window: time.Hour, MaxAmount: new(big.Int).Lsh(big.NewInt(1), 255), MaxTokens: map[string]*big.Int{"0xT": big.NewInt(9)}}
	s := New("poster")
	huge := new(big.Int).Lsh(big.NewInt(1), 250)
	s.Debit([]limits.Limit{l}, limits.Spend{Amount: huge, Requests: 1, Tokens: map[string]*big.Int{"0xT": big.NewInt(4)}}, t0)
	s.Debit([]limits.Limit{amountLimit(24*time.Hour, 5)}, spend(5), t0.Add(time.Hour))
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(b)
	if err != nil || back.Key != "poster" {
		t.Fatal(back, err)
	}
	if again, _ := back.Marshal(); string(again) != string(b) {
		t.Fatalf("round trip:\n%s\n%s", b, again)
	}
	if _, err := back.Debit([]limits.Limit{l}, limits.Spend{Tokens: map[string]*big.Int{"0xT": big.NewInt(6)}}, t0); !errors.Is(err, limits.ErrExceeded) {
		t.Fatalf("decoded state lost the token spend: %v", err)
	}
	for name, data := range map[string]string{
		"not json":     "{",
		"version":      `{"v":2,"key":"poster","budgets":[]}`,
		"short window": `{"v":1,"key":"poster","budgets":[{"rule":"r","window_ns":1,"buckets":[]}]}`,
		"negative":     `{"v":1,"key":"poster","budgets":[{"rule":"r","window_ns":3600000000000,"buckets":[{"i":1,"amount":"-1","fee":"0","requests":0}]}]}`,
		"out of order": `{"v":1,"key":"poster","budgets":[{"rule":"r","window_ns":3600000000000,"buckets":[{"i":2,"amount":"1","fee":"0","requests":0},{"i":1,"amount":"1","fee":"0","requests":0}]}]}`,
		"bad token":    `{"v":1,"key":"poster","budgets":[{"rule":"r","window_ns":3600000000000,"buckets":[{"i":1,"amount":"1","fee":"0","requests":0,"tokens":{"t":"x"}}]}]}`,
		"budget twice": `{"v":1,"key":"poster","budgets":[{"rule":"r","window_ns":3600000000000,"buckets":[]},{"rule":"r","window_ns":3600000000000,"buckets":[]}]}`,
		"empty amount": `{"v":1,"key":"poster","budgets":[{"rule":"r","window_ns":3600000000000,"buckets":[{"i":1,"amount":"","fee":"0","requests":0}]}]}`,
	} {
		if _, err := Unmarshal([]byte(data)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}
