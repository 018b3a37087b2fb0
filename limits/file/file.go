// Package file keeps rolling budgets durably in a local directory (the limits subdirectory of the watermark directory), one fsynced file per key, cached in memory.
package file

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/keyward/keyward/internal/durable"
	"github.com/keyward/keyward/limits"
	"github.com/keyward/keyward/limits/internal/ledger"
)

func init() {
	limits.Register("file", openURL)
}

// Subdir is the directory, inside the watermark directory, that holds the budgets.
const Subdir = "limits"

// openURL opens the budgets of the watermark store file:///abs/dir, in
// dir/limits. A host other than localhost, a relative path, a query or a
// fragment is an error (as for the watermark store).
func openURL(_ context.Context, u *url.URL) (limits.Store, error) {
	if u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Errorf("limits file %q: host %q not allowed, use file:///abs/dir", u.Redacted(), u.Host)
	}
	if u.Opaque != "" || !filepath.IsAbs(u.Path) {
		return nil, fmt.Errorf("limits file %q: need an absolute path, file:///abs/dir", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("limits file %q: no query, fragment or user allowed", u.Redacted())
	}
	return Open(filepath.Join(u.Path, Subdir))
}

// On-disk layout:
//
//	lim-<64 hex>.budget  one key's budgets in two checksummed slots (slots.go);
//	                     the name is the SHA-256 of the key, which the JSON
//	                     in the slots names in full
//	lim-<64 hex>.tmp     a new file being written; never read, removed at open
//	.lock                flock held while a process has the store open
const (
	namePrefix = "lim-"
	fileSuffix = ".budget"
	tmpSuffix  = ".tmp"
	lockName   = ".lock"
	probeName  = ".probe-"
)

// Errors. Check with errors.Is.
var (
	// ErrLocked: another process (or another Store in this process) has the
	// directory open; two writers would each trust their own cached budgets.
	ErrLocked = errors.New("limits directory in use by another process")
	// ErrCorrupt: a file in the directory cannot be trusted; Open refuses to
	// start rather than forget what was spent. Fix or remove it by hand.
	ErrCorrupt = ledger.ErrCorrupt
)

// Store is the file budget store. Budgets are loaded at Open and kept in
// memory; memory moves only after the new state is durable on disk (one
// in-place slot write and fdatasync, see write). One process at a time may
// open a directory.
type Store struct {
	dir      string
	dirf     *os.File // held open for fsync of the directory
	lock     *os.File
	readOnly bool // OpenReadOnly: no lock, no writes

	// closeMu is held for reading by every operation and for writing by
	// Close, so Close waits for operations in flight.
	closeMu sync.RWMutex
	closed  bool

	mu      sync.Mutex // guards entries (the map only, never held across I/O)
	entries map[string]*entry

	// failAt, when set (tests only), is called before each I/O step of a
	// write and makes the step fail with its error.
	failAt func(step string) error
}

// entry is one key's budgets.
type entry struct {
	// turn serializes the key's debits and credits (held across the
	// durable write); a channel so that waiting honours the context.
	turn chan struct{}
	base string // file name stem

	mu    sync.Mutex    // guards state (the pointer; a published state is never modified)
	state *ledger.State // nil until the key's first debit

	// The file's slots, touched only by the turn holder: size 0 until
	// the file exists; seq and slot of the slot holding the durable state.
	size int
	seq  uint64
	slot int
}

var _ limits.Store = (*Store)(nil)

// Open opens (creating it 0700 if missing) the budget directory dir and
// loads every key's budgets. A file that cannot be read or parsed is an
// error: the store fails closed rather than forget what was spent.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("limits file %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("limits file %s: %w: %w", abs, limits.ErrUnavailable, err)
	}
	lock, err := lockDir(abs)
	if err != nil {
		return nil, fmt.Errorf("limits file %s: %w", abs, err)
	}
	dirf, err := os.Open(abs)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("limits file %s: %w: %w", abs, limits.ErrUnavailable, err)
	}
	s := &Store{dir: abs, dirf: dirf, lock: lock, entries: map[string]*entry{}}
	if err := s.load(); err != nil {
		dirf.Close()
		lock.Close()
		return nil, fmt.Errorf("limits file %s: %w", abs, err)
	}
	return s, nil
}

// OpenReadOnly loads the budgets in dir without taking its lock, for
// `keyward limits show` beside a running daemon. It writes nothing: Debit,
// Credit and Ready fail. A slot being rewritten while it is read falls back
// to the other slot, which holds the previous durable state.
func OpenReadOnly(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("limits file %s: %w", dir, err)
	}
	s := &Store{dir: abs, readOnly: true, entries: map[string]*entry{}}
	if _, err := os.Stat(abs); errors.Is(err, os.ErrNotExist) {
		return s, nil // nothing spent yet
	}
	if err := s.load(); err != nil {
		return nil, fmt.Errorf("limits file %s: %w", abs, err)
	}
	return s, nil
}

