// Package watermarktest is the conformance suite every watermark.Store must pass, run through the Store interface only.
//
// A store's test calls Run (and RunPersistent when it can reopen its data):
//
//	func TestConformance(t *testing.T) {
//		watermarktest.Run(t, func(t *testing.T) watermark.Store {
//			s, err := file.Open(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// The suite never closes a store: open (and reopen) own the store's life and
// should register its Close with t.Cleanup. Every subtest uses IDs of its own
// (a random key), so a store shared between subtests still passes, though a
// fresh one per subtest is expected.
package watermarktest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testutil"
	"github.com/keyward/keyward/watermark"
)

// Kinds of consensus requests (magic bytes).
const (
	kindBlock          byte = 0x11
	kindPreattestation byte = 0x12
	kindAttestation    byte = 0x13
)

const chain = "NetXdQprcVkpaWU"

// Opener returns a store for one subtest.
type Opener func(t *testing.T) watermark.Store

// Reopener closes old and opens the same data again, as after a restart.
type Reopener func(t *testing.T, old watermark.Store) watermark.Store

type suiteCase struct {
	name string
	run  func(t *testing.T, s watermark.Store)
}

// Run runs the conformance table against stores made by open, one fresh
// store per subtest.
func Run(t *testing.T, open Opener) {
	t.Helper()
	for _, c := range cases() {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, open(t))
		})
	}
}

// RunPersistent runs Run and then the subtests that need a restart: marks,
// refusals and signatures must survive reopen.
func RunPersistent(t *testing.T, open Opener, reopen Reopener) {
	t.Helper()
	Run(t, open)
	for _, c := range persistentCases() {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, open(t), reopen)
		})
	}
}

func cases() []suiteCase {
	return []suiteCase{
		{"FirstRequestPasses", testFirstRequestPasses},
		{"PassesStrictlyHigherLevel", testPassesStrictlyHigherLevel},
		{"PassesSameLevelHigherRound", testPassesSameLevelHigherRound},
		{"RefusesSameLevelRoundDifferentDigest", testRefusesSameLevelRoundDifferentDigest},
		{"RetrySameDigestPassesAndReturnsStoredSignature", testRetryReturnsStoredSignature},
		{"RefusesLowerLevel", testRefusesLowerLevel},
		{"RefusesLowerRoundSameLevel", testRefusesLowerRoundSameLevel},
		{"IDsAreIndependent", testIDsAreIndependent},
		{"SetSignatureForStaleMarkIgnored", testSetSignatureStaleIgnored},
		{"SetSignatureForUnknownIDCreatesNothing", testSetSignatureUnknownID},
		{"SetThenMarks", testSetThenMarks},
		{"SetOverwritesUnconditionally", testSetOverwrites},
		{"MarksListsOnlyAdvancedIDs", testMarksListsOnlyAdvancedIDs},
		{"ZeroAndNegativeLevelsAreOrderedAsIntegers", testZeroAndNegative},
		{"Concurrent200DigestsOneLevelExactlyOneWins", testConcurrentOneWins},
		{"ConcurrentIdenticalRetriesAllPass", testConcurrentRetries},
		{"ConcurrentAdvancesOnManyIDsAllPass", testConcurrentManyIDs},
		{"ReadyOnHealthyStore", testReady},
	}
}

type persistentCase struct {
	name string
	run  func(t *testing.T, s watermark.Store, reopen Reopener)
}

func persistentCases() []persistentCase {
	return []persistentCase{
		{"MarksSurviveReopen", testMarksSurviveReopen},
		{"RefusalsSurviveReopen", testRefusalsSurviveReopen},
		{"SignatureSurvivesReopen", testSignatureSurvivesReopen},
		{"SetSurvivesReopen", testSetSurvivesReopen},
		{"EmptySignatureIsNoSignature", testEmptySignatureIsNoSignature},
	}
}

// --- helpers ---

