// Package limits keeps each key's rolling spending budgets (amount, fees, requests and token amounts per window), debited durably before signing and shared by every instance using the store.
package limits

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// Spend is what one signed request costs, as policy computes it.
type Spend struct {
	Amount   *big.Int            // value sent (mutez, wei); nil is zero
	Fee      *big.Int            // the most the request can pay in fees; nil is zero
	Tokens   map[string]*big.Int // token amounts moved or approved, by contract address (raw units)
	Requests int64               // usually 1
}

// Limit is one rolling budget of a key: within any interval of length
// Window, what was debited never exceeds any of its caps. A nil cap (0 for
// MaxRequests) is no cap.
type Limit struct {
	Rule        string        // the config path naming it, "tezos.limits[0]"; with Window it identifies the budget
	Window      time.Duration // at least MinWindow
	MaxAmount   *big.Int
	MaxFee      *big.Int
	MaxRequests int64
	MaxTokens   map[string]*big.Int // by contract address, as in Spend.Tokens
	Unit        string              // of amounts and fees in messages: "mutez", "wei"
	AmountName  string              // the amount cap's config name in refusals: "max_amount" (default) or "max_value"
}

// Window bounds.
const (
	MinWindow = time.Minute
	MaxWindow = 366 * 24 * time.Hour
)

// Buckets is the number of buckets a window is divided into. A budget
// counts the spending of the last Buckets+1 whole buckets and of the
// current one, so it may refuse up to two buckets (1/30 of the window)
// early, never late; clocks of instances sharing a store may disagree by up
// to one bucket (a minute for a one-hour window) without a cap being
// exceeded.
const Buckets = 60

// BucketWidth is the width of a window's buckets.
func BucketWidth(window time.Duration) time.Duration { return window / Buckets }

// Counted is the number of whole buckets before the current one that still
// count against a window's caps.
func Counted(window time.Duration) int64 {
	w := BucketWidth(window)
	return int64((window+w-1)/w) + 1
}

// Metric names, as they end a rule name ("tezos.limits[0].max_amount").
const (
	MetricAmount   = "max_amount"
	MetricFee      = "max_fee"
	MetricRequests = "max_requests"
	MetricTokens   = "max_token_amount"
)

// Debit is a debit made by Store.Debit, to give back with Store.Credit.
// The zero Debit (no limits) credits nothing.
type Debit struct {
	Key     string
	At      time.Time
	Spend   Spend
	Budgets []BudgetID // the budgets debited
}

// BudgetID names one budget of a key.
type BudgetID struct {
	Rule   string
	Window time.Duration
}

// Usage is the state of one capped metric of one limit.
type Usage struct {
	Rule      string // "tezos.limits[0].max_amount", "ethereum.limits[1].max_token_amount[0xA0b8…]"
	Window    time.Duration
	Unit      string // "mutez", "wei", "requests", or "" for raw token units
	Cap       *big.Int
	Spent     *big.Int  // counted in the current window
	Remaining *big.Int  // Cap - Spent, at least 0
	FreesAt   time.Time // when the oldest spending still counted stops counting; zero when nothing is counted
	ResetsAt  time.Time // when everything counted now stops counting; zero when nothing is counted
}

// ErrUnavailable: the store could not be read or written; nothing may be signed.
var ErrUnavailable = errors.New("limits store unavailable")

// ErrExceeded matches every *ExceededError with errors.Is.
var ErrExceeded = errors.New("limit exceeded")

// ExceededError is a debit refused because it would exceed a cap.
type ExceededError struct {
	Rule    string // the cap: "tezos.limits[0].max_amount"
	Window  time.Duration
	Unit    string
	Cap     *big.Int
	Spent   *big.Int // counted in the window before this request
	Request *big.Int // what this request would add
	// FreesAt is when enough of what is counted now stops counting for
	// this request to fit every limit it exceeds (if nothing else is
	// spent meanwhile); zero when the request alone is above a cap.
	FreesAt time.Time
}

