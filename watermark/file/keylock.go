package file

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/keyward/keyward/internal/durable"
	"github.com/keyward/keyward/watermark"
)

// Machine-wide key locks. The .lock flock keeps a second process off one
// watermark directory, but two keywards given two directories would each
// trust their own marks for the same key and both sign one level. So the
// store also takes, per key, an flock on <root>/<key>.lock, where root is
// the first of /run/keyward (the systemd unit's RuntimeDirectory),
// $XDG_RUNTIME_DIR/keyward and $TMPDIR/keyward that exists or can be
// created. The lock file names its holder (pid and watermark directory) for
// the error the next process gets, and is removed on Close while still held:
// a process that locked a removed file sees the path changed and tries again.

// lockRoots lists the candidate directories for key locks, in order; tests
// replace it.
var lockRoots = func() []string {
	roots := []string{"/run/keyward"}
	if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" && filepath.IsAbs(x) {
		roots = append(roots, filepath.Join(x, "keyward"))
	}
	return append(roots, filepath.Join(os.TempDir(), "keyward"))
}

// keyLock is one held key lock.
type keyLock struct {
	f    *os.File
	path string
}

var _ watermark.KeyLocker = (*Store)(nil)

// LockKeys implements watermark.KeyLocker: it locks each key for the whole
// machine until Close, and from then on Advance locks any other key before
// its first mark moves. On a platform without flock it locks nothing.
func (s *Store) LockKeys(keys []string) error {
	if s.readOnly {
		return s.errReadOnly()
	}
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	s.keyLockMu.Lock()
	defer s.keyLockMu.Unlock()
	s.lockKeys.Store(true)
	for _, k := range keys {
		if err := s.lockKeyLocked(k); err != nil {
			return err
		}
	}
	return nil
}

// lockKey takes key's machine-wide lock unless this store holds it already.
func (s *Store) lockKey(key string) error {
	s.keyLockMu.Lock()
	defer s.keyLockMu.Unlock()
	return s.lockKeyLocked(key)
}

func (s *Store) lockKeyLocked(key string) error {
	if _, ok := s.keyLocks[key]; ok {
		return nil
	}
	if s.lockRoot == "" {
		root, err := pickLockRoot(lockRoots())
		if err != nil {
			return fmt.Errorf("watermark file %s: key %s: %w: %w", s.dir, key, watermark.ErrUnavailable, err)
		}
		s.lockRoot = root
	}
	path := filepath.Join(s.lockRoot, lockFileName(key))
	for range 3 {
		f, err := openLockFile(path)
		if err != nil {
			return fmt.Errorf("watermark file %s: key %s: %w: key lock: %w", s.dir, key, watermark.ErrUnavailable, err)
		}
		held, err := durable.TryLock(f)
		if err != nil {
			f.Close()
			return fmt.Errorf("watermark file %s: key %s: %w: key lock %s: %w", s.dir, key, watermark.ErrUnavailable, path, err)
		}
		if !held {
			holder := readHolder(f)
			f.Close()
			return fmt.Errorf("watermark file %s: key %s: %w (%s; lock %s): stop it, or have both use one PostgreSQL store",
				s.dir, key, watermark.ErrKeyLocked, holder, path)
		}
		if !stillAt(f, path) {
			f.Close() // its holder removed it on release: lock the new file
			continue
		}
		note := fmt.Sprintf("pid %d, watermark %s\n", os.Getpid(), s.dir)
		if err := f.Truncate(0); err == nil {
			_, _ = f.WriteAt([]byte(note), 0) // best effort: only for the error above
		}
		if s.keyLocks == nil {
			s.keyLocks = map[string]keyLock{}
		}
		s.keyLocks[key] = keyLock{f: f, path: path}
		return nil
	}
	return fmt.Errorf("watermark file %s: key %s: %w: key lock %s keeps being replaced", s.dir, key, watermark.ErrUnavailable, path)
}

// releaseKeyLocks removes and unlocks every key lock (removed first, while
// held, so no process can lock a file that is about to disappear unseen).
func (s *Store) releaseKeyLocks() error {
	s.keyLockMu.Lock()
	defer s.keyLockMu.Unlock()
	var errs []error
	for k, l := range s.keyLocks {
		if err := os.Remove(l.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
		errs = append(errs, l.f.Close())
		delete(s.keyLocks, k)
	}
	return errors.Join(errs...)
}

// pickLockRoot returns the first root that exists as a directory or can be
// created (0700). A root that exists but is not a safe directory is an error,
// not a reason to use the next one: two processes must agree on the root.
func pickLockRoot(roots []string) (string, error) {
	var errs []error
	for _, r := range roots {
		fi, err := os.Lstat(r)
		if errors.Is(err, fs.ErrNotExist) {
			if err := os.Mkdir(r, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				errs = append(errs, err)
				continue
			}
			fi, err = os.Lstat(r)
		}
		if err != nil {
			return "", err
		}
		if err := checkLockRoot(r, fi); err != nil {
			return "", err
		}
		return r, nil
	}
	return "", fmt.Errorf("no directory for key locks: %w", errors.Join(errs...))
}

// lockFileName is key+".lock" for a Tezos address (or any short
// alphanumeric key), else a hash of the key, so no key reaches outside root.
func lockFileName(key string) string {
	if len(key) > 0 && len(key) <= 64 && strings.IndexFunc(key, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) < 0 {
		return key + ".lock"
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256-" + hex.EncodeToString(sum[:]) + ".lock"
}

// readHolder returns the holder note of a lock file, printable and short.
func readHolder(f *os.File) string {
	b, _ := io.ReadAll(io.LimitReader(f, 512))
	note := strings.TrimSpace(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, string(b)))
	if note == "" {
		return "another process"
	}
	return note
}

// stillAt reports whether path still names the open file f.
func stillAt(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Lstat(path)
	return err == nil && os.SameFile(a, b)
}
