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
	var m watermark.Mark
	if isSlotFile(data) {
		_, m, _, _, err = decodeSlotFile(data)
	} else {
		_, m, err = decodeRecord(data)
	}
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// oldFormat writes id's mark file in the single-record format of earlier
// versions (which Open still reads, and the next write converts).
func oldFormat(t *testing.T, dir string, id watermark.ID, m watermark.Mark) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, baseName(id)+markSuffix), encodeRecord(id, m, false), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestOpen_ReadsOldFormatAndConvertsOnWrite(t *testing.T) {
	dir := t.TempDir()
	oldFormat(t, dir, testI, watermark.Mark{Level: 5, Digest: dg("a")})
	s := openT(t, dir)
	wantOnly(t, s, testI, 5, 0, dg("a"))
	if _, err := s.Advance(bg, testI, 6, 0, dg("b")); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, baseName(testI)+markSuffix))
	if !isSlotFile(data) || len(data) != slotFileSize {
		t.Fatal("mark file not converted to the slot format")
	}
	s.Close()
	s = openT(t, dir)
	wantOnly(t, s, testI, 6, 0, dg("b"))
}

// TestSlots_TornSlotFallsBackToTheOther: a write cut short (the slot being
// written is garbage) loads as the previous mark.
func TestSlots_TornSlotFallsBackToTheOther(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	for l := int64(1); l <= 4; l++ {
		if _, err := s.Advance(bg, testI, l, 0, dg(string(rune('a'+l)))); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	p := filepath.Join(dir, baseName(testI)+markSuffix)
	data, _ := os.ReadFile(p)
	_, m, _, slot, err := decodeSlotFile(data)
	if err != nil || m.Level != 4 {
		t.Fatalf("%v %d", err, m.Level)
	}
	// Tear the newest slot half way.
	for i := slot*slotSize + 40; i < slot*slotSize+300; i++ {
		data[i] ^= 0x55
	}
	os.WriteFile(p, data, 0o600)
	s = openT(t, dir)
	wantOnly(t, s, testI, 3, 0, dg(string(rune('a'+3))))
	// Both slots torn: corrupt, the store refuses to open.
	s.Close()
	for i := (1-slot)*slotSize + 40; i < (1-slot)*slotSize+300; i++ {
		data[i] ^= 0x55
	}
	os.WriteFile(p, data, 0o600)
	if _, err := Open(dir); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("both slots torn: %v, want ErrCorrupt", err)
	}
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
	for _, step := range []string{"write", "fsync"} {
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
// must write again: after a failed flush the slot has been written, so the
// disk may hold the restored (lower) mark while memory holds the advanced one.
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
		if name == "fsync" {
			return errors.New("injected")
		}
		return nil
	}
	if err := s.Revert(bg, testI, 6, 0, dg("b")); !errors.Is(err, watermark.ErrUnavailable) {
		t.Fatalf("Revert = %v, want ErrUnavailable", err)
	}
	if m := diskMark(t, dir, testI); m.Level != 5 {
		t.Fatalf("mark file holds level %d, want 5 (the slot was written, only its flush failed)", m.Level)
	}
	wantOnly(t, s, testI, 6, 0, dg("b"))
}

// TestSet_FailedWriteRewritesBeforeRetry: a Set that lowers the mark and
// fails at its flush may leave the lower mark on disk; the next retry of
// the mark in memory writes it again before it passes.
func TestSet_FailedWriteRewritesBeforeRetry(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	if _, err := s.Advance(bg, testI, 5, 0, dg("a")); err != nil {
		t.Fatal(err)
	}
	s.failAt = func(name string) error {
		if name == "fsync" {
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