func ctx(t *testing.T) context.Context { return testutil.Context(t, time.Minute) }

// newKey returns a key name no other subtest uses.
func newKey(t *testing.T) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "tz1test" + hex.EncodeToString(b[:])
}

func newID(t *testing.T, kind byte) watermark.ID {
	return watermark.ID{Key: newKey(t), Chain: chain, Kind: kind}
}

// digest returns a 32-byte digest named by s.
func digest(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func pass(t *testing.T, s watermark.Store, id watermark.ID, level, round int64, d []byte) []byte {
	t.Helper()
	sig, err := s.Advance(ctx(t), id, level, round, d)
	if err != nil {
		t.Fatalf("Advance(%s, level %d, round %d): %v, want pass", id, level, round, err)
	}
	return sig
}

func refused(t *testing.T, s watermark.Store, id watermark.ID, level, round int64, d []byte) *watermark.RefusedError {
	t.Helper()
	sig, err := s.Advance(ctx(t), id, level, round, d)
	var re *watermark.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("Advance(%s, level %d, round %d) = (%x, %v), want *RefusedError", id, level, round, sig, err)
	}
	if errors.Is(err, watermark.ErrUnavailable) {
		t.Fatalf("refusal also wraps ErrUnavailable: %v", err)
	}
	if re.Level != level || re.Round != round {
		t.Errorf("RefusedError names level %d round %d, want %d %d", re.Level, re.Round, level, round)
	}
	return re
}

func setSig(t *testing.T, s watermark.Store, id watermark.ID, level, round int64, d, sig []byte) {
	t.Helper()
	if err := s.SetSignature(ctx(t), id, level, round, d, sig); err != nil {
		t.Fatalf("SetSignature(%s, %d, %d): %v", id, level, round, err)
	}
}

// markOf returns the listed mark for id.
func markOf(t *testing.T, s watermark.Store, id watermark.ID) (watermark.Mark, bool) {
	t.Helper()
	es, err := s.Marks(ctx(t))
	if err != nil {
		t.Fatalf("Marks: %v", err)
	}
	var found []watermark.Mark
	for _, e := range es {
		if e.ID == id {
			found = append(found, e.Mark)
		}
	}
	switch len(found) {
	case 0:
		return watermark.Mark{}, false
	case 1:
		return found[0], true
	}
	t.Fatalf("Marks lists %s %d times", id, len(found))
	return watermark.Mark{}, false
}

func wantMark(t *testing.T, s watermark.Store, id watermark.ID, want watermark.Mark) {
	t.Helper()
	got, ok := markOf(t, s, id)
	if !ok {
		t.Fatalf("Marks does not list %s, want %s", id, fmtMark(want))
	}
	if !equalMark(got, want) {
		t.Fatalf("mark of %s = %s, want %s", id, fmtMark(got), fmtMark(want))
	}
}

func equalMark(a, b watermark.Mark) bool {
	return a.Level == b.Level && a.Round == b.Round && bytes.Equal(a.Digest, b.Digest) && bytes.Equal(a.Signature, b.Signature)
}

func fmtMark(m watermark.Mark) string {
	return fmt.Sprintf("{level %d round %d digest %x sig %x}", m.Level, m.Round, m.Digest, m.Signature)
}

// --- the rules ---

func testFirstRequestPasses(t *testing.T, s watermark.Store) {
	id := newID(t, kindAttestation)
	if _, ok := markOf(t, s, id); ok {
		t.Fatalf("fresh ID %s already listed", id)
	}
	if sig := pass(t, s, id, 100, 0, digest("a")); sig != nil {
		t.Fatalf("first Advance returned signature %x, want nil", sig)
	}
	wantMark(t, s, id, watermark.Mark{Level: 100, Round: 0, Digest: digest("a")})
}

