package file

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testutil"
	"github.com/keyward/keyward/watermark"
)

// useLockRoot points key locks at a fresh directory for the test (instead
// of /run/keyward or $TMPDIR/keyward, shared with every keyward and test on
// the machine) and returns it.
func useLockRoot(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "locks")
	old := lockRoots
	lockRoots = func() []string { return []string{root} }
	t.Cleanup(func() { lockRoots = old })
	return root
}

// startStore opens dir as the server does: Open, then LockKeys for the keys
// it serves.
func startStore(t *testing.T, dir string, keys ...string) (*Store, error) {
	t.Helper()
	s := openT(t, dir)
	var kl watermark.KeyLocker = s
	return s, kl.LockKeys(keys)
}

func digestOf(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// TestKeyLock_TwoDirectoriesNeverBothPassOneLevel is issue 11 finding 10:
// two keywards serving one key from two watermark directories both signed
// the same level. The second one now refuses at start, and its Advance
// fails closed.
func TestKeyLock_TwoDirectoriesNeverBothPassOneLevel(t *testing.T) {
	root := useLockRoot(t)
	ctx := context.Background()
	key := "tz1KeyLockTwoDirectories"
	id := watermark.ID{Key: key, Chain: "NetXdQprcVkpaWU", Kind: 0x13}
	dirA := t.TempDir()
	a, err := startStore(t, dirA, key)
	if err != nil {
		t.Fatalf("first store: %v", err)
	}
	b, lockErr := startStore(t, t.TempDir(), key)
	_, errA := a.Advance(ctx, id, 100, 0, digestOf(1))
	_, errB := b.Advance(ctx, id, 100, 0, digestOf(2))
	if errA != nil {
		t.Fatalf("first store: %v", errA)
	}
	if errB == nil {
		t.Fatal("two stores on two directories both passed level 100 round 0 of one key for different payloads")
	}
	if !errors.Is(errB, watermark.ErrUnavailable) || !errors.Is(errB, watermark.ErrKeyLocked) {
		t.Fatalf("second Advance: %v, want ErrUnavailable and ErrKeyLocked", errB)
	}
	if !errors.Is(lockErr, watermark.ErrKeyLocked) {
		t.Fatalf("second LockKeys: %v, want ErrKeyLocked", lockErr)
	}
	for _, want := range []string{key, fmt.Sprintf("pid %d", os.Getpid()), "watermark " + dirA, filepath.Join(root, key+".lock")} {
		if !strings.Contains(lockErr.Error(), want) {
			t.Errorf("refusal %q does not name %q", lockErr, want)
		}
	}
	// Once the first store closes, the second can take the key.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, key+".lock")); !os.IsNotExist(err) {
		t.Errorf("lock file left after Close: %v", err)
	}
	if err := b.LockKeys([]string{key}); err != nil {
		t.Fatalf("LockKeys after the holder closed: %v", err)
	}
	if _, err := b.Advance(ctx, id, 100, 0, digestOf(2)); err != nil {
		t.Fatalf("Advance after taking the lock: %v", err)
	}
}

