// Package durable holds the file-system machinery keyward's file stores share: one process per directory (flock), fdatasync, whole-file replacement (temp, fsync, rename, directory fsync), in-place two-slot writes, the readiness probe and the file:///abs/dir store URL.
package durable

import "errors"

// ErrLocked: another process (or another open in this process) holds the lock.
var ErrLocked = errors.New("directory in use by another process")
