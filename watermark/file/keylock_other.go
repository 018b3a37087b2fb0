//go:build !unix

package file

import (
	"fmt"
	"os"
)

// openLockFile opens (creating it 0600) a key lock file.
func openLockFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}

// checkLockRoot only checks that path is a directory.
func checkLockRoot(path string, fi os.FileInfo) error {
	if !fi.IsDir() {
		return fmt.Errorf("key lock directory %s is not a directory", path)
	}
	return nil
}
