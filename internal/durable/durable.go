// Package durable holds the file-system primitives keyward's file stores rely on: one process per directory (flock) and fdatasync.
package durable

import "errors"

// ErrLocked: another process (or another open in this process) holds the lock.
var ErrLocked = errors.New("directory in use by another process")