// OpenURLReadOnly is OpenReadOnly for the budgets of the watermark store
// file:///abs/dir.
func OpenURLReadOnly(raw string) (*Store, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "file" || !filepath.IsAbs(u.Path) {
		return nil, fmt.Errorf("limits file: %s is not a file:///abs/dir watermark store", "the watermark setting")
	}
	return OpenReadOnly(filepath.Join(u.Path, Subdir))
}

// errReadOnly refuses writes to a store opened with OpenReadOnly.
var errReadOnly = fmt.Errorf("%w: opened read-only", limits.ErrUnavailable)

// lockDir takes the directory for this process.
func lockDir(dir string) (*os.File, error) {
	f, err := durable.Lock(dir, lockName)
	switch {
	case errors.Is(err, durable.ErrLocked):
		return nil, ErrLocked
	case err != nil:
		return nil, fmt.Errorf("%w: %w", limits.ErrUnavailable, err)
	}
	return f, nil
}

// Dir returns the absolute directory of the store.
func (s *Store) Dir() string { return s.dir }

// baseName is the file name stem of key: the hex SHA-256 of the key, so no
// key can reach outside the directory.
func baseName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return namePrefix + hex.EncodeToString(sum[:])
}

func (s *Store) load() error {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("%w: %w", limits.ErrUnavailable, err)
	}
	for _, de := range des {
		name := de.Name()
		path := filepath.Join(s.dir, name)
		switch {
		case strings.HasPrefix(name, probeName):
			if !s.readOnly {
				os.Remove(path)
			}
		case !strings.HasPrefix(name, namePrefix):
			// Not ours (.lock, an operator's notes).
		case strings.HasSuffix(name, tmpSuffix):
			// A write cut short: the Debit that wrote it had not returned,
			// so nothing was signed for it (or, read-only, one in flight).
			if s.readOnly {
				continue
			}
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("remove stale %s: %w: %w", name, limits.ErrUnavailable, err)
			}
		case strings.HasSuffix(name, fileSuffix) && de.Type().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("read %s: %w: %w", name, limits.ErrUnavailable, err)
			}
			st, seq, slot, size, err := decodeSlots(data)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if baseName(st.Key)+fileSuffix != name {
				return fmt.Errorf("%s: %w: holds the budgets of %q, which belong in %s", name, ErrCorrupt, st.Key, baseName(st.Key)+fileSuffix)
			}
			s.entries[st.Key] = &entry{turn: make(chan struct{}, 1), base: baseName(st.Key), state: st, size: size, seq: seq, slot: slot}
		default:
			return fmt.Errorf("%s: %w: unknown file in the limits directory", name, ErrCorrupt)
		}
	}
	return nil
}

// begin takes the read side of closeMu; it fails once the store is closed.
func (s *Store) begin() error {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return fmt.Errorf("limits file %s: %w: store closed", s.dir, limits.ErrUnavailable)
	}
	return nil
}

func (s *Store) end() { s.closeMu.RUnlock() }

func (s *Store) entryFor(key string, create bool) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[key]
	if e == nil && create {
		e = &entry{turn: make(chan struct{}, 1), base: baseName(key)}
		s.entries[key] = e
	}
	return e
}

