package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/keyward/keyward/internal/durable"
)

// File appends records to a file as JSON lines, each carrying the hash of
// the previous line. Concurrent Log calls are group-committed: the lines
// queued while one write is in flight go out together in the next write,
// and each Log returns only once its own line is in the file. A failed or
// short write is cut back to the last complete line, so the chain stays
// verifiable once space returns.
//
// Durability: by default a line is written with write(2) before Log
// returns (it survives a crash of keyward, not of the machine); at most
// FileOptions.AnchorInterval later the file is fdatasync'd and the anchor
// (AnchorPath) records its count and last hash. With Sync (audit_sync:
// always) every write is fdatasync'd and the anchor moved to it before Log
// returns; the anchor itself is fdatasync'd at the next flush (a power loss
// can leave it behind the file, never ahead: it is written after the file
// is on disk, and a shorter anchor still vouches for the lines it covers).
type File struct {
	mu      sync.Mutex
	cond    sync.Cond
	f       *os.File
	sync    bool
	writing bool   // a goroutine is writing a batch
	closing bool   // Close has begun: Log refuses
	open    *batch // lines queued, not yet being written
	broken  error  // a failed write could not be cut back; refuse until it can

	prev    [32]byte // hash of the last line queued
	has     bool
	durable [32]byte // hash of the last line written in full
	durHas  bool
	size    int64 // end of the last line written in full
	lines   int64 // lines written in full

	anchorMu    sync.Mutex // serializes anchor writes; never taken with mu held
	anchor      *anchorFile
	onAnchorErr func(error)
	stop        chan struct{} // closed by Close to stop the anchor flusher
	flushed     chan struct{} // closed when the flusher has stopped

	// TruncatedTail is the number of bytes of an incomplete last line (a
	// torn write) that OpenFile cut off so the next line starts clean.
	TruncatedTail int64
	// Break is set when OpenFile found the file's tail not matching its
	// anchor (lines removed from the end, the anchored line edited, or the
	// anchor unreadable). OpenFile then wrote a chain-break record (Event
	// EventChainBreak) linking the old head, and continued the chain from
	// the lines the file holds.
	Break *ChainBreak
	// Unanchored is set when the file held lines but had no anchor (written
	// before anchors, or the anchor was removed): a tail removed before now
	// cannot be detected. The anchor starts from the file as it is.
	Unanchored bool
}

type batch struct {
	buf   []byte
	lines int64
	last  [32]byte // hash of the batch's last line
	err   error
	done  bool
}

// FileOptions tune OpenFile.
type FileOptions struct {
	// Sync fdatasyncs every write and moves the anchor to its last line
	// before Log returns (audit_sync: always).
	Sync bool
	// AnchorInterval is how often the file is fdatasync'd and the anchor
	// moved to its last line and fdatasync'd (when anything changed); 0: 1s.
	AnchorInterval time.Duration
	// OnAnchorError, when set, is told of every failure of that periodic
	// fdatasync and anchor write (the lines themselves were written).
	OnAnchorError func(error)
}

// OpenFile opens (or creates, mode 0600, with its directory) an audit file
// and resumes its chain.
func OpenFile(path string) (*File, error) { return OpenFileWith(path, FileOptions{}) }

// OpenFileWith is OpenFile with options. It cuts off a torn last line,
// checks the tail against the anchor (see File.Break) and anchors the file.
func OpenFileWith(path string, opts FileOptions) (*File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	a := &File{f: f, sync: opts.Sync, onAnchorErr: opts.OnAnchorError}
	a.cond.L = &a.mu
	if err := a.resume(); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit %s: %w", path, err)
	}
	if err := a.reconcile(path); err != nil {
		if a.anchor != nil {
			a.anchor.close()
		}
		f.Close()
		return nil, fmt.Errorf("audit %s: %w", path, err)
	}
	every := opts.AnchorInterval
	if every <= 0 {
		every = time.Second
	}
	a.stop, a.flushed = make(chan struct{}), make(chan struct{})
	go a.flusher(every)
	return a, nil
}

// EventChainBreak is the Event of the record OpenFile writes when the
// file's tail does not match its anchor.
const EventChainBreak = "chain_break"

