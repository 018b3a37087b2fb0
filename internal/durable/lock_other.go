//go:build !unix

package durable

import (
	"os"
	"path/filepath"
)

// Lock only opens dir/name: without flock there is no cross-process
// exclusion on this platform, so run a single keyward per directory.
func Lock(dir, name string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, name), os.O_RDWR|os.O_CREATE, 0o600)
}
