// Package dirlock gives one process at a time a directory, with an exclusive flock on a lock file inside it.
package dirlock

import "errors"

// ErrLocked: another process (or another open in this process) holds the lock.
var ErrLocked = errors.New("directory in use by another process")
