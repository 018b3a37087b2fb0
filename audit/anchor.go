package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/keyward/keyward/internal/durable"
)

// Anchor is the count and hash of the last durable line of an audit file,
// kept in a sidecar file (AnchorPath) that truncating or editing the audit
// file cannot also change. It is written only after the audit file is
// fdatasync'd up to the anchored line, so the file always holds at least
// Lines lines, the last of them hashing to Hash; one that does not lost
// or changed its tail.
type Anchor struct {
	Lines int64    // lines up to and including the anchored one
	Size  int64    // bytes up to and including the anchored line's newline
	Hash  [32]byte // SHA-256 of the anchored line (without its newline): the prev of the line after it
}

// AnchorPath is the anchor file of an audit file: the same path plus ".anchor".
func AnchorPath(auditPath string) string { return auditPath + ".anchor" }

// ErrBadAnchor means an anchor file holds no valid slot.
var ErrBadAnchor = errors.New("audit anchor unreadable")

// The anchor file holds two slots written in turn, each with a sequence
// number and a checksum: a write torn by a crash spoils only the slot being
// written, and the other keeps the anchor before it (which the audit file
// still satisfies).
const (
	anchorMagic    = "KWANCHR1"
	anchorSlotSize = 8 + 8 + 8 + 8 + 32 + 32 // magic, seq, lines, size, hash, checksum
	anchorFileSize = 2 * anchorSlotSize
)

func encodeAnchorSlot(seq uint64, a Anchor) []byte {
	b := make([]byte, 0, anchorSlotSize)
	b = append(b, anchorMagic...)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint64(b, uint64(a.Lines))
	b = binary.BigEndian.AppendUint64(b, uint64(a.Size))
	b = append(b, a.Hash[:]...)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

func decodeAnchorSlot(b []byte) (seq uint64, a Anchor, ok bool) {
	if len(b) != anchorSlotSize || string(b[:8]) != anchorMagic {
		return 0, a, false
	}
	body := b[:anchorSlotSize-32]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], b[anchorSlotSize-32:]) {
		return 0, a, false
	}
	seq = binary.BigEndian.Uint64(b[8:])
	lines, size := binary.BigEndian.Uint64(b[16:]), binary.BigEndian.Uint64(b[24:])
	if lines > 1<<62 || size > 1<<62 || lines > size { // every line takes at least its newline
		return 0, a, false
	}
	a.Lines, a.Size = int64(lines), int64(size)
	copy(a.Hash[:], b[32:64])
	return seq, a, true
}

// decodeAnchor reads the slots of an anchor file and returns the valid one
// with the highest sequence number and its index.
func decodeAnchor(data []byte) (a Anchor, seq uint64, slot int, err error) {
	if len(data) > anchorFileSize {
		return a, 0, 0, fmt.Errorf("%w: %d bytes, want %d", ErrBadAnchor, len(data), anchorFileSize)
	}
	found := false
	for i := 0; (i+1)*anchorSlotSize <= len(data); i++ {
		s, sa, ok := decodeAnchorSlot(data[i*anchorSlotSize : (i+1)*anchorSlotSize])
		if ok && (!found || s > seq) {
			a, seq, slot, found = sa, s, i, true
		}
	}
	if !found {
		return a, 0, 0, fmt.Errorf("%w: no valid slot", ErrBadAnchor)
	}
	return a, seq, slot, nil
}

// ReadAnchor reads the anchor of the audit file at auditPath; nil (and no
// error) when it has none.
func ReadAnchor(auditPath string) (*Anchor, error) {
	data, err := os.ReadFile(AnchorPath(auditPath))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit anchor %s: %w", AnchorPath(auditPath), err)
	}
	a, _, _, err := decodeAnchor(data)
	if err != nil {
		return nil, fmt.Errorf("audit anchor %s: %w", AnchorPath(auditPath), err)
	}
	return &a, nil
}