func testPassesStrictlyHigherLevel(t *testing.T, s watermark.Store) {
	id := newID(t, kindBlock)
	pass(t, s, id, 100, 3, digest("a"))
	pass(t, s, id, 101, 0, digest("b")) // higher level, lower round
	pass(t, s, id, 200, 7, digest("c"))
	wantMark(t, s, id, watermark.Mark{Level: 200, Round: 7, Digest: digest("c")})
}

func testPassesSameLevelHigherRound(t *testing.T, s watermark.Store) {
	id := newID(t, kindPreattestation)
	pass(t, s, id, 100, 0, digest("a"))
	pass(t, s, id, 100, 1, digest("b"))
	pass(t, s, id, 100, 5, digest("c"))
	wantMark(t, s, id, watermark.Mark{Level: 100, Round: 5, Digest: digest("c")})
}

func testRefusesSameLevelRoundDifferentDigest(t *testing.T, s watermark.Store) {
	id := newID(t, kindAttestation)
	pass(t, s, id, 100, 2, digest("a"))
	re := refused(t, s, id, 100, 2, digest("b"))
	if re.ID != id || re.Have.Level != 100 || re.Have.Round != 2 || !bytes.Equal(re.Have.Digest, digest("a")) {
		t.Errorf("RefusedError = %+v, want the stored mark of %s", re, id)
	}
	wantMark(t, s, id, watermark.Mark{Level: 100, Round: 2, Digest: digest("a")})
}

func testRetryReturnsStoredSignature(t *testing.T, s watermark.Store) {
	id := newID(t, kindAttestation)
	d := digest("a")
	pass(t, s, id, 100, 0, d)
	if sig := pass(t, s, id, 100, 0, d); sig != nil {
		t.Fatalf("retry before SetSignature returned %x, want nil", sig)
	}
	want := []byte{0x00, 0x01, 0xfe, 0xff, 0x42} // arbitrary bytes, returned exactly
	setSig(t, s, id, 100, 0, d, want)
	got := pass(t, s, id, 100, 0, d)
	if !bytes.Equal(got, want) {
		t.Fatalf("retry returned signature %x, want %x", got, want)
	}
	// The caller owns the returned slice: changing it changes nothing stored.
	got[0] ^= 0xff
	if again := pass(t, s, id, 100, 0, d); !bytes.Equal(again, want) {
		t.Fatalf("second retry returned %x, want %x", again, want)
	}
	wantMark(t, s, id, watermark.Mark{Level: 100, Round: 0, Digest: d, Signature: want})
	// A retry is not an advance: a different payload is still refused.
	refused(t, s, id, 100, 0, digest("b"))
}

func testRefusesLowerLevel(t *testing.T, s watermark.Store) {
	id := newID(t, kindBlock)
	pass(t, s, id, 100, 0, digest("a"))
	refused(t, s, id, 99, 0, digest("b"))
	refused(t, s, id, 99, 50, digest("c")) // higher round does not help
	refused(t, s, id, 99, 0, digest("a"))  // nor the same payload
	wantMark(t, s, id, watermark.Mark{Level: 100, Round: 0, Digest: digest("a")})
}

func testRefusesLowerRoundSameLevel(t *testing.T, s watermark.Store) {
	id := newID(t, kindPreattestation)
	pass(t, s, id, 100, 3, digest("a"))
	refused(t, s, id, 100, 2, digest("b"))
	refused(t, s, id, 100, 0, digest("a"))
	wantMark(t, s, id, watermark.Mark{Level: 100, Round: 3, Digest: digest("a")})
}

