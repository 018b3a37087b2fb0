//go:build unix

package file

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// openLockFile opens (creating it 0600) a key lock file, never through a
// symbolic link.
func openLockFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
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
