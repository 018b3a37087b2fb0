package watermarktest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/keyward/keyward/watermark"
)

// RunRevert runs the conformance table of the optional watermark.Reverter
// capability; every store open returns must implement it. Run it besides
// Run, from the tests of stores that implement Reverter:
//
//	watermarktest.RunRevert(t, open)
//
// The rule under test: Revert gives back a mark only when nothing can have
// been signed for it, so after any sequence of calls a different payload at
// a (level, round) that a passing Advance not followed by its own Revert has
// claimed is refused.
func RunRevert(t *testing.T, open Opener) {
	t.Helper()
	for _, c := range revertCases() {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			if _, ok := s.(watermark.Reverter); !ok {
				t.Fatalf("%T does not implement watermark.Reverter", s)
			}
			c.run(t, s)
		})
	}
}

// RunRevertPersistent runs RunRevert and then the Revert subtests that need
// a restart: what blocks a revert (an identical retry, a signature) must
// still block it after reopen.
func RunRevertPersistent(t *testing.T, open Opener, reopen Reopener) {
	t.Helper()
	RunRevert(t, open)
	for _, c := range revertPersistentCases() {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, open(t), reopen)
		})
	}
}

func revertCases() []suiteCase {
	return []suiteCase{
		{"RevertRestoresPreviousMark", testRevertRestoresPrevious},
		{"RevertRestoresPreviousRoundAtSameLevel", testRevertRestoresPreviousRound},
		{"RepeatedFailuresRevertEachTime", testRevertRepeated},
		{"RevertAfterSetSignatureDoesNothing", testRevertAfterSetSignature},
		{"RevertAfterIdenticalRetryDoesNothing", testRevertAfterRetry},
		{"RevertWithStaleMarkDoesNothing", testRevertStale},
		{"RevertAfterMarkMovedOnDoesNothing", testRevertMovedOn},
		{"RevertGoesBackOneStepOnly", testRevertOneStep},
		{"RevertAfterSetDoesNothing", testRevertAfterSet},
		{"RevertOfFirstMarkLeavesNoOtherPayloadSigned", testRevertFirstMark},
		{"RevertOfUnknownIDCreatesNothing", testRevertUnknownID},
		{"ConcurrentRetryAndRevertNeverFreeTheLevel", testRevertConcurrentRetry},
		{"ConcurrentFailuresAndOneSignerNeverFreeTheLevel", testRevertConcurrentManyFail},
	}
}

func revertPersistentCases() []persistentCase {
	return []persistentCase{
		{"RetryBeforeReopenBlocksRevert", testRevertRetryBeforeReopen},
		{"SignatureBeforeReopenBlocksRevert", testRevertSignatureBeforeReopen},
	}
}

// revert calls Revert and fails the test on an error.
func revert(t *testing.T, s watermark.Store, id watermark.ID, level, round int64, d []byte) {
	t.Helper()
	if err := s.(watermark.Reverter).Revert(ctx(t), id, level, round, d); err != nil {
		t.Fatalf("Revert(%s, level %d, round %d): %v", id, level, round, err)
	}
}

func testRevertRestoresPrevious(t *testing.T, s watermark.Store) {
	id := newID(t, kindAttestation)
	pass(t, s, id, 100, 0, digest("a"))
	pass(t, s, id, 101, 0, digest("b"))
	revert(t, s, id, 101, 0, digest("b"))
	wantMark(t, s, id, watermark.Mark{Level: 100, Round: 0, Digest: digest("a")})
	// The restored mark rules as before: another payload at its level is
	// still refused, lower levels too, and a retry of it passes.
	refused(t, s, id, 100, 0, digest("x"))
	refused(t, s, id, 99, 0, digest("a"))
	pass(t, s, id, 100, 0, digest("a"))
	// Nothing was signed at 101: another payload there now passes.
	pass(t, s, id, 101, 0, digest("c"))
	wantMark(t, s, id, watermark.Mark{Level: 101, Round: 0, Digest: digest("c")})
	refused(t, s, id, 101, 0, digest("b"))
}