func testIDsAreIndependent(t *testing.T, s watermark.Store) {
	base := newID(t, kindAttestation)
	other := []watermark.ID{
		{Key: newKey(t), Chain: base.Chain, Kind: base.Kind},       // another key
		{Key: base.Key, Chain: "NetXnHfVqm9iesp", Kind: base.Kind}, // another chain
		{Key: base.Key, Chain: base.Chain, Kind: kindBlock},        // another kind
		{Key: base.Key, Chain: base.Chain, Kind: kindPreattestation},
	}
	pass(t, s, base, 100, 0, digest("a"))
	setSig(t, s, base, 100, 0, digest("a"), []byte("sig-a"))
	for i, id := range other {
		// Same level and round with another payload, and lower levels,
		// pass on every other ID, and a retry there returns no signature.
		if sig := pass(t, s, id, 100, 0, digest("b")); sig != nil {
			t.Fatalf("%s: first Advance returned %x", id, sig)
		}
		pass(t, s, id, 100+int64(i)+1, 0, digest("c"))
	}
	wantMark(t, s, base, watermark.Mark{Level: 100, Round: 0, Digest: digest("a"), Signature: []byte("sig-a")})
	refused(t, s, base, 100, 0, digest("b"))
	for i, id := range other {
		wantMark(t, s, id, watermark.Mark{Level: 100 + int64(i) + 1, Round: 0, Digest: digest("c")})
	}
}

func testSetSignatureStaleIgnored(t *testing.T, s watermark.Store) {
	id := newID(t, kindAttestation)
	pass(t, s, id, 100, 0, digest("a"))
	pass(t, s, id, 100, 1, digest("b"))
	setSig(t, s, id, 100, 0, digest("a"), []byte("old"))   // older round
	setSig(t, s, id, 99, 1, digest("b"), []byte("lvl"))    // other level
	setSig(t, s, id, 100, 1, digest("x"), []byte("other")) // other payload
	if sig := pass(t, s, id, 100, 1, digest("b")); sig != nil {
		t.Fatalf("retry returned %x after only stale SetSignature calls, want nil", sig)
	}
	wantMark(t, s, id, watermark.Mark{Level: 100, Round: 1, Digest: digest("b")})
	// SetSignature then the mark moves on: the next retry of the new mark
	// must not get the old signature.
	setSig(t, s, id, 100, 1, digest("b"), []byte("sig-b"))
	pass(t, s, id, 101, 0, digest("c"))
	if sig := pass(t, s, id, 101, 0, digest("c")); sig != nil {
		t.Fatalf("retry of a new mark returned %x (the previous mark's signature?)", sig)
	}
}

func testSetSignatureUnknownID(t *testing.T, s watermark.Store) {
	id := newID(t, kindBlock)
	setSig(t, s, id, 100, 0, digest("a"), []byte("sig"))
	if m, ok := markOf(t, s, id); ok {
		t.Fatalf("SetSignature on an unknown ID created mark %s", fmtMark(m))
	}
	if sig := pass(t, s, id, 100, 0, digest("a")); sig != nil {
		t.Fatalf("first Advance returned %x after SetSignature on an unknown ID", sig)
	}
}

func testSetThenMarks(t *testing.T, s watermark.Store) {
	want := map[watermark.ID]watermark.Mark{
		newID(t, kindBlock):          {Level: 10, Round: 1, Digest: digest("a")},
		newID(t, kindPreattestation): {Level: 20, Round: 0, Digest: digest("b"), Signature: []byte("sig-b")},
		newID(t, kindAttestation):    {Level: 30, Round: 2, Digest: digest("c")},
	}
	for id, m := range want {
		if err := s.Set(ctx(t), id, m); err != nil {
			t.Fatalf("Set(%s): %v", id, err)
		}
	}
	for id, m := range want {
		wantMark(t, s, id, m)
		// The set mark rules Advance like any other.
		refused(t, s, id, m.Level, m.Round, digest("other"))
		refused(t, s, id, m.Level-1, m.Round, m.Digest)
		if sig := pass(t, s, id, m.Level, m.Round, m.Digest); !bytes.Equal(sig, m.Signature) {
			t.Fatalf("retry of set mark %s returned %x, want %x", id, sig, m.Signature)
		}
	}
}

