package file

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyward/keyward/watermark"
)

// diskMark reads the mark file of id as a restart would.
func diskMark(t *testing.T, dir string, id watermark.ID) watermark.Mark {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, baseName(id)+markSuffix))
	if err != nil {
		t.Fatal(err)
	}
	_, m, err := decodeRecord(data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRevert_IsDurable: the restored mark is on disk before Revert returns.
func TestRevert_IsDurable(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	for _, l := range []int64{5, 6} {
		if _, err := s.Advance(bg, testI, l, 0, dg(string(rune('a'+l)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Revert(bg, testI, 6, 0, dg(string(rune('a'+6)))); err != nil {
		t.Fatal(err)
	}
	if m := diskMark(t, dir, testI); m.Level != 5 {
		t.Fatalf("mark file holds level %d after Revert, want 5", m.Level)
	}
	s.Close()
	s = openT(t, dir)
	wantOnly(t, s, testI, 5, 0, dg(string(rune('a'+5))))
	if _, err := s.Advance(bg, testI, 6, 0, dg("other")); err != nil {
		t.Fatalf("another payload at the reverted level after reopen: %v", err)
	}
}

// TestRevert_NothingAfterReopen: passes are counted in memory only, so a
// restarted store never reverts a mark advanced before the restart (an
// identical retry may have passed and been signed by the old process).
func TestRevert_NothingAfterReopen(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	if _, err := s.Advance(bg, testI, 5, 0, dg("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Advance(bg, testI, 6, 0, dg("b")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openT(t, dir)
	if err := s.Revert(bg, testI, 6, 0, dg("b")); err != nil {
		t.Fatal(err)
	}
	wantOnly(t, s, testI, 6, 0, dg("b"))
}

// TestRevert_FailedWriteStep injects a failure at each step of Revert's
// write: the error wraps ErrUnavailable, memory keeps the advanced mark, and
// since the disk may hold either mark, a retry of the advanced mark passes
// only once that mark is durable again.
func TestRevert_FailedWriteStep(t *testing.T) {
	for _, step := range []string{"create", "write", "fsync", "rename", "dirsync"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir)
			if _, err := s.Advance(bg, testI, 5, 0, dg("a")); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Advance(bg, testI, 6, 0, dg("b")); err != nil {
				t.Fatal(err)
			}
			injected := errors.New("injected " + step + " failure")
			s.failAt = func(name string) error {
				if name == step {
					return injected
				}
				return nil
			}
			err := s.Revert(bg, testI, 6, 0, dg("b"))
			if !errors.Is(err, watermark.ErrUnavailable) || !errors.Is(err, injected) {
				t.Fatalf("Revert with failing %s = %v, want ErrUnavailable wrapping the cause", step, err)
			}
			wantOnly(t, s, testI, 6, 0, dg("b"))
			var re *watermark.RefusedError
			if _, err := s.Advance(bg, testI, 6, 0, dg("c")); !errors.As(err, &re) {
				t.Fatalf("another payload after a failed Revert: %v, want *RefusedError", err)
			}
			// While the store cannot write, the retry cannot pass.
			if _, err := s.Advance(bg, testI, 6, 0, dg("b")); !errors.Is(err, watermark.ErrUnavailable) {
				t.Fatalf("retry while writes fail = %v, want ErrUnavailable", err)
			}
			s.failAt = nil
			if _, err := s.Advance(bg, testI, 6, 0, dg("b")); err != nil {
				t.Fatalf("retry once the store works: %v", err)
			}
			if m := diskMark(t, dir, testI); m.Level != 6 {
				t.Fatalf("mark file holds level %d after the retry passed, want 6", m.Level)
			}
			// Not revertible any more: the retry may be signed.
			if err := s.Revert(bg, testI, 6, 0, dg("b")); err != nil {
				t.Fatal(err)
			}
			wantOnly(t, s, testI, 6, 0, dg("b"))
		})
	}
}

// TestRevert_DirsyncFailureLeavesLowerMarkOnDisk pins why the retry above
// must write again: after a failed directory fsync the rename has happened,
// so the disk holds the restored (lower) mark while memory holds the
// advanced one.
func TestRevert_DirsyncFailureLeavesLowerMarkOnDisk(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	if _, err := s.Advance(bg, testI, 5, 0, dg("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Advance(bg, testI, 6, 0, dg("b")); err != nil {
		t.Fatal(err)
	}
	s.failAt = func(name string) error {
		if name == "dirsync" {
			return errors.New("injected")
		}
		return nil
	}
	if err := s.Revert(bg, testI, 6, 0, dg("b")); !errors.Is(err, watermark.ErrUnavailable) {
		t.Fatalf("Revert = %v, want ErrUnavailable", err)
	}
	if m := diskMark(t, dir, testI); m.Level != 5 {
		t.Fatalf("mark file holds level %d, want 5 (the rename happened)", m.Level)
	}
	wantOnly(t, s, testI, 6, 0, dg("b"))
}

// TestSet_FailedWriteRewritesBeforeRetry: a Set that lowers the mark and
// fails after its rename leaves the lower mark on disk; the next retry of
// the mark in memory writes it again before it passes.
func TestSet_FailedWriteRewritesBeforeRetry(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	if _, err := s.Advance(bg, testI, 5, 0, dg("a")); err != nil {
		t.Fatal(err)
	}
	s.failAt = func(name string) error {
		if name == "dirsync" {
			return errors.New("injected")
		}
		return nil
	}
	if err := s.Set(bg, testI, watermark.Mark{Level: 1, Digest: dg("x")}); !errors.Is(err, watermark.ErrUnavailable) {
		t.Fatalf("Set = %v, want ErrUnavailable", err)
	}
	s.failAt = nil
	if _, err := s.Advance(bg, testI, 5, 0, dg("a")); err != nil {
		t.Fatal(err)
	}
	if m := diskMark(t, dir, testI); m.Level != 5 {
		t.Fatalf("mark file holds level %d after the retry passed, want 5", m.Level)
	}
}
