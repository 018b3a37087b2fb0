//go:build unix

package file

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/keyward/keyward/watermark"
)

// ErrLocked: another process (or another Store in this process) has the
// directory open. Two writers would each trust their own cached marks.
var ErrLocked = errors.New("watermark directory in use by another process")

// lockDir takes an exclusive flock on dir/.lock without waiting.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", watermark.ErrUnavailable, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("%w: flock: %w", watermark.ErrUnavailable, err)
	}
	return f, nil
}

// openLockFile opens (creating it 0600) a key lock file, never through a
// symbolic link.
func openLockFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
}

// tryFlock takes an exclusive flock on f without waiting; held is false when
// another open file holds it.
func tryFlock(f *os.File) (held bool, err error) {
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return false, nil
		}
		return false, fmt.Errorf("flock: %w", err)
	}
	return true, nil
}

// checkLockRoot refuses a key lock directory that another user could
// tamper with: not a directory, writable by group or others, or, inside a
// directory anyone can write to (/tmp), owned by someone other than this
// user or root (who could have made it first to control the locks).
func checkLockRoot(path string, fi os.FileInfo) error {
	if !fi.IsDir() {
		return fmt.Errorf("key lock directory %s is not a directory", path)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("key lock directory %s is writable by group or others (mode %v)", path, fi.Mode().Perm())
	}
	parent, err := os.Stat(filepath.Dir(path))
	if err != nil {
		return err
	}
	if parent.Mode().Perm()&0o002 == 0 {
		return nil
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("key lock directory %s belongs to uid %d, not this user (uid %d)", path, st.Uid, os.Getuid())
	}
	return nil
}