func testRevertRestoresPreviousRound(t *testing.T, s watermark.Store) {
	id := newID(t, kindPreattestation)
	pass(t, s, id, 100, 0, digest("a"))
	pass(t, s, id, 100, 1, digest("b"))
	revert(t, s, id, 100, 1, digest("b"))
	wantMark(t, s, id, watermark.Mark{Level: 100, Round: 0, Digest: digest("a")})
	refused(t, s, id, 100, 0, digest("x"))
	pass(t, s, id, 100, 1, digest("c"))
}

// testRevertRepeated: an outage lasting several requests at one level moves
// the mark each time and gives it back each time.
func testRevertRepeated(t *testing.T, s watermark.Store) {
	id := newID(t, kindAttestation)
	pass(t, s, id, 100, 0, digest("a"))
	for i := range 3 {
		d := digest(fmt.Sprint("try-", i))
		pass(t, s, id, 101, 0, d)
		revert(t, s, id, 101, 0, d)
		wantMark(t, s, id, watermark.Mark{Level: 100, Round: 0, Digest: digest("a")})
	}
	pass(t, s, id, 101, 0, digest("ok"))
	refused(t, s, id, 101, 0, digest("try-0"))
}

func testRevertAfterSetSignature(t *testing.T, s watermark.Store) {
	id := newID(t, kindAttestation)
	pass(t, s, id, 100, 0, digest("a"))
	pass(t, s, id, 101, 0, digest("b"))
	setSig(t, s, id, 101, 0, digest("b"), []byte("sig-b"))
	revert(t, s, id, 101, 0, digest("b"))
	wantMark(t, s, id, watermark.Mark{Level: 101, Round: 0, Digest: digest("b"), Signature: []byte("sig-b")})
	refused(t, s, id, 101, 0, digest("c"))
}

func testRevertAfterRetry(t *testing.T, s watermark.Store) {
	id := newID(t, kindAttestation)
	pass(t, s, id, 100, 0, digest("a"))
	pass(t, s, id, 101, 0, digest("b"))
	// An identical retry passes (and would be signed) before the first
	// request's signing fails.
	if sig := pass(t, s, id, 101, 0, digest("b")); sig != nil {
		t.Fatalf("retry returned %x, want nil", sig)
	}
	revert(t, s, id, 101, 0, digest("b"))
	wantMark(t, s, id, watermark.Mark{Level: 101, Round: 0, Digest: digest("b")})
	refused(t, s, id, 101, 0, digest("c"))
	// The retry's own failure cannot revert either.
	revert(t, s, id, 101, 0, digest("b"))
	refused(t, s, id, 101, 0, digest("c"))
}

func testRevertStale(t *testing.T, s watermark.Store) {
	id := newID(t, kindBlock)
	pass(t, s, id, 100, 0, digest("a"))
	pass(t, s, id, 101, 2, digest("b"))
	for _, c := range []struct {
		level, round int64
		d            []byte
	}{
		{101, 2, digest("other")}, // other payload
		{101, 1, digest("b")},     // other round
		{101, 3, digest("b")},
		{100, 2, digest("b")}, // other level
		{100, 0, digest("a")}, // the previous mark
		{101, 2, nil},
		{101, 2, digest("b")[:31]},
	} {
		revert(t, s, id, c.level, c.round, c.d)
		wantMark(t, s, id, watermark.Mark{Level: 101, Round: 2, Digest: digest("b")})
	}
	// A stale Revert does not use up the real one.
	revert(t, s, id, 101, 2, digest("b"))
	wantMark(t, s, id, watermark.Mark{Level: 100, Round: 0, Digest: digest("a")})
}

func testRevertMovedOn(t *testing.T, s watermark.Store) {
	id := newID(t, kindAttestation)
	pass(t, s, id, 100, 0, digest("a"))
	pass(t, s, id, 101, 0, digest("b"))
	pass(t, s, id, 102, 0, digest("c"))
	revert(t, s, id, 101, 0, digest("b"))
	wantMark(t, s, id, watermark.Mark{Level: 102, Round: 0, Digest: digest("c")})
	refused(t, s, id, 101, 0, digest("x"))
	refused(t, s, id, 102, 0, digest("x"))
}

