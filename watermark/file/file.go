// Package file keeps watermarks durably in a local directory, one fsynced file per mark, cached in memory.
package file

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/keyward/keyward/internal/durable"
	"github.com/keyward/keyward/internal/fscheck"
	"github.com/keyward/keyward/watermark"
)

func init() {
	watermark.Register("file", func(_ context.Context, u *url.URL) (watermark.Store, error) {
		dir, err := urlDir(u)
		if err != nil {
			return nil, err
		}
		s, err := Open(dir)
		if err != nil {
			return nil, err // not a nil *Store in a non-nil Store
		}
		return s, nil
	})
	watermark.RegisterReadOnly("file", func(_ context.Context, u *url.URL) (watermark.Store, error) {
		dir, err := urlDir(u)
		if err != nil {
			return nil, err
		}
		s, err := OpenReadOnly(dir)
		if err != nil {
			return nil, err
		}
		return s, nil
	})
}

// urlDir returns the directory of file:///abs/dir (see durable.URLDir).
func urlDir(u *url.URL) (string, error) {
	dir, err := durable.URLDir(u)
	if err != nil {
		return "", fmt.Errorf("watermark file %q: %w", u.Redacted(), err)
	}
	return dir, nil
}

// Store is the file watermark store. Marks are loaded at Open and kept in
// memory; memory moves only after the new mark is durable on disk. One
// process at a time may open a directory (an flock on .lock enforces it);
// OpenReadOnly gives any number of processes a snapshot beside it.
type Store struct {
	dir      string
	d        *durable.Dir // the locked directory the writes go through; nil when read-only
	readOnly bool

	// closeMu is held for reading by every operation and for writing by
	// Close, so Close waits for operations in flight. Readers never wait
	// on each other.
	closeMu sync.RWMutex
	closed  bool

	mu      sync.Mutex // guards entries (the map only, never held across I/O)
	entries map[watermark.ID]*entry

	// failAt, when set (tests only), is called before each I/O step of a
	// write and makes the step fail with its error.
	failAt func(step string) error

	// sigWriters counts background signature-file writers; Close waits
	// for them after closing closing.
	sigWriters sync.WaitGroup
	closing    chan struct{}

	// Machine-wide key locks (keylock.go). lockKeys is set by LockKeys;
	// from then on Advance needs its key locked. keyLockMu guards
	// keyLocks and lockRoot.
	lockKeys  atomic.Bool
	keyLockMu sync.Mutex
	keyLocks  map[string]keyLock
	lockRoot  string
}

// entry is the state of one ID.
type entry struct {
	// turn serializes operations on the ID (held across the durable
	// write); a channel so that waiting honours the context.
	turn chan struct{}
	base string // file name stem

	// mu guards mark and exists; held briefly, so Marks never waits for a
	// write in flight. Only the holder of turn changes them.
	mu     sync.Mutex
	exists bool
	mark   watermark.Mark

	// The fields below are touched only by the holder of turn and live in
	// memory only: after a restart nothing can be reverted.
	//
	// prev is the mark the last strictly-higher Advance replaced (nil when
	// that Advance made the first mark for the ID, or after Set, Revert or
	// a restart); passes counts the Advance calls that passed on the
	// current mark since then (1: only that Advance). Revert needs both.
	prev   *watermark.Mark
	passes int
	// unsure is set when a write that could lower the mark on disk (Revert,
	// Set) failed part way: the disk may then hold a lower mark than
	// memory, so the next Advance that passes on the current mark writes it
	// durably again before it returns.
	unsure bool

	// slots is where the mark file stands once it is in the two-slot
	// format (Size 0 before): the write sequence number of the slot
	// holding the current durable mark, and its index. Only the turn
	// holder touches it.
	slots durable.Slots

	// keyLocked is set once the store holds the machine-wide lock of the
	// ID's key (only when LockKeys was called). Only the turn holder
	// touches it.
	keyLocked bool

	// sigPending is the newest signature record waiting to be written to
	// the .sig file by the entry's background writer (guarded by mu);
	// sigWriting is set while that writer runs.
	sigPending *pendingSig
	sigWriting bool
}