// reconcile counts the file's lines, checks its tail against the anchor,
// records a chain break when they differ, and anchors the file as it is.
func (a *File) reconcile(path string) error {
	w, anc, aerr := openAnchorFile(AnchorPath(path))
	if w == nil {
		return aerr
	}
	a.anchor = w
	if aerr != nil {
		aerr = fmt.Errorf("%s: %w", AnchorPath(path), aerr)
	}
	var err error
	if a.lines, a.Break, a.Unanchored, err = tailState(a.f, a.size, anc, aerr); err != nil {
		return err
	}
	if b := a.Break; b != nil {
		rec := &Record{Event: EventChainBreak, Outcome: Failed, Reason: b.Reason, AnchorLines: b.Anchor.Lines}
		if b.Anchor.Lines > 0 {
			rec.AnchorHash = hex.EncodeToString(b.Anchor.Hash[:])
		}
		if err := a.Log(context.Background(), rec); err != nil {
			return fmt.Errorf("writing the chain-break record: %w", err)
		}
	}
	return a.flushAnchor()
}

// flushAnchor fdatasyncs the file and moves the anchor to its last complete
// line, when lines were added since the anchor last moved.
func (a *File) flushAnchor() error {
	a.anchorMu.Lock()
	defer a.anchorMu.Unlock()
	a.mu.Lock()
	f := a.f
	snap := Anchor{Lines: a.lines, Size: a.size, Hash: a.durable}
	a.mu.Unlock()
	if f == nil || snap.Lines == 0 {
		return nil
	}
	if a.anchor.has && a.anchor.cur == snap { // written by a Sync write, maybe not yet synced
		if err := a.anchor.sync(); err != nil {
			return fmt.Errorf("audit: anchor: %w", err)
		}
		return nil
	}
	if err := durable.Fdatasync(f); err != nil {
		return fmt.Errorf("audit: fdatasync before anchoring: %w", err)
	}
	if err := a.anchor.write(snap, true); err != nil {
		return fmt.Errorf("audit: anchor: %w", err)
	}
	return nil
}

func (a *File) flusher(every time.Duration) {
	defer close(a.flushed)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
			if err := a.flushAnchor(); err != nil && a.onAnchorErr != nil {
				a.onAnchorErr(err)
			}
		}
	}
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
	if a.f == nil || a.closing {
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
	b.lines++
	for !b.done {
		if a.writing {
			a.cond.Wait()
			continue
		}
		// No write in flight, so b is the open batch: write it.
		a.writing = true
		a.open = nil
		next := Anchor{Lines: a.lines + b.lines, Size: a.size + int64(len(b.buf)), Hash: b.last}
		a.mu.Unlock()
		n, err := a.f.Write(b.buf)
		if err == nil && n < len(b.buf) {
			err = io.ErrShortWrite
		}
		if err == nil && a.sync {
			err = durable.Fdatasync(a.f)
			if err == nil {
				a.anchorMu.Lock()
				if err = a.anchor.write(next, false); err != nil {
					err = fmt.Errorf("anchor: %w", err)
				}
				a.anchorMu.Unlock()
			}
		}
		a.mu.Lock()
		a.writing = false
		if err != nil {
			a.failLocked(b, err)
		} else {
			a.size, a.lines = next.Size, next.Lines
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

// Sync fdatasyncs the file and moves the anchor to its last line.
func (a *File) Sync() error { return a.flushAnchor() }

// Close waits for writes in flight, fdatasyncs the file, anchors its last
// line and closes it. Log fails from the moment Close begins.
func (a *File) Close() error {
	a.mu.Lock()
	if a.closing || a.f == nil {
		a.mu.Unlock()
		return nil
	}
	a.closing = true
	for a.writing || a.open != nil {
		a.cond.Wait()
	}
	a.mu.Unlock()
	if a.stop != nil {
		close(a.stop)
		<-a.flushed
	}
	err := a.flushAnchor()
	a.mu.Lock()
	defer a.mu.Unlock()
	if serr := a.f.Sync(); err == nil {
		err = serr
	}
	if cerr := a.f.Close(); err == nil {
		err = cerr
	}
	if cerr := a.anchor.close(); err == nil {
		err = cerr
	}
	a.f = nil
	return err
}
