package file

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testutil"
	"github.com/keyward/keyward/watermark"
)

// Finding 1 of issue 14: config check and watermark show/export failed
// beside a running daemon because they took the directory's lock. A
// read-only open takes no lock, sees the marks the serving store made
// durable, removes nothing and refuses every write.
func TestOpenReadOnly_ReadsBesideTheServingStoreAndWritesNothing(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	ctx := context.Background()
	id := watermark.ID{Key: "tz2Baker", Chain: "NetXdQprcVkpaWU", Kind: 0x13}
	for lvl := int64(1); lvl <= 3; lvl++ { // the third write is in place (slot file)
		if _, err := s.Advance(ctx, id, lvl, 0, digestOf(byte(lvl))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.LockKeys([]string{"tz2Baker"}); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(dir, namePrefix+"stray"+tmpSuffix) // a write in flight
	os.WriteFile(stray, []byte("partial"), 0o600)

	for i := 0; i < 2; i++ { // two readers at once
		ro, err := OpenReadOnly(dir)
		if err != nil {
			t.Fatalf("read-only open beside the serving store: %v", err)
		}
		defer ro.Close()
		marks, err := ro.Marks(ctx)
		if err != nil || len(marks) != 1 || marks[0].ID != id || marks[0].Mark.Level != 3 {
			t.Fatalf("marks = %+v, %v", marks, err)
		}
		if err := ro.Ready(ctx); err != nil {
			t.Fatalf("Ready: %v", err)
		}
		for name, err := range map[string]error{
			"Set":          ro.Set(ctx, id, watermark.Mark{Level: 9}),
			"SetSignature": ro.SetSignature(ctx, id, 3, 0, digestOf(3), []byte{1}),
			"Revert":       ro.Revert(ctx, id, 3, 0, digestOf(3)),
			"LockKeys":     ro.LockKeys([]string{"tz2Baker"}),
		} {
			if !errors.Is(err, watermark.ErrReadOnly) {
				t.Errorf("%s on a read-only store: %v, want ErrReadOnly", name, err)
			}
		}
		if _, err := ro.Advance(ctx, id, 4, 0, digestOf(4)); !errors.Is(err, watermark.ErrReadOnly) {
			t.Errorf("Advance on a read-only store: %v", err)
		}
	}
	if _, err := os.Stat(stray); err != nil {
		t.Fatalf("the read-only open removed a temp file: %v", err)
	}
	// The serving store still works and its lock was never taken away.
	if _, err := s.Advance(ctx, id, 4, 0, digestOf(4)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second writable open: %v, want ErrLocked", err)
	}
}

func TestOpenReadOnly_MissingDirectoryHoldsNoMarksAndIsNotCreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "wm")
	ro, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if marks, err := ro.Marks(context.Background()); err != nil || len(marks) != 0 {
		t.Fatalf("marks = %v, %v", marks, err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Fatal("OpenReadOnly created the directory")
	}
}

// What serve refuses, config check refuses with the same words.
func TestOpen_UnwritableDirectoryRefusedAlikeReadOnlyOrNot(t *testing.T) {
	parent := t.TempDir()
	testutil.ReadOnlyDir(t, parent)
	for _, dir := range []string{parent, filepath.Join(parent, "wm")} {
		_, rerr := OpenReadOnly(dir)
		_, werr := Open(dir)
		if rerr == nil || werr == nil || rerr.Error() != werr.Error() || !errors.Is(werr, watermark.ErrUnavailable) {
			t.Fatalf("%s:\n read-only: %v\n writable:  %v", dir, rerr, werr)
		}
		if !strings.Contains(werr.Error(), "not writable") {
			t.Errorf("error does not say why: %v", werr)
		}
	}
}

func TestOpenReadOnly_CorruptMarkRefused(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, namePrefix+"x"+markSuffix), []byte("garbage"), 0o600)
	if _, err := OpenReadOnly(dir); err == nil {
		t.Fatal("a corrupt mark file was accepted")
	}
}
