//go:build unix

package fscheck

import (
	"os"

	"golang.org/x/sys/unix"
)

// access asks the kernel whether this process may write path (and, for a
// directory, search it), counting read-only mounts and immutable files.
// The kernel checks the real user; for a set-user-ID process, where it
// differs from the effective one, x/sys emulates the effective check from
// the mode bits.
func access(path string, dir bool) error {
	mode := uint32(unix.W_OK)
	if dir {
		mode |= unix.X_OK
	}
	flags := 0
	if os.Getuid() != os.Geteuid() {
		flags = unix.AT_EACCESS
	}
	return unix.Faccessat(unix.AT_FDCWD, path, mode, flags)
}