func testSetOverwrites(t *testing.T, s watermark.Store) {
	id := newID(t, kindAttestation)
	pass(t, s, id, 500, 3, digest("a"))
	setSig(t, s, id, 500, 3, digest("a"), []byte("sig-a"))
	// Lower (watermark set --force after a chain reset).
	low := watermark.Mark{Level: 10, Round: 0, Digest: digest("low")}
	if err := s.Set(ctx(t), id, low); err != nil {
		t.Fatal(err)
	}
	wantMark(t, s, id, low)
	if sig := pass(t, s, id, 10, 0, digest("low")); sig != nil {
		t.Fatalf("retry after Set without signature returned %x", sig)
	}
	pass(t, s, id, 11, 0, digest("b"))
	// Same level and round with another digest replaces the digest.
	same := watermark.Mark{Level: 11, Round: 0, Digest: digest("c")}
	if err := s.Set(ctx(t), id, same); err != nil {
		t.Fatal(err)
	}
	wantMark(t, s, id, same)
	refused(t, s, id, 11, 0, digest("b"))
	pass(t, s, id, 11, 0, digest("c"))
}

func testMarksListsOnlyAdvancedIDs(t *testing.T, s watermark.Store) {
	a, b := newID(t, kindAttestation), newID(t, kindAttestation)
	pass(t, s, a, 5, 0, digest("a"))
	pass(t, s, b, 6, 0, digest("b"))
	refused(t, s, a, 4, 0, digest("x"))
	es, err := s.Marks(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[watermark.ID]int{}
	for _, e := range es {
		seen[e.ID]++
	}
	if seen[a] != 1 || seen[b] != 1 {
		t.Fatalf("Marks lists %s %d times and %s %d times, want once each", a, seen[a], b, seen[b])
	}
	wantMark(t, s, a, watermark.Mark{Level: 5, Digest: digest("a")})
	wantMark(t, s, b, watermark.Mark{Level: 6, Digest: digest("b")})
}

// testZeroAndNegative pins the rule that levels and rounds are plain int64s:
// no mark is below everything, including zero and negative values.
func testZeroAndNegative(t *testing.T, s watermark.Store) {
	zero := newID(t, kindBlock)
	pass(t, s, zero, 0, 0, digest("a"))
	refused(t, s, zero, 0, 0, digest("b"))
	refused(t, s, zero, -1, 5, digest("b"))
	pass(t, s, zero, 0, 0, digest("a"))
	pass(t, s, zero, 0, 1, digest("c"))

	neg := newID(t, kindPreattestation)
	pass(t, s, neg, -5, -1, digest("a"))
	pass(t, s, neg, -5, 0, digest("b"))
	refused(t, s, neg, -6, 9, digest("c"))
	refused(t, s, neg, -5, -1, digest("a"))
	pass(t, s, neg, 0, 0, digest("d"))
	wantMark(t, s, neg, watermark.Mark{Level: 0, Round: 0, Digest: digest("d")})

	ext := newID(t, kindAttestation)
	pass(t, s, ext, math.MinInt64, math.MinInt64, digest("a"))
	pass(t, s, ext, math.MaxInt64, math.MaxInt64, digest("b"))
	refused(t, s, ext, math.MaxInt64, math.MaxInt64-1, digest("b"))
	refused(t, s, ext, math.MaxInt64, math.MaxInt64, digest("c"))
	wantMark(t, s, ext, watermark.Mark{Level: math.MaxInt64, Round: math.MaxInt64, Digest: digest("b")})
}

// race starts n goroutines at once, each calling f(i), and returns their errors.
func race(n int, f func(i int) error) []error {
	errs := make([]error, n)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			errs[i] = f(i)
		}()
	}
	start.Done()
	done.Wait()
	return errs
}

