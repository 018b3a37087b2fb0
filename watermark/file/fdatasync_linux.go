//go:build linux

package file

import (
	"os"
	"syscall"
)

// fdatasync flushes f's data (and the metadata needed to read it back, which
// for an in-place write of the same size is none).
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}
