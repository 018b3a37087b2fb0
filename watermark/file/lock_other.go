//go:build !unix

package file

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/keyward/keyward/watermark"
)

// ErrLocked: another process (or another Store in this process) has the
// directory open. Two writers would each trust their own cached marks.
var ErrLocked = errors.New("watermark directory in use by another process")

// lockDir only opens dir/.lock: without flock there is no cross-process
// exclusion on this platform, so run a single keyward per directory.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", watermark.ErrUnavailable, err)
	}
	return f, nil
}

// openLockFile opens (creating it 0600) a key lock file.
func openLockFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}

// tryFlock reports the lock as held: without flock there is no
// cross-process exclusion on this platform (as for the directory lock).
func tryFlock(*os.File) (bool, error) { return true, nil }

// checkLockRoot only checks that path is a directory.
func checkLockRoot(path string, fi os.FileInfo) error {
	if !fi.IsDir() {
		return fmt.Errorf("key lock directory %s is not a directory", path)
	}
	return nil
}