var _ watermark.Reverter = (*Store)(nil)

var _ watermark.Store = (*Store)(nil)

// Open opens (creating it 0700 if missing) the watermark directory dir and
// loads every mark in it. A mark file that cannot be read or parsed is an
// error: the store fails closed rather than forget a mark.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("watermark file %s: %w", dir, err)
	}
	if err := checkWritable(abs); err != nil {
		return nil, err
	}
	d, err := durable.OpenDir(abs, lockName)
	switch {
	case errors.Is(err, durable.ErrLocked):
		return nil, fmt.Errorf("watermark file %s: %w", abs, ErrLocked)
	case err != nil:
		return nil, fmt.Errorf("watermark file %s: %w: %w", abs, watermark.ErrUnavailable, err)
	}
	s := &Store{dir: abs, d: d, entries: map[watermark.ID]*entry{}, closing: make(chan struct{})}
	d.Step = s.step
	if err := s.load(); err != nil {
		d.Close()
		return nil, fmt.Errorf("watermark file %s: %w", abs, err)
	}
	return s, nil
}

// OpenReadOnly loads the marks of dir without taking its lock, removing
// anything or creating the directory: a snapshot for watermark show and
// export and for config check while a keyward serves from dir. Writing
// methods and LockKeys fail with watermark.ErrReadOnly. It refuses what
// Open would refuse: a directory this user could not write (or create) and
// a mark file that cannot be read or parsed. A missing directory holds no
// marks. A mark written in place while it reads may show as the mark before
// it (the file's other slot).
func OpenReadOnly(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("watermark file %s: %w", dir, err)
	}
	if err := checkWritable(abs); err != nil {
		return nil, err
	}
	s := &Store{dir: abs, readOnly: true, entries: map[watermark.ID]*entry{}, closing: make(chan struct{})}
	if _, err := os.Stat(abs); errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err := s.load(); err != nil {
		return nil, fmt.Errorf("watermark file %s: %w", abs, err)
	}
	return s, nil
}

// checkWritable refuses a directory that this user could neither write nor
// create, with the same words for Open and OpenReadOnly.
func checkWritable(abs string) error {
	if err := fscheck.Dir(abs); err != nil {
		return fmt.Errorf("watermark file %s: %w: %w", abs, watermark.ErrUnavailable, err)
	}
	return nil
}

// errReadOnly is the error of every write to a read-only store.
func (s *Store) errReadOnly() error {
	return fmt.Errorf("watermark file %s: %w (stop keyward to change marks)", s.dir, watermark.ErrReadOnly)
}

// readFile reads a mark file at open; tests replace it to make reads fail.
var readFile = os.ReadFile

// Dir returns the absolute directory of the store.
func (s *Store) Dir() string { return s.dir }