// TestKeyLock_AdvanceLocksUnlistedKeys: after LockKeys, a key that was not
// listed (its policy changed on reload) is locked by its first Advance.
func TestKeyLock_AdvanceLocksUnlistedKeys(t *testing.T) {
	useLockRoot(t)
	ctx := context.Background()
	id := watermark.ID{Key: "tz1KeyLockLater", Chain: "NetXdQprcVkpaWU", Kind: 0x11}
	a, err := startStore(t, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Advance(ctx, id, 5, 0, digestOf(1)); err != nil {
		t.Fatal(err)
	}
	b, _ := startStore(t, t.TempDir())
	if _, err := b.Advance(ctx, id, 5, 0, digestOf(2)); !errors.Is(err, watermark.ErrKeyLocked) || !errors.Is(err, watermark.ErrUnavailable) {
		t.Fatalf("second store's Advance: %v, want ErrUnavailable and ErrKeyLocked", err)
	}
	if err := b.LockKeys([]string{id.Key}); !errors.Is(err, watermark.ErrKeyLocked) {
		t.Fatalf("LockKeys of a key the first store locked on Advance: %v", err)
	}
}

// TestKeyLock_OnlyAfterLockKeys: a store used without LockKeys (the CLI,
// tools) takes no key lock, so it never blocks a running daemon's keys.
func TestKeyLock_OnlyAfterLockKeys(t *testing.T) {
	root := useLockRoot(t)
	s := openT(t, t.TempDir())
	id := watermark.ID{Key: "tz1KeyLockNone", Chain: "NetXdQprcVkpaWU", Kind: 0x12}
	if _, err := s.Advance(context.Background(), id, 1, 0, digestOf(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Fatalf("lock root created without LockKeys: %v", err)
	}
}

func TestKeyLock_SameStoreLocksAKeyOnce(t *testing.T) {
	useLockRoot(t)
	s, err := startStore(t, t.TempDir(), "tz1Same", "tz1Same")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.LockKeys([]string{"tz1Same", "tz2Other"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Advance(context.Background(), watermark.ID{Key: "tz1Same", Chain: "c", Kind: 0x11}, 1, 0, digestOf(1)); err != nil {
		t.Fatal(err)
	}
}

func TestKeyLock_FileNames(t *testing.T) {
	for key, want := range map[string]string{
		"tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx": "tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx.lock",
		"../../etc/passwd":                     "sha256-",
		"":                                     "sha256-",
		strings.Repeat("a", 65):                "sha256-",
	} {
		if got := lockFileName(key); !strings.HasPrefix(got, want) || strings.ContainsRune(got, '/') {
			t.Errorf("lockFileName(%q) = %q, want prefix %q", key, got, want)
		}
	}
}

// TestKeyLock_RefusesUnsafeRoots: the lock directory must be one no other
// user can tamper with; an unusable root fails closed instead of falling
// back to a directory another keyward would not look in.
func TestKeyLock_RefusesUnsafeRoots(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o700)
	os.Chmod(open, 0o777)
	link := filepath.Join(base, "link")
	os.Symlink(t.TempDir(), link)
	for name, root := range map[string]string{"a file": file, "a world-writable directory": open, "a symbolic link": link} {
		if got, err := pickLockRoot([]string{root, filepath.Join(base, "next")}); err == nil {
			t.Errorf("%s: picked %s", name, got)
		}
	}
	if os.Getuid() == 0 {
		// Inside a world-writable parent, a directory someone else made first.
		tmp := filepath.Join(base, "tmp")
		os.Mkdir(tmp, 0o777)
		os.Chmod(tmp, 0o1777)
		theirs := filepath.Join(tmp, "keyward")
		os.Mkdir(theirs, 0o700)
		if err := os.Chown(theirs, 12345, 12345); err != nil {
			t.Fatal(err)
		}
		if got, err := pickLockRoot([]string{theirs}); err == nil {
			t.Errorf("another user's directory in a world-writable parent: picked %s", got)
		}
	}
	// A root that cannot be created (its parent is missing) is skipped.
	good := filepath.Join(base, "good")
	got, err := pickLockRoot([]string{filepath.Join(base, "missing", "x"), good})
	if err != nil || got != good {
		t.Fatalf("pickLockRoot = %q, %v; want %s", got, err, good)
	}
	if fi, err := os.Stat(good); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("created root: %v %v", fi.Mode(), err)
	}
}

// TestKeyLock_AnotherProcessHolds: the lock excludes another process, and
// the refusal names it (the helper process holds the lock until killed).
func TestKeyLock_AnotherProcessHolds(t *testing.T) {
	if os.Getenv("KEYWARD_KEYLOCK_HELPER") != "" {
		lockRoots = func() []string { return []string{os.Getenv("KEYWARD_KEYLOCK_ROOT")} }
		s, err := Open(os.Getenv("KEYWARD_KEYLOCK_DIR"))
		if err == nil {
			err = s.LockKeys([]string{"tz1KeyLockOtherProcess"})
		}
		if err != nil {
			fmt.Println("helper:", err)
			os.Exit(1)
		}
		fmt.Println("locked")
		io.Copy(io.Discard, os.Stdin) // hold the lock until the test closes stdin or kills us
		os.Exit(0)
	}
	root := useLockRoot(t)
	dir := t.TempDir()
	cmd := helperProcess(t, "TestKeyLock_AnotherProcessHolds", "KEYWARD_KEYLOCK_HELPER=1", "KEYWARD_KEYLOCK_ROOT="+root, "KEYWARD_KEYLOCK_DIR="+dir)
	_, err := startStore(t, t.TempDir(), "tz1KeyLockOtherProcess")
	if !errors.Is(err, watermark.ErrKeyLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d, watermark %s", cmd.Process.Pid, dir)) {
		t.Fatalf("LockKeys while another process holds the key: %v", err)
	}
	// A killed holder releases the lock (the kernel drops the flock); its
	// lock file stays and is reused.
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := startStore(t, t.TempDir(), "tz1KeyLockOtherProcess"); err != nil {
		t.Fatalf("LockKeys after the holder was killed: %v", err)
	}
}

// helperProcess reruns this test binary on test name with env added and
// waits until the child prints "locked". The child ends with the test.
func helperProcess(t *testing.T, name string, env ...string) *exec.Cmd {
	t.Helper()
	cmd, sc := testutil.RerunTest(t, name, env...)
	for sc.Scan() {
		if sc.Text() == "locked" {
			return cmd
		}
		t.Log("helper:", sc.Text())
	}
	t.Fatal("helper process exited before taking the lock")
	return nil
}