// testRevertOneStep: a reverted mark cannot be reverted again (its own
// Advance may have been signed), so Revert never goes back two steps.
func testRevertOneStep(t *testing.T, s watermark.Store) {
	id := newID(t, kindAttestation)
	pass(t, s, id, 100, 0, digest("a"))
	pass(t, s, id, 101, 0, digest("b"))
	pass(t, s, id, 102, 0, digest("c"))
	revert(t, s, id, 102, 0, digest("c"))
	wantMark(t, s, id, watermark.Mark{Level: 101, Round: 0, Digest: digest("b")})
	revert(t, s, id, 101, 0, digest("b"))
	wantMark(t, s, id, watermark.Mark{Level: 101, Round: 0, Digest: digest("b")})
	refused(t, s, id, 101, 0, digest("x"))
	// Twice the same Revert: the second finds the mark moved back already.
	revert(t, s, id, 102, 0, digest("c"))
	wantMark(t, s, id, watermark.Mark{Level: 101, Round: 0, Digest: digest("b")})
}

func testRevertAfterSet(t *testing.T, s watermark.Store) {
	id := newID(t, kindAttestation)
	pass(t, s, id, 100, 0, digest("a"))
	pass(t, s, id, 101, 0, digest("b"))
	// An operator sets the very same mark by hand: it is theirs now.
	m := watermark.Mark{Level: 101, Round: 0, Digest: digest("b")}
	if err := s.Set(ctx(t), id, m); err != nil {
		t.Fatal(err)
	}
	revert(t, s, id, 101, 0, digest("b"))
	wantMark(t, s, id, m)
	// A pass on a set mark is a retry, not an advance, so not revertible.
	pass(t, s, id, 101, 0, digest("b"))
	revert(t, s, id, 101, 0, digest("b"))
	wantMark(t, s, id, m)
	refused(t, s, id, 101, 0, digest("c"))
}

// testRevertFirstMark: the first mark of an ID replaced nothing. A store may
// remove it or keep it; if it keeps it, it rules as before.
func testRevertFirstMark(t *testing.T, s watermark.Store) {
	id := newID(t, kindAttestation)
	pass(t, s, id, 100, 0, digest("a"))
	revert(t, s, id, 100, 0, digest("a"))
	if m, ok := markOf(t, s, id); ok {
		if !equalMark(m, watermark.Mark{Level: 100, Round: 0, Digest: digest("a")}) {
			t.Fatalf("mark after Revert of the first mark = %s, want it unchanged or gone", fmtMark(m))
		}
		refused(t, s, id, 100, 0, digest("b"))
	}
	pass(t, s, id, 100, 0, digest("a"))
	// After a retry it is never removed.
	revert(t, s, id, 100, 0, digest("a"))
	wantMark(t, s, id, watermark.Mark{Level: 100, Round: 0, Digest: digest("a")})
}

func testRevertUnknownID(t *testing.T, s watermark.Store) {
	id := newID(t, kindBlock)
	revert(t, s, id, 100, 0, digest("a"))
	if m, ok := markOf(t, s, id); ok {
		t.Fatalf("Revert on an unknown ID created mark %s", fmtMark(m))
	}
	pass(t, s, id, 100, 0, digest("b"))
}