func (a Anchor) String() string {
	return fmt.Sprintf("line %d (byte %d, sha256 %.16s…)", a.Lines, a.Size, hex.EncodeToString(a.Hash[:]))
}

// anchorFile writes an audit file's anchor; the caller serializes writes.
//
// A write may be left unsynced (audit_sync: always anchors every write,
// then fdatasyncs the anchor with the next flush). Unsynced writes all go to
// the slot that does not hold the last synced anchor, so a power loss can
// spoil at most that slot, never the anchor last made durable.
type anchorFile struct {
	path    string
	f       *os.File
	seq     uint64
	durSlot int // the slot holding the last fdatasync'd anchor
	pending bool
	cur     Anchor
	has     bool
}

// openAnchorFile opens the anchor file at path for writing and returns
// the anchor it holds: nil when there is none, and an error wrapping
// ErrBadAnchor when it holds no valid slot (the next write then replaces
// it whole).
func openAnchorFile(path string) (*anchorFile, *Anchor, error) {
	w := &anchorFile{path: path}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return w, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, anchorFileSize+1))
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	a, seq, slot, err := decodeAnchor(data)
	if err != nil {
		f.Close()
		return w, nil, err
	}
	w.f, w.seq, w.durSlot, w.cur, w.has = f, seq, slot, a, true
	return w, &a, nil
}

// write makes a the anchor: the slot not holding the last synced anchor
// gets it with the next sequence number, then, with sync, fdatasync. The
// first anchor creates the file whole (always synced).
func (w *anchorFile) write(a Anchor, sync bool) error {
	if w.has && w.cur == a {
		if sync {
			return w.sync()
		}
		return nil
	}
	if w.f == nil {
		return w.create(a)
	}
	if _, err := w.f.WriteAt(encodeAnchorSlot(w.seq+1, a), int64((1-w.durSlot)*anchorSlotSize)); err != nil {
		return err
	}
	w.seq, w.cur, w.pending = w.seq+1, a, true
	if sync {
		return w.sync()
	}
	return nil
}

// sync fdatasyncs an anchor written without it.
func (w *anchorFile) sync() error {
	if !w.pending {
		return nil
	}
	if err := durable.Fdatasync(w.f); err != nil {
		return err
	}
	w.durSlot, w.pending = 1-w.durSlot, false
	return nil
}

func (w *anchorFile) create(a Anchor) (err error) {
	tmp := w.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	data := append(encodeAnchorSlot(1, a), make([]byte, anchorSlotSize)...)
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := os.Rename(tmp, w.path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(w.path)); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return err
		}
	}
	w.f, w.seq, w.durSlot, w.pending, w.cur, w.has = f, 1, 0, false, a, true
	return nil
}

func (w *anchorFile) close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// ChainBreak is an audit file whose tail does not match its anchor: lines
// were removed from the end, or the anchored line was edited or replaced.
type ChainBreak struct {
	Anchor Anchor // what the anchor recorded (the old head)
	Lines  int64  // complete lines the file holds now
	Reason string
}

func (b *ChainBreak) Error() string { return "audit chain broken at the tail: " + b.Reason }

// checkTail compares an audit file (f, size bytes of complete lines) with
// its anchor. It returns the lines the file holds, and a *ChainBreak when it
// does not hold the anchored line where the anchor says.
func checkTail(f io.ReaderAt, size int64, a *Anchor) (int64, *ChainBreak, error) {
	if a.Lines > 0 && size >= a.Size {
		line, err := lineEndingAt(f, a.Size)
		if err != nil {
			return 0, nil, err
		}
		if line != nil && sha256.Sum256(line) == a.Hash {
			after, err := countLines(f, a.Size, size)
			if err != nil {
				return 0, nil, err
			}
			return a.Lines + after, nil, nil
		}
	}
	n, err := countLines(f, 0, size)
	if err != nil || a.Lines == 0 {
		return n, nil, err
	}
	b := &ChainBreak{Anchor: *a, Lines: n}
	if n < a.Lines {
		b.Reason = fmt.Sprintf("the file holds %d lines where the anchor recorded %d: %d lines removed from the end", n, a.Lines, a.Lines-n)
	} else {
		b.Reason = fmt.Sprintf("line %d is not the line the anchor recorded (sha256 %.16s…): the tail was edited or replaced", a.Lines, hex.EncodeToString(a.Hash[:]))
	}
	return n, b, nil
}