func testConcurrentOneWins(t *testing.T, s watermark.Store) {
	const n = 200
	id := newID(t, kindAttestation)
	pass(t, s, id, 99, 0, digest("before"))
	c := ctx(t)
	errs := race(n, func(i int) error {
		_, err := s.Advance(c, id, 100, 0, digest(fmt.Sprint("payload-", i)))
		return err
	})
	winner, refusals := -1, 0
	for i, err := range errs {
		var re *watermark.RefusedError
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("goroutines %d and %d both passed at level 100 round 0 with different payloads", winner, i)
			}
			winner = i
		case errors.As(err, &re):
			refusals++
		default:
			t.Fatalf("goroutine %d: %v, want pass or *RefusedError", i, err)
		}
	}
	if winner < 0 || refusals != n-1 {
		t.Fatalf("%d passed and %d refused, want 1 and %d", n-refusals, refusals, n-1)
	}
	wantMark(t, s, id, watermark.Mark{Level: 100, Round: 0, Digest: digest(fmt.Sprint("payload-", winner))})
}

func testConcurrentRetries(t *testing.T, s watermark.Store) {
	const n = 50
	id := newID(t, kindBlock)
	c := ctx(t)
	errs := race(n, func(int) error {
		_, err := s.Advance(c, id, 100, 0, digest("same"))
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("goroutine %d: %v; identical requests must all pass", i, err)
		}
	}
	wantMark(t, s, id, watermark.Mark{Level: 100, Round: 0, Digest: digest("same")})
}

func testConcurrentManyIDs(t *testing.T, s watermark.Store) {
	const ids, levels = 32, 10
	key := newKey(t)
	idOf := func(i int) watermark.ID {
		return watermark.ID{Key: fmt.Sprintf("%s-%d", key, i/3), Chain: chain, Kind: kindBlock + byte(i%3)}
	}
	c := ctx(t)
	errs := race(ids, func(i int) error {
		for l := int64(1); l <= levels; l++ {
			d := digest(fmt.Sprint(i, "/", l))
			if _, err := s.Advance(c, idOf(i), l, 0, d); err != nil {
				return fmt.Errorf("level %d: %w", l, err)
			}
			if err := s.SetSignature(c, idOf(i), l, 0, d, d[:8]); err != nil {
				return fmt.Errorf("SetSignature level %d: %w", l, err)
			}
		}
		return nil
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s: %v", idOf(i), err)
		}
	}
	for i := range ids {
		d := digest(fmt.Sprint(i, "/", levels))
		wantMark(t, s, idOf(i), watermark.Mark{Level: levels, Round: 0, Digest: d, Signature: d[:8]})
	}
}

func testReady(t *testing.T, s watermark.Store) {
	if err := s.Ready(ctx(t)); err != nil {
		t.Fatalf("Ready on a fresh store: %v", err)
	}
	id := newID(t, kindAttestation)
	pass(t, s, id, 1, 0, digest("a"))
	if err := s.Ready(ctx(t)); err != nil {
		t.Fatalf("Ready after an Advance: %v", err)
	}
	wantMark(t, s, id, watermark.Mark{Level: 1, Digest: digest("a")})
}

// --- after a restart ---

func testMarksSurviveReopen(t *testing.T, s watermark.Store, reopen Reopener) {
	want := map[watermark.ID]watermark.Mark{}
	for i, kind := range []byte{kindBlock, kindPreattestation, kindAttestation} {
		id := newID(t, kind)
		m := watermark.Mark{Level: int64(1000 + i), Round: int64(i), Digest: digest(fmt.Sprint("m", i))}
		pass(t, s, id, m.Level-1, 0, digest("earlier"))
		pass(t, s, id, m.Level, m.Round, m.Digest)
		want[id] = m
	}
	s = reopen(t, s)
	for id, m := range want {
		wantMark(t, s, id, m)
		if sig := pass(t, s, id, m.Level, m.Round, m.Digest); sig != nil {
			t.Fatalf("retry after reopen returned %x, want nil", sig)
		}
	}
}

