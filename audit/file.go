package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// File appends records to a file as JSON lines, each carrying the hash of
// the previous line. Concurrent Log calls are group-committed: the lines
// queued while one write is in flight go out together in the next write,
// and each Log returns only once its own line is in the file (fdatasync'd
// too with Sync: true). A failed or short write is cut back to the last
// complete line, so the chain stays verifiable once space returns.
type File struct {
	mu      sync.Mutex
	cond    sync.Cond
	f       *os.File
	sync    bool
	writing bool   // a goroutine is writing a batch
	open    *batch // lines queued, not yet being written
	broken  error  // a failed write could not be cut back; refuse until it can

	prev    [32]byte // hash of the last line queued
	has     bool
	durable [32]byte // hash of the last line written in full
	durHas  bool
	size    int64 // end of the last line written in full

	// TruncatedTail is the number of bytes of an incomplete last line (a
	// torn write) that OpenFile cut off so the next line starts clean.
	TruncatedTail int64
}

type batch struct {
	buf  []byte
	last [32]byte // hash of the batch's last line
	err  error
	done bool
}

// FileOptions tune OpenFile.
type FileOptions struct {
	// Sync fdatasyncs every write before Log returns (audit_sync: always).
	Sync bool
}

// OpenFile opens (or creates, mode 0600) an audit file and resumes its chain.
func OpenFile(path string) (*File, error) { return OpenFileWith(path, FileOptions{}) }

// OpenFileWith is OpenFile with options.
func OpenFileWith(path string, opts FileOptions) (*File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	a := &File{f: f, sync: opts.Sync}
	a.cond.L = &a.mu
	if err := a.resume(); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit %s: %w", path, err)
	}
	return a, nil
}

// resume finds the last complete line, cuts off a torn tail and sets the
// chain head.
func (a *File) resume() error {
	st, err := a.f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if size == 0 {
		return nil
	}
	// Read the tail; a line is far below 1 MiB.
	start := max(size-(1<<20), 0)
	buf := make([]byte, size-start)
	if _, err := a.f.ReadAt(buf, start); err != nil && err != io.EOF {
		return err
	}
	if buf[len(buf)-1] != '\n' {
		cut := bytes.LastIndexByte(buf, '\n') + 1 // 0 when no newline: the whole tail read is one torn line
		if cut == 0 && start > 0 {
			return fmt.Errorf("last line is over 1 MiB and incomplete")
		}
		if err := a.f.Truncate(start + int64(cut)); err != nil {
			return fmt.Errorf("cutting off an incomplete last line: %w", err)
		}
		a.TruncatedTail = int64(len(buf) - cut)
		buf = buf[:cut]
		size = start + int64(cut)
	}
	a.size = size
	buf = bytes.TrimRight(buf, "\n")
	if len(buf) == 0 {
		return nil
	}
	if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
		buf = buf[i+1:]
	}
	a.prev = sha256.Sum256(buf)
	a.has = true
	a.durable, a.durHas = a.prev, true
	return nil
}

// Log appends r as one line and returns once it is written. It sets r.Prev
// (and r.Time when zero).
func (a *File) Log(_ context.Context, r *Record) error {
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return fmt.Errorf("%w: closed", ErrUnavailable)
	}
	if a.broken != nil {
		if err := a.f.Truncate(a.size); err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, a.broken)
		}
		a.broken = nil
	}
	if a.has {
		var h [64]byte
		hex.Encode(h[:], a.prev[:])
		r.Prev = string(h[:])
	} else {
		r.Prev = ""
	}
	if a.open == nil {
		a.open = &batch{}
	}
	b := a.open
	start := len(b.buf)
	b.buf = r.appendJSON(b.buf)
	a.prev = sha256.Sum256(b.buf[start:])
	a.has = true
	b.last = a.prev
	b.buf = append(b.buf, '\n')
	for !b.done {
		if a.writing {
			a.cond.Wait()
			continue
		}
		// No write in flight, so b is the open batch: write it.
		a.writing = true
		a.open = nil
		a.mu.Unlock()
		n, err := a.f.Write(b.buf)
		if err == nil && a.sync {
			err = fdatasync(a.f)
		}
		a.mu.Lock()
		a.writing = false
		if err == nil && n < len(b.buf) {
			err = io.ErrShortWrite
		}
		if err != nil {
			a.failLocked(b, err)
		} else {
			a.size += int64(n)
			a.durable, a.durHas = b.last, true
		}
		b.done = true
		a.cond.Broadcast()
	}
	return b.err
}

// failLocked cuts a failed write back to the last complete line and fails
// b and the lines queued behind it (they link to b's lines).
func (a *File) failLocked(b *batch, err error) {
	b.err = fmt.Errorf("%w: %v", ErrUnavailable, err)
	if terr := a.f.Truncate(a.size); terr != nil {
		a.broken = fmt.Errorf("write failed (%v) and the partial line could not be cut off (%v)", err, terr)
	}
	if q := a.open; q != nil {
		q.err, q.done = b.err, true
		a.open = nil
	}
	a.prev, a.has = a.durable, a.durHas
}

// Sync flushes the file to disk.
func (a *File) Sync() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	return a.f.Sync()
}

// Close waits for writes in flight, syncs and closes the file.
func (a *File) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.writing || a.open != nil {
		a.cond.Wait()
	}
	if a.f == nil {
		return nil
	}
	err := a.f.Sync()
	if cerr := a.f.Close(); err == nil {
		err = cerr
	}
	a.f = nil
	return err
}