// testRevertConcurrentRetry races the failing request (Advance then Revert)
// against its identical retry, which succeeds (and, every other time,
// records its signature). Whatever the interleaving, the retry passed and
// was signed, so afterwards the mark is that payload and another payload at
// the level is refused.
func testRevertConcurrentRetry(t *testing.T, s watermark.Store) {
	const iterations = 200
	c := ctx(t)
	reverted := 0
	for i := range iterations {
		id := newID(t, kindAttestation)
		pass(t, s, id, 100, 0, digest("a"))
		d := digest(fmt.Sprint("b-", i))
		var didRevert bool
		errs := race(2, func(g int) error {
			sig, err := s.Advance(c, id, 101, 0, d)
			if err != nil {
				return err
			}
			if g == 0 { // signing fails
				if sig != nil {
					return nil // a stored signature was returned: nothing to undo
				}
				didRevert = true
				return s.(watermark.Reverter).Revert(c, id, 101, 0, d)
			}
			if i%2 == 0 { // signing succeeds
				return s.SetSignature(c, id, 101, 0, d, []byte("sig"))
			}
			return nil
		})
		for g, err := range errs {
			if err != nil {
				t.Fatalf("iteration %d goroutine %d: %v", i, g, err)
			}
		}
		if didRevert {
			reverted++
		}
		m, _ := markOf(t, s, id)
		if m.Level != 101 || m.Round != 0 || !bytes.Equal(m.Digest, d) {
			t.Fatalf("iteration %d: mark %s after the retry passed, want level 101 digest %x", i, fmtMark(m), d)
		}
		if _, err := s.Advance(c, id, 101, 0, digest("other")); !isRefusal(err) {
			t.Fatalf("iteration %d: another payload at the retried level: %v, want *RefusedError (double sign)", i, err)
		}
	}
	t.Logf("%d of %d failing requests called Revert", reverted, iterations)
}

// testRevertConcurrentManyFail: several identical requests race, all but
// one fail signing and revert; the one that signed keeps the level.
func testRevertConcurrentManyFail(t *testing.T, s watermark.Store) {
	const iterations, n = 50, 6
	c := ctx(t)
	for i := range iterations {
		id := newID(t, kindAttestation)
		pass(t, s, id, 100, 0, digest("a"))
		d := digest(fmt.Sprint("b-", i))
		signer := i % n
		errs := race(n, func(g int) error {
			sig, err := s.Advance(c, id, 101, 0, d)
			if err != nil || sig != nil {
				return err
			}
			if g == signer {
				return s.SetSignature(c, id, 101, 0, d, []byte("sig"))
			}
			return s.(watermark.Reverter).Revert(c, id, 101, 0, d)
		})
		for g, err := range errs {
			if err != nil {
				t.Fatalf("iteration %d goroutine %d: %v", i, g, err)
			}
		}
		if _, err := s.Advance(c, id, 101, 0, digest("other")); !isRefusal(err) {
			t.Fatalf("iteration %d: another payload at the signed level: %v, want *RefusedError (double sign)", i, err)
		}
	}
}

func isRefusal(err error) bool {
	var re *watermark.RefusedError
	return errors.As(err, &re)
}

// --- after a restart ---

func testRevertRetryBeforeReopen(t *testing.T, s watermark.Store, reopen Reopener) {
	id := newID(t, kindAttestation)
	pass(t, s, id, 100, 0, digest("a"))
	pass(t, s, id, 101, 0, digest("b"))
	pass(t, s, id, 101, 0, digest("b"))
	s = reopen(t, s)
	revert(t, s, id, 101, 0, digest("b"))
	wantMark(t, s, id, watermark.Mark{Level: 101, Round: 0, Digest: digest("b")})
	refused(t, s, id, 101, 0, digest("c"))
}

func testRevertSignatureBeforeReopen(t *testing.T, s watermark.Store, reopen Reopener) {
	id := newID(t, kindAttestation)
	pass(t, s, id, 100, 0, digest("a"))
	pass(t, s, id, 101, 0, digest("b"))
	setSig(t, s, id, 101, 0, digest("b"), []byte("sig-b"))
	s = reopen(t, s)
	revert(t, s, id, 101, 0, digest("b"))
	m, _ := markOf(t, s, id)
	if m.Level != 101 || m.Round != 0 {
		t.Fatalf("mark %s after Revert of a signed mark, want level 101", fmtMark(m))
	}
	refused(t, s, id, 101, 0, digest("c"))
}
