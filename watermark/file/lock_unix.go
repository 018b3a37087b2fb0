//go:build unix

package file

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/keyward/keyward/watermark"
)

// ErrLocked: another process (or another Store in this process) has the
// directory open. Two writers would each trust their own cached marks.
var ErrLocked = errors.New("watermark directory in use by another process")

// lockDir takes an exclusive flock on dir/.lock without waiting.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", watermark.ErrUnavailable, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("%w: flock: %w", watermark.ErrUnavailable, err)
	}
	return f, nil
}