// load reads every mark file, attaches matching signature files and
// (unless read-only) removes temp files. A temp file is either the previous mark swapped out by the
// last write or a write cut short by a crash, which never took effect: the
// Advance that wrote it had not returned, so nothing was signed for it.
func (s *Store) load() error {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("%w: %w", watermark.ErrUnavailable, err)
	}
	var sigs []string
	for _, de := range des {
		name := de.Name()
		switch {
		case strings.HasPrefix(name, probePrefix):
			if !s.readOnly {
				os.Remove(filepath.Join(s.dir, name))
			}
		case !strings.HasPrefix(name, namePrefix):
			// Not ours (lost+found, .lock, an operator's notes).
		case strings.HasSuffix(name, tmpSuffix):
			if s.readOnly {
				continue // a write in flight in the process serving the directory
			}
			if err := os.Remove(filepath.Join(s.dir, name)); err != nil {
				return fmt.Errorf("remove stale %s: %w: %w", name, watermark.ErrUnavailable, err)
			}
		case strings.HasSuffix(name, sigSuffix):
			sigs = append(sigs, name)
		case strings.HasSuffix(name, markSuffix):
			if !de.Type().IsRegular() {
				return fmt.Errorf("%s: %w: not a regular file", name, ErrCorrupt)
			}
			data, err := readFile(filepath.Join(s.dir, name))
			if err != nil {
				return fmt.Errorf("read %s: %w: %w", name, watermark.ErrUnavailable, err)
			}
			e := &entry{turn: make(chan struct{}, 1), exists: true}
			var id watermark.ID
			if isSlotFile(data) {
				e.slots.Size = slotSize
				id, e.mark, e.slots.Seq, e.slots.Index, err = decodeSlotFile(data)
			} else {
				id, e.mark, err = decodeRecord(data)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			e.base = baseName(id)
			if e.base+markSuffix != name {
				return fmt.Errorf("%s: %w: holds the mark of %s, which belongs in %s", name, ErrCorrupt, id, e.base+markSuffix)
			}
			s.entries[id] = e
		default:
			return fmt.Errorf("%s: %w: unknown file in the watermark directory", name, ErrCorrupt)
		}
	}
	// Signatures are best effort: one that is unreadable or belongs to
	// another mark is ignored (a retry then gets a fresh signature over the
	// same payload, which is safe).
	for _, name := range sigs {
		data, err := os.ReadFile(filepath.Join(s.dir, name))
		if err != nil {
			continue
		}
		id, m, err := decodeRecord(data)
		if err != nil || m.Signature == nil || baseName(id)+sigSuffix != name {
			continue
		}
		// Set removes the signature file, so one that matches was
		// written after the mark file and is the newer signature.
		if e := s.entries[id]; e != nil && sameMark(e.mark, m.Level, m.Round, m.Digest) {
			e.mark.Signature = m.Signature
		}
	}
	return nil
}

func sameMark(m watermark.Mark, level, round int64, digest []byte) bool {
	return m.Level == level && m.Round == round && bytes.Equal(m.Digest, digest)
}

// begin takes the read side of closeMu; it fails once the store is closed.
func (s *Store) begin() error {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return fmt.Errorf("watermark file %s: %w: store closed", s.dir, watermark.ErrUnavailable)
	}
	return nil
}

func (s *Store) end() { s.closeMu.RUnlock() }

// acquireExisting returns id's entry with its turn held, or nil (and no
// error) when the ID has never been seen.
func (s *Store) acquireExisting(ctx context.Context, id watermark.ID) (*entry, error) {
	s.mu.Lock()
	e := s.entries[id]
	s.mu.Unlock()
	if e == nil {
		return nil, nil
	}
	if err := e.acquire(ctx); err != nil {
		return nil, fmt.Errorf("watermark file %s: %w", id, err)
	}
	return e, nil
}

// entryFor returns the entry for id, creating an empty one.
func (s *Store) entryFor(id watermark.ID) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[id]
	if e == nil {
		e = &entry{turn: make(chan struct{}, 1), base: baseName(id)}
		s.entries[id] = e
	}
	return e
}

