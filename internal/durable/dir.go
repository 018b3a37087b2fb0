package durable

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
)

// Dir is a store directory opened for writing by this process: it holds the
// directory's flock and an open handle on the directory for fsync. Its write
// methods return the bare cause of a failure; the store wraps it with its
// own unavailable error.
type Dir struct {
	path string
	f    *os.File // the directory, for fsync
	lock *os.File

	// Step, when set (the stores' fault injection for tests), is called
	// before each I/O step of a write with the step's name ("create",
	// "write", "fsync", "rename", "dirsync"); an error makes that step fail
	// with it.
	Step func(step string) error

	// NoExchange is set once renameat2 RENAME_EXCHANGE turned out to be
	// unsupported; Replace then always renames the temp file. Tests set it
	// to run the plain rename.
	NoExchange atomic.Bool
}

// errExchangeUnsupported: renameat2 RENAME_EXCHANGE is not available here.
var errExchangeUnsupported = errors.New("rename exchange unsupported")

// OpenDir creates the directory path (0700) when missing, takes the flock on
// path/lockName (ErrLocked when another process holds it) and opens the
// directory. path should be absolute.
func OpenDir(path, lockName string) (*Dir, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, err
	}
	lock, err := Lock(path, lockName)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		lock.Close()
		return nil, err
	}
	return &Dir{path: path, f: f, lock: lock}, nil
}

// Path returns the directory's path as given to OpenDir.
func (d *Dir) Path() string { return d.path }

// Close closes the directory and releases its lock.
func (d *Dir) Close() error { return errors.Join(d.f.Close(), d.lock.Close()) }

func (d *Dir) step(name string) error {
	if d.Step != nil {
		return d.Step(name)
	}
	return nil
}

// WriteAt writes data at offset off of the existing file name, in place,
// then fdatasyncs it (steps "write", "fsync"). The file is opened by path
// for every write, so a directory that was removed or replaced fails the
// write instead of writing into an unlinked inode. Written over bytes of the
// same file size, it costs one flush and no inode, block or directory
// update.
func (d *Dir) WriteAt(name string, data []byte, off int64) error {
	if err := d.step("write"); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(d.path, name), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, off); err != nil {
		f.Close()
		return err
	}
	if err := d.step("fsync"); err != nil {
		f.Close()
		return err
	}
	if err := Fdatasync(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Replace makes data the durable contents of the file name: write the temp
// file tmp (steps "create", "write"), fsync it ("fsync"), rename it over
// name ("rename"), fsync the directory ("dirsync"). The caller makes sure no
// one else writes tmp at the same time. A failure before the rename removes
// tmp and leaves name as it was; once renamed, a failed directory fsync may
// or may not leave the new contents after a crash.
//
// When swap is set (name exists) the rename is an atomic exchange (Linux
// renameat2 RENAME_EXCHANGE) where available: the previous file is left
// under tmp, older than name, and is written over in place by the next
// Replace (no new inode or blocks); the store must never read tmp back.
func (d *Dir) Replace(name, tmp string, data []byte, swap bool) error {
	tmpPath := filepath.Join(d.path, tmp)
	path := filepath.Join(d.path, name)
	if err := d.step("create"); err != nil {
		return err
	}
	f, err := os.OpenFile(tmpPath, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	renamed := false
	defer func() {
		if !renamed {
			os.Remove(tmpPath)
		}
	}()
	if err := d.step("write"); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return err
	}
	if fi, err := f.Stat(); err != nil {
		f.Close()
		return err
	} else if fi.Size() > int64(len(data)) {
		if err := f.Truncate(int64(len(data))); err != nil {
			f.Close()
			return err
		}
	}
	if err := d.step("fsync"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := d.step("rename"); err != nil {
		return err
	}
	xerr := errExchangeUnsupported
	if swap && !d.NoExchange.Load() {
		xerr = exchange(tmpPath, path)
		if errors.Is(xerr, errExchangeUnsupported) {
			d.NoExchange.Store(true)
		}
	}
	if xerr != nil {
		// No exchange (a new file, a platform or filesystem without it, or
		// name vanished): a plain rename.
		if err := os.Rename(tmpPath, path); err != nil {
			return err
		}
	}
	renamed = true
	if err := d.step("dirsync"); err != nil {
		return err
	}
	if err := d.f.Sync(); err != nil {
		return &fs.PathError{Op: "fsync", Path: d.path, Err: err}
	}
	return nil
}

// Probe checks that the directory takes a durable write: it creates a file
// named prefix and random hex (0600, exclusive), writes and fsyncs it, and
// removes it. A store's open removes such files left by a crash.
func (d *Dir) Probe(prefix string) error {
	var rnd [8]byte
	rand.Read(rnd[:])
	p := filepath.Join(d.path, prefix+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.Write([]byte("probe\n"))
	serr := f.Sync()
	cerr := f.Close()
	rerr := os.Remove(p)
	return errors.Join(werr, serr, cerr, rerr)
}

// URLDir returns the directory of a file store URL, file:///abs/dir. A host
// other than localhost, a relative path, a query, a fragment or a user is an
// error, which does not repeat the URL: the store names it, redacted.
func URLDir(u *url.URL) (string, error) {
	if u.Host != "" && u.Host != "localhost" {
		return "", fmt.Errorf("host %q not allowed, use file:///abs/dir", u.Host)
	}
	if u.Opaque != "" || !filepath.IsAbs(u.Path) {
		return "", errors.New("need an absolute path, file:///abs/dir")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", errors.New("no query, fragment or user allowed")
	}
	return u.Path, nil
}