// lineEndingAt returns the line whose newline is the byte before end
// (without the newline), or nil when that byte is no newline or the line is
// over 8 MiB.
func lineEndingAt(f io.ReaderAt, end int64) ([]byte, error) {
	const maxLine = 8 << 20
	start := max(end-maxLine-1, 0)
	buf := make([]byte, end-start)
	if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
		return nil, err
	}
	if len(buf) == 0 || buf[len(buf)-1] != '\n' {
		return nil, nil
	}
	buf = buf[:len(buf)-1]
	i := bytes.LastIndexByte(buf, '\n')
	if i < 0 && start > 0 {
		return nil, nil
	}
	return buf[i+1:], nil
}

// countLines counts the newlines in f between from and to.
func countLines(f io.ReaderAt, from, to int64) (int64, error) {
	buf := make([]byte, 1<<20)
	var n int64
	for off := from; off < to; {
		chunk := buf[:min(int64(len(buf)), to-off)]
		k, err := f.ReadAt(chunk, off)
		n += int64(bytes.Count(chunk[:k], []byte{'\n'}))
		off += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	return n, nil
}

// Inspection is what Inspect found at the tail of an audit file.
type Inspection struct {
	Lines      int64       // complete lines
	TornTail   int64       // bytes of an incomplete last line OpenFile would cut off
	Break      *ChainBreak // the tail does not match the anchor: OpenFile would record a chain break
	Unanchored bool        // lines but no anchor
}

// Inspect reads an audit file and its anchor without writing anything and
// tells what OpenFile would find (config check runs it beside the daemon).
// A missing file is an empty one.
func Inspect(path string) (*Inspection, error) {
	anchor, aerr := ReadAnchor(path)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	in := &Inspection{}
	var size int64
	if f != nil {
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		size = st.Size()
		if size > 0 {
			last, err := lastNewline(f, size)
			if err != nil {
				return nil, fmt.Errorf("audit %s: %w", path, err)
			}
			in.TornTail, size = size-last, last
		}
	}
	var rdr io.ReaderAt = bytes.NewReader(nil)
	if f != nil {
		rdr = f
	}
	in.Lines, in.Break, in.Unanchored, err = tailState(rdr, size, anchor, aerr)
	if err != nil {
		return nil, fmt.Errorf("audit %s: %w", path, err)
	}
	return in, nil
}

// lastNewline returns the offset just after the last newline of the size
// bytes of f (0 when there is none in the last 8 MiB).
func lastNewline(f io.ReaderAt, size int64) (int64, error) {
	const window = 8 << 20
	start := max(size-window, 0)
	buf := make([]byte, size-start)
	if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
		return 0, err
	}
	return start + int64(bytes.LastIndexByte(buf, '\n')+1), nil
}

// tailState counts the lines of an audit file (f, size bytes of complete
// lines) and compares its tail with its anchor (anchor, or aerr when the
// anchor could not be read; neither: no anchor).
func tailState(f io.ReaderAt, size int64, anchor *Anchor, aerr error) (lines int64, brk *ChainBreak, unanchored bool, err error) {
	switch {
	case aerr != nil:
		n, err := countLines(f, 0, size)
		if err != nil {
			return 0, nil, false, err
		}
		return n, &ChainBreak{Lines: n, Reason: fmt.Sprintf("the anchor is unreadable (%v): the tail cannot be vouched for", aerr)}, false, nil
	case anchor == nil:
		n, err := countLines(f, 0, size)
		return n, nil, n > 0, err
	default:
		n, brk, err := checkTail(f, size, anchor)
		return n, brk, false, err
	}
}