// acquire waits for the ID's turn or for ctx.
func (e *entry) acquire(ctx context.Context) error {
	select {
	case e.turn <- struct{}{}:
		return nil
	default:
	}
	select {
	case e.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *entry) release() { <-e.turn }

// Advance implements watermark.Store. A strictly higher (level, round) is
// written durably (temp file, fsync, rename, fsync directory) before the
// in-memory mark moves and before Advance returns. The digest must be 32
// bytes.
func (s *Store) Advance(ctx context.Context, id watermark.ID, level, round int64, digest []byte) ([]byte, error) {
	if len(digest) != 32 {
		return nil, fmt.Errorf("watermark file %s: digest is %d bytes, want 32", id, len(digest))
	}
	if s.readOnly {
		return nil, s.errReadOnly()
	}
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	e := s.entryFor(id)
	if err := e.acquire(ctx); err != nil {
		return nil, fmt.Errorf("watermark file %s: %w", id, err)
	}
	defer e.release()
	if !e.keyLocked && s.lockKeys.Load() {
		if err := s.lockKey(id.Key); err != nil {
			if !errors.Is(err, watermark.ErrUnavailable) {
				err = fmt.Errorf("%w: %w", watermark.ErrUnavailable, err) // fail closed: nothing is signed
			}
			return nil, err
		}
		e.keyLocked = true
	}
	// Only turn holders change exists and mark, so reading them here
	// without e.mu is safe.
	if e.exists {
		have := e.mark
		if have.Level == level && have.Round == round && bytes.Equal(have.Digest, digest) {
			if e.unsure {
				if err := s.rewrite(ctx, id, e); err != nil {
					return nil, err
				}
			}
			e.passes++
			return cloneOrNil(have.Signature), nil
		}
		if !watermark.Above(level, round, have.Level, have.Round) {
			return nil, &watermark.RefusedError{ID: id, Have: cloneMark(have), Level: level, Round: round}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("watermark file %s: %w", id, err)
	}
	m := watermark.Mark{Level: level, Round: round, Digest: bytes.Clone(digest)}
	if err := s.writeMark(e, encodeRecord(id, m, false)); err != nil {
		return nil, fmt.Errorf("watermark file %s: %s: %w", s.dir, id, err)
	}
	e.prev = nil
	if e.exists {
		prev := e.mark
		e.prev = &prev
	}
	e.passes, e.unsure = 1, false
	e.mu.Lock()
	e.exists, e.mark = true, m
	e.mu.Unlock()
	return nil, nil
}

// rewrite writes the entry's current mark durably again (after a failed
// lowering write left the disk unsure); the caller holds the turn.
func (s *Store) rewrite(ctx context.Context, id watermark.ID, e *entry) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("watermark file %s: %w", id, err)
	}
	if err := s.writeMark(e, encodeRecord(id, e.mark, false)); err != nil {
		return fmt.Errorf("watermark file %s: %s: %w", s.dir, id, err)
	}
	e.unsure = false
	return nil
}

// Revert implements watermark.Reverter. It restores the mark the last
// strictly-higher Advance replaced, durably (the same write as Advance),
// only when the mark is still exactly (level, round, digest) without a
// signature and that Advance is the only one that passed on it. Passes are
// counted in memory, which is sound because one process at a time holds the
// directory; after a restart, and for the first mark of an ID (there is no
// earlier mark to restore), Revert does nothing. The restored mark keeps the
// signature it had in memory.
//
// When the write fails the error wraps ErrUnavailable and memory keeps the
// current mark; as the disk may then hold either mark, the next Advance that
// passes on the current mark first writes it durably again.
func (s *Store) Revert(ctx context.Context, id watermark.ID, level, round int64, digest []byte) error {
	if s.readOnly {
		return s.errReadOnly()
	}
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	e, err := s.acquireExisting(ctx, id)
	if e == nil {
		return err
	}
	defer e.release()
	if !e.exists || !sameMark(e.mark, level, round, digest) || len(e.mark.Signature) > 0 || e.passes != 1 || e.prev == nil {
		return nil
	}
	prev := cloneMark(*e.prev)
	// One attempt per Advance: whatever happens below, this mark is never
	// reverted again.
	e.prev, e.passes = nil, 0
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("watermark file %s: %w", id, err)
	}
	if err := s.writeMark(e, encodeRecord(id, prev, false)); err != nil {
		e.unsure = true
		return fmt.Errorf("watermark file %s: %s: revert: %w", s.dir, id, err)
	}
	e.mu.Lock()
	e.mark = prev
	e.mu.Unlock()
	return nil
}

// SetSignature implements watermark.Store. The signature is kept in memory
// and written in place, without fsync, to a separate .sig file that is checked
// against the mark when loaded; the mark file itself is never touched, so a
// crash can lose the signature but never damage the mark.
func (s *Store) SetSignature(ctx context.Context, id watermark.ID, level, round int64, digest, sig []byte) error {
	if s.readOnly {
		return s.errReadOnly()
	}
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	e, err := s.acquireExisting(ctx, id)
	if e == nil {
		return err
	}
	defer e.release()
	if !e.exists || !sameMark(e.mark, level, round, digest) {
		return nil
	}
	m := e.mark
	m.Signature = cloneOrNil(sig)
	e.mu.Lock()
	e.mark = m
	e.mu.Unlock()
	// Best effort, off the request path: the signature is in memory now; a
	// background writer copies the newest one to the .sig file. A crash
	// before that loses only the copy that survives a restart (a retry then
	// gets a fresh signature over the same payload, which is safe).
	if err := s.step("sig"); err == nil {
		s.queueSig(e, &pendingSig{id: id, mark: m})
	}
	return nil
}