func testRefusalsSurviveReopen(t *testing.T, s watermark.Store, reopen Reopener) {
	id := newID(t, kindAttestation)
	pass(t, s, id, 100, 1, digest("a"))
	s = reopen(t, s)
	refused(t, s, id, 100, 1, digest("b"))
	refused(t, s, id, 100, 0, digest("a"))
	refused(t, s, id, 99, 9, digest("a"))
	pass(t, s, id, 100, 2, digest("c"))
	s = reopen(t, s)
	wantMark(t, s, id, watermark.Mark{Level: 100, Round: 2, Digest: digest("c")})
	refused(t, s, id, 100, 1, digest("a"))
}

func testSignatureSurvivesReopen(t *testing.T, s watermark.Store, reopen Reopener) {
	id, stale := newID(t, kindBlock), newID(t, kindBlock)
	pass(t, s, id, 7, 0, digest("a"))
	setSig(t, s, id, 7, 0, digest("a"), []byte("sig-a"))
	// A signature recorded for a mark that then moved on is not restored.
	pass(t, s, stale, 7, 0, digest("a"))
	setSig(t, s, stale, 7, 0, digest("a"), []byte("sig-old"))
	pass(t, s, stale, 8, 0, digest("b"))
	s = reopen(t, s)
	if sig := pass(t, s, id, 7, 0, digest("a")); !bytes.Equal(sig, []byte("sig-a")) {
		t.Fatalf("retry after reopen returned %x, want %x", sig, "sig-a")
	}
	if sig := pass(t, s, stale, 8, 0, digest("b")); sig != nil {
		t.Fatalf("retry of the moved mark after reopen returned %x, want nil", sig)
	}
}

func testSetSurvivesReopen(t *testing.T, s watermark.Store, reopen Reopener) {
	id := newID(t, kindPreattestation)
	pass(t, s, id, 900, 0, digest("a"))
	m := watermark.Mark{Level: 50, Round: 1, Digest: digest("set"), Signature: []byte("sig-set")}
	if err := s.Set(ctx(t), id, m); err != nil {
		t.Fatal(err)
	}
	// A signature recorded after Set replaces the one Set wrote.
	id2 := newID(t, kindAttestation)
	m2 := watermark.Mark{Level: 60, Round: 0, Digest: digest("set2"), Signature: []byte("sig-imported")}
	if err := s.Set(ctx(t), id2, m2); err != nil {
		t.Fatal(err)
	}
	setSig(t, s, id2, 60, 0, digest("set2"), []byte("sig-newer"))
	s = reopen(t, s)
	wantMark(t, s, id, m)
	pass(t, s, id, 51, 0, digest("b"))
	if sig := pass(t, s, id2, 60, 0, digest("set2")); !bytes.Equal(sig, []byte("sig-newer")) {
		t.Fatalf("retry after reopen returned %q, want the signature recorded after Set", sig)
	}
}

// testEmptySignatureIsNoSignature: an empty signature (from SetSignature or
// Set) is never handed back as one, since the caller would return it to a
// client; before or after reopen.
func testEmptySignatureIsNoSignature(t *testing.T, s watermark.Store, reopen Reopener) {
	viaSetSig, viaSet := newID(t, kindAttestation), newID(t, kindBlock)
	pass(t, s, viaSetSig, 100, 0, digest("a"))
	setSig(t, s, viaSetSig, 100, 0, digest("a"), []byte{})
	if err := s.Set(ctx(t), viaSet, watermark.Mark{Level: 7, Digest: digest("b"), Signature: []byte{}}); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		for _, c := range []struct {
			id    watermark.ID
			level int64
			d     []byte
		}{{viaSetSig, 100, digest("a")}, {viaSet, 7, digest("b")}} {
			if sig := pass(t, s, c.id, c.level, 0, c.d); sig != nil {
				t.Fatalf("%s %s: retry returned %#v, want nil", when, c.id, sig)
			}
		}
	}
	check("before reopen")
	s = reopen(t, s)
	check("after reopen")
}