func (e *entry) acquire(ctx context.Context) error {
	select {
	case e.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *entry) release() { <-e.turn }

func (e *entry) current() *ledger.State {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state
}

func (e *entry) publish(st *ledger.State) {
	e.mu.Lock()
	e.state = st
	e.mu.Unlock()
}

// Debit implements limits.Store: the new budgets are durable before it
// returns; a refusal writes nothing.
func (s *Store) Debit(ctx context.Context, key string, ls []limits.Limit, sp limits.Spend, now time.Time) (limits.Debit, error) {
	if len(ls) == 0 {
		return limits.Debit{}, nil
	}
	if s.readOnly {
		return limits.Debit{}, errReadOnly
	}
	if err := s.begin(); err != nil {
		return limits.Debit{}, err
	}
	defer s.end()
	e := s.entryFor(key, true)
	if err := e.acquire(ctx); err != nil {
		return limits.Debit{}, fmt.Errorf("limits file %s: %w: %w", key, limits.ErrUnavailable, err)
	}
	defer e.release()
	next := ledger.New(key)
	if cur := e.current(); cur != nil {
		next = cur.Clone()
	}
	d, err := next.Debit(ls, sp, now)
	if errors.Is(err, ledger.ErrClockBehind) {
		return limits.Debit{}, fmt.Errorf("limits file %s: %w: %w", key, limits.ErrUnavailable, err)
	}
	if err != nil {
		return limits.Debit{}, err
	}
	if err := s.write(ctx, e, next); err != nil {
		return limits.Debit{}, fmt.Errorf("limits file %s: %s: %w", s.dir, key, err)
	}
	e.publish(next)
	return d, nil
}

// Credit implements limits.Store, as durably as Debit.
func (s *Store) Credit(ctx context.Context, d limits.Debit) error {
	if len(d.Budgets) == 0 {
		return nil
	}
	if s.readOnly {
		return errReadOnly
	}
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	e := s.entryFor(d.Key, false)
	if e == nil {
		return nil
	}
	if err := e.acquire(ctx); err != nil {
		return fmt.Errorf("limits file %s: %w: %w", d.Key, limits.ErrUnavailable, err)
	}
	defer e.release()
	cur := e.current()
	if cur == nil {
		return nil
	}
	next := cur.Clone()
	next.Credit(d)
	if err := s.write(ctx, e, next); err != nil {
		return fmt.Errorf("limits file %s: %s: credit: %w", s.dir, d.Key, err)
	}
	e.publish(next)
	return nil
}

// Usage implements limits.Store from memory.
func (s *Store) Usage(ctx context.Context, key string, ls []limits.Limit, now time.Time) ([]limits.Usage, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	st := ledger.New(key)
	if e := s.entryFor(key, false); e != nil {
		if cur := e.current(); cur != nil {
			st = cur
		}
	}
	return st.Usage(ls, now), nil
}

// Ready implements limits.Store: it creates, fsyncs and removes a probe
// file in the directory.
func (s *Store) Ready(ctx context.Context) error {
	if s.readOnly {
		return errReadOnly
	}
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	var rnd [8]byte
	rand.Read(rnd[:])
	p := filepath.Join(s.dir, probeName+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("limits file %s: %w: %w", s.dir, limits.ErrUnavailable, err)
	}
	_, werr := f.Write([]byte("probe\n"))
	serr := f.Sync()
	cerr := f.Close()
	rerr := os.Remove(p)
	if err := errors.Join(werr, serr, cerr, rerr); err != nil {
		return fmt.Errorf("limits file %s: %w: %w", s.dir, limits.ErrUnavailable, err)
	}
	return nil
}

// Close waits for operations in flight and releases the directory.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.readOnly {
		return nil
	}
	return errors.Join(s.dirf.Close(), s.lock.Close())
}

func (s *Store) step(name string) error {
	if s.failAt != nil {
		return s.failAt(name)
	}
	return nil
}

// write makes st the durable state of e. The caller holds e's turn. Every
// failure wraps ErrUnavailable and leaves e's slot state as it was; the
// file then holds either the old or the new state, and memory keeps the
// old one: for a debit nothing was signed yet, and a credit gives back a
// debit whose signing failed.
//
// Once the key's file exists, st is written in place over the slot that
// does not hold the current state, then one fdatasync. The file is opened
// by path for every write, so a directory that was removed or replaced
// fails the write. The first state of a key, or one too large for the
// slots, is written as a whole new file with larger slots (replaceFile).
func (s *Store) write(ctx context.Context, e *entry, st *ledger.State) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w: %w", limits.ErrUnavailable, err)
		}
	}()
	if err := ctx.Err(); err != nil {
		return err
	}
	body, err := st.Marshal()
	if err != nil {
		return err
	}
	seq := e.seq + 1
	if e.size > 0 && slotHeader+len(body) <= e.size {
		other := 1 - e.slot
		if err := s.step("write"); err != nil {
			return err
		}
		f, err := os.OpenFile(filepath.Join(s.dir, e.base+fileSuffix), os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		if _, err := f.WriteAt(encodeSlot(seq, body, e.size), int64(other*e.size)); err != nil {
			f.Close()
			return err
		}
		if err := s.step("fsync"); err != nil {
			f.Close()
			return err
		}
		if err := durable.Fdatasync(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		e.seq, e.slot = seq, other
		return nil
	}
	size := slotSizeFor(body)
	file := append(encodeSlot(seq, body, size), make([]byte, size)...)
	if err := s.replaceFile(e.base, file); err != nil {
		return err
	}
	e.size, e.seq, e.slot = size, seq, 0
	return nil
}

// replaceFile makes data the durable contents of base+fileSuffix: write
// base.tmp, fsync it, rename it over the file, fsync the directory.
func (s *Store) replaceFile(base string, data []byte) error {
	tmp := filepath.Join(s.dir, base+tmpSuffix)
	if err := s.step("create"); err != nil {
		return err
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	renamed := false
	defer func() {
		if !renamed {
			os.Remove(tmp)
		}
	}()
	if err := s.step("write"); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := s.step("fsync"); err != nil {
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
	if err := s.step("rename"); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, base+fileSuffix)); err != nil {
		return err
	}
	renamed = true
	if err := s.step("dirsync"); err != nil {
		return err
	}
	if err := s.dirf.Sync(); err != nil {
		return &fs.PathError{Op: "fsync", Path: s.dir, Err: err}
	}
	return nil
}