func (e *ExceededError) Error() string {
	unit := ""
	if e.Unit != "" {
		unit = " " + e.Unit
	}
	when := "never: the request alone is above the cap"
	if !e.FreesAt.IsZero() {
		when = "budget frees up at " + e.FreesAt.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("limit %s: %s%s spent of %s%s per %s, this request needs %s%s; %s",
		e.Rule, e.Spent, unit, e.Cap, unit, fmtWindow(e.Window), e.Request, unit, when)
}

// Is makes errors.Is(err, ErrExceeded) true.
func (e *ExceededError) Is(target error) bool { return target == ErrExceeded }

func fmtWindow(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// Store keeps budgets durably. Implementations are safe for concurrent use
// by many goroutines and, for shared stores, many processes: debits of one
// key are serialized, different keys do not wait on each other.
type Store interface {
	// Debit checks s against every limit of ls at time now and, when all
	// of them allow it, debits all of them atomically and durably before
	// returning. When a cap would be exceeded it debits nothing and returns
	// an *ExceededError (the first cap exceeded, in the order of ls); a
	// store failure wraps ErrUnavailable, and so does a now more than one
	// bucket before spending already recorded (this clock is behind the
	// one that recorded it). With no limits it does nothing.
	Debit(ctx context.Context, key string, ls []Limit, s Spend, now time.Time) (Debit, error)
	// Credit gives a debit back (signing failed), once.
	Credit(ctx context.Context, d Debit) error
	// Usage reports every capped metric of ls for key at time now.
	Usage(ctx context.Context, key string, ls []Limit, now time.Time) ([]Usage, error)
	// Ready reports whether the store can be written.
	Ready(ctx context.Context) error
	Close() error
}

// Check validates limits: rules unique and named, windows in bounds, at
// least one cap each, no negative cap. Stores call it in Debit.
func Check(ls []Limit) error {
	seen := map[string]bool{}
	for _, l := range ls {
		switch {
		case l.Rule == "":
			return errors.New("limits: a limit without a rule name")
		case seen[l.Rule]:
			return fmt.Errorf("limits: rule %s given twice", l.Rule)
		case l.Window < MinWindow || l.Window > MaxWindow:
			return fmt.Errorf("limits: %s: window %v is not between %v and %v", l.Rule, l.Window, MinWindow, MaxWindow)
		case l.MaxAmount == nil && l.MaxFee == nil && l.MaxRequests == 0 && len(l.MaxTokens) == 0:
			return fmt.Errorf("limits: %s has no cap", l.Rule)
		case l.MaxAmount != nil && l.MaxAmount.Sign() < 0, l.MaxFee != nil && l.MaxFee.Sign() < 0, l.MaxRequests < 0:
			return fmt.Errorf("limits: %s has a negative cap", l.Rule)
		}
		for tok, v := range l.MaxTokens {
			if v == nil || v.Sign() < 0 {
				return fmt.Errorf("limits: %s: cap of token %s missing or negative", l.Rule, tok)
			}
		}
		seen[l.Rule] = true
	}
	return nil
}

// Opener opens a store from the watermark URL (file:///dir, postgres://...).
type Opener func(ctx context.Context, u *url.URL) (Store, error)

var (
	regMu   sync.RWMutex
	openers = map[string]Opener{}
)

// Register makes a store available under a URL scheme; registering a scheme twice panics.
func Register(scheme string, o Opener) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := openers[scheme]; dup {
		panic("limits: scheme " + scheme + " registered twice")
	}
	openers[scheme] = o
}

// Open opens the budget store that lives with the watermarks named by
// watermarkURL (the top-level watermark: setting). An unknown scheme is an
// error.
func Open(ctx context.Context, watermarkURL string) (Store, error) {
	u, err := url.Parse(watermarkURL)
	if err != nil {
		return nil, fmt.Errorf("limits store %q: %v", watermarkURL, err)
	}
	regMu.RLock()
	o, ok := openers[u.Scheme]
	known := make([]string, 0, len(openers))
	for s := range openers {
		known = append(known, s)
	}
	regMu.RUnlock()
	if !ok {
		sort.Strings(known)
		return nil, fmt.Errorf("limits store %q: unknown scheme %q (known: %v)", u.Redacted(), u.Scheme, known)
	}
	return o(ctx, u)
}
