// Package fscheck tells, without creating or opening anything for writing, whether this process could create a directory or write a file.
package fscheck

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrNotWritable is wrapped by every refusal.
var ErrNotWritable = errors.New("not writable")

// Dir checks that dir is a directory this process may create files in, or,
// when it does not exist, that os.MkdirAll could create it: its nearest
// existing ancestor is such a directory.
func Dir(dir string) error {
	p := filepath.Clean(dir)
	for {
		fi, err := os.Stat(p)
		switch {
		case err == nil:
			if !fi.IsDir() {
				return fmt.Errorf("%s: %w: %s is not a directory", dir, ErrNotWritable, p)
			}
			if err := access(p, true); err != nil {
				if p == filepath.Clean(dir) {
					return fmt.Errorf("%s: %w by uid %d: %v", dir, ErrNotWritable, os.Geteuid(), err)
				}
				return fmt.Errorf("%s: missing, and %w: %s refuses uid %d to create it: %v", dir, ErrNotWritable, p, os.Geteuid(), err)
			}
			return nil
		case errors.Is(err, fs.ErrNotExist):
			parent := filepath.Dir(p)
			if parent == p {
				return fmt.Errorf("%s: %w: no existing ancestor", dir, ErrNotWritable)
			}
			p = parent
		default:
			return fmt.Errorf("%s: %w: %v", dir, ErrNotWritable, err)
		}
	}
}

// File checks that path is a regular file this process may write, or, when
// it does not exist, that it could be created (Dir of its directory).
func File(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Dir(filepath.Dir(path))
	case err != nil:
		return fmt.Errorf("%s: %w: %v", path, ErrNotWritable, err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s: %w: not a regular file", path, ErrNotWritable)
	}
	if err := access(path, false); err != nil {
		return fmt.Errorf("%s: %w by uid %d: %v", path, ErrNotWritable, os.Geteuid(), err)
	}
	return nil
}