// Marks implements watermark.Store; entries are sorted by key, chain, kind.
func (s *Store) Marks(ctx context.Context) ([]watermark.Entry, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	defer s.end()
	s.mu.Lock()
	ids := make([]watermark.ID, 0, len(s.entries))
	es := make([]*entry, 0, len(s.entries))
	for id, e := range s.entries {
		ids = append(ids, id)
		es = append(es, e)
	}
	s.mu.Unlock()
	out := make([]watermark.Entry, 0, len(es))
	for i, e := range es {
		e.mu.Lock()
		ok, m := e.exists, cloneMark(e.mark)
		e.mu.Unlock()
		if ok {
			out = append(out, watermark.Entry{ID: ids[i], Mark: m})
		}
	}
	slices.SortFunc(out, func(a, b watermark.Entry) int {
		return cmp.Or(strings.Compare(a.ID.Key, b.ID.Key), strings.Compare(a.ID.Chain, b.ID.Chain), cmp.Compare(a.ID.Kind, b.ID.Kind))
	})
	return out, nil
}

// Set implements watermark.Store: the mark (with its signature, if any) is
// written durably whatever the current mark is.
func (s *Store) Set(ctx context.Context, id watermark.ID, m watermark.Mark) error {
	if s.readOnly {
		return s.errReadOnly()
	}
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	e := s.entryFor(id)
	if err := e.acquire(ctx); err != nil {
		return fmt.Errorf("watermark file %s: %w", id, err)
	}
	defer e.release()
	m = cloneMark(m)
	// The signature file belongs to the mark being replaced; without it the
	// signature in the new mark file (if any) is the one loaded.
	e.mu.Lock()
	e.sigPending = nil // a queued signature belongs to the mark being replaced
	e.mu.Unlock()
	if err := os.Remove(filepath.Join(s.dir, e.base+sigSuffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("watermark file %s: %s: %w: %w", s.dir, id, watermark.ErrUnavailable, err)
	}
	e.prev, e.passes = nil, 0
	if err := s.writeMark(e, encodeRecord(id, m, true)); err != nil {
		// The disk may now hold the new mark, possibly lower than memory's.
		e.unsure = e.exists
		return fmt.Errorf("watermark file %s: %s: %w", s.dir, id, err)
	}
	e.unsure = false
	e.mu.Lock()
	e.exists, e.mark = true, m
	e.mu.Unlock()
	return nil
}

// Ready implements watermark.Store: it creates, fsyncs and removes a probe
// file in the directory. A read-only store asks the kernel whether this user
// could write (or create) the directory, and writes nothing.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.begin(); err != nil {
		return err
	}
	defer s.end()
	if s.readOnly {
		return checkWritable(s.dir)
	}
	if err := s.d.Probe(probePrefix); err != nil {
		return fmt.Errorf("watermark file %s: %w: %w", s.dir, watermark.ErrUnavailable, err)
	}
	return nil
}

// Close waits for operations in flight and releases the directory and the
// key locks.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.closing)
	if s.readOnly {
		return nil
	}
	s.flushSigs()
	return errors.Join(s.releaseKeyLocks(), s.d.Close())
}

// step lets tests make one I/O step fail.
func (s *Store) step(name string) error {
	if s.failAt != nil {
		return s.failAt(name)
	}
	return nil
}

// cloneMark copies m's slices; an empty digest or signature becomes nil, so
// an empty signature is never handed back as if it were one.
func cloneMark(m watermark.Mark) watermark.Mark {
	m.Digest = cloneOrNil(m.Digest)
	m.Signature = cloneOrNil(m.Signature)
	return m
}

func cloneOrNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}
