package file

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/keyward/keyward/watermark"
)

// The two-slot mark file: its encoding, and writeMark and replaceFile, the
// durable writes every mark change goes through.

// Slot format. Once an ID's mark file has been written by this version it is
// exactly slotFileSize bytes: two fixed slots, each holding a mark record
// with a write sequence number and a checksum over both. A write goes to the
// slot that does not hold the current mark, in place, followed by one
// fdatasync: the file never changes size, so no inode, block or directory
// update is needed and the write costs one flush. A crash mid-write can only
// tear the slot being written (the other slot's bytes are unchanged in every
// sector), and that write had not returned, so nothing was signed for it;
// load then takes the valid slot with the highest sequence number.
const (
	slotSize     = 2048
	slotFileSize = 2 * slotSize
	slotMagic    = "keyward-slot "
	slotSumTag   = "slotsum:"
)

// encodeSlot returns one slot: "keyward-slot <seq>\n" + record +
// "slotsum:<sha256 of the preceding bytes>\n", zero-padded to slotSize.
func encodeSlot(seq uint64, rec []byte) ([]byte, error) {
	out := make([]byte, 0, slotSize)
	out = append(out, slotMagic...)
	out = fmt.Appendf(out, "%d\n", seq)
	out = append(out, rec...)
	sum := sha256.Sum256(out)
	out = append(out, slotSumTag...)
	out = hex.AppendEncode(out, sum[:])
	out = append(out, '\n')
	if len(out) > slotSize {
		return nil, fmt.Errorf("mark record of %d bytes does not fit a %d-byte slot", len(out), slotSize)
	}
	return out[:slotSize], nil
}

// decodeSlot parses one slot. An all-zero slot (never written) returns
// ok=false without error; anything else that does not parse is an error.
func decodeSlot(b []byte) (id watermark.ID, m watermark.Mark, seq uint64, ok bool, err error) {
	body := bytes.TrimRight(b, "\x00")
	if len(body) == 0 {
		return id, m, 0, false, nil
	}
	i := bytes.LastIndex(body, []byte(slotSumTag))
	if i < 0 || !bytes.HasPrefix(body, []byte(slotMagic)) {
		return id, m, 0, false, fmt.Errorf("%w: slot without header or checksum", ErrCorrupt)
	}
	signed, tail := body[:i], body[i+len(slotSumTag):]
	sum := sha256.Sum256(signed)
	if !bytes.Equal(tail, append(hex.AppendEncode(nil, sum[:]), '\n')) {
		return id, m, 0, false, fmt.Errorf("%w: slot checksum mismatch", ErrCorrupt)
	}
	header, rec, found := bytes.Cut(signed[len(slotMagic):], []byte{'\n'})
	if !found {
		return id, m, 0, false, fmt.Errorf("%w: slot header", ErrCorrupt)
	}
	if _, err := fmt.Sscanf(string(header), "%d", &seq); err != nil || fmt.Sprint(seq) != string(header) {
		return id, m, 0, false, fmt.Errorf("%w: slot sequence %q", ErrCorrupt, header)
	}
	id, m, err = decodeRecord(rec)
	if err != nil {
		return id, m, 0, false, err
	}
	return id, m, seq, true, nil
}

// decodeSlotFile reads a slot-format mark file and returns the valid slot
// with the highest sequence number. One torn slot is expected after a crash;
// no valid slot at all is ErrCorrupt.
func decodeSlotFile(data []byte) (id watermark.ID, m watermark.Mark, seq uint64, slot int, err error) {
	if len(data) != slotFileSize {
		return id, m, 0, 0, fmt.Errorf("%w: slot file of %d bytes", ErrCorrupt, len(data))
	}
	found := false
	var firstErr error
	for i := 0; i < 2; i++ {
		sid, sm, sseq, ok, serr := decodeSlot(data[i*slotSize : (i+1)*slotSize])
		if serr != nil {
			firstErr = serr
			continue
		}
		if !ok {
			continue
		}
		if found && sid != id {
			return id, m, 0, 0, fmt.Errorf("%w: slots name different IDs", ErrCorrupt)
		}
		if !found || sseq > seq {
			id, m, seq, slot = sid, sm, sseq, i
		}
		found = true
	}
	if !found {
		if firstErr == nil {
			firstErr = fmt.Errorf("%w: no valid slot", ErrCorrupt)
		}
		return id, m, 0, 0, firstErr
	}
	return id, m, seq, slot, nil
}

// isSlotFile tells the slot format from the single-record format.
func isSlotFile(data []byte) bool { return bytes.HasPrefix(data, []byte(slotMagic)) }

// errExchangeUnsupported: renameat2 RENAME_EXCHANGE is not available here.
var errExchangeUnsupported = errors.New("rename exchange unsupported")

// writeMark makes rec (an encoded mark record) the durable mark of e. The
// caller holds e's turn. Every failure wraps ErrUnavailable and leaves e's
// slot state as it was.
//
// A mark file in the two-slot format is written in place: the slot that does
// not hold the current mark gets rec with the next sequence number, then one
// fdatasync. The file is opened by path for every write, so a directory that
// was removed or replaced fails the write instead of writing into an
// unlinked inode.
//
// The first mark of an ID (or a file in the older single-record format) is
// written as a whole new slot file with replaceFile.
func (s *Store) writeMark(e *entry, rec []byte) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w: %w", watermark.ErrUnavailable, err)
		}
	}()
	seq := e.seq + 1
	slotData, err := encodeSlot(seq, rec)
	if err != nil {
		// A record too large for a slot (an ID with a very long key, only
		// reachable through import): the whole-file single-record format.
		if err := s.replaceFile(e.base, rec, e.exists); err != nil {
			return err
		}
		e.slots, e.seq, e.slot = false, 0, 0
		return nil
	}
	if e.slots && e.exists {
		other := 1 - e.slot
		if err := s.step("write"); err != nil {
			return err
		}
		f, err := os.OpenFile(filepath.Join(s.dir, e.base+markSuffix), os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		if _, err := f.WriteAt(slotData, int64(other*slotSize)); err != nil {
			f.Close()
			return err
		}
		if err := s.step("fsync"); err != nil {
			f.Close()
			return err
		}
		if err := fdatasync(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		e.seq, e.slot = seq, other
		return nil
	}
	file := make([]byte, slotFileSize)
	copy(file, slotData)
	if err := s.replaceFile(e.base, file, e.exists); err != nil {
		return err
	}
	e.slots, e.seq, e.slot = true, seq, 0
	return nil
}

// replaceFile makes data the durable contents of base+".mark": write
// base+".tmp", fsync it, rename it over the mark, fsync the directory. The
// caller holds the ID's turn, so the temp name is not shared.
//
// When the mark exists, the "rename" is an atomic exchange (Linux
// renameat2 RENAME_EXCHANGE) where available; the previous file left under
// the temp name is older than the mark file, and Open removes temp files, so
// it is never read back.
func (s *Store) replaceFile(base string, data []byte, markExists bool) (err error) {
	tmp := filepath.Join(s.dir, base+tmpSuffix)
	mark := filepath.Join(s.dir, base+markSuffix)
	if err := s.step("create"); err != nil {
		return err
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE, 0o600)
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
	xerr := errExchangeUnsupported
	if markExists && !s.noExchange.Load() {
		xerr = exchange(tmp, mark)
		if errors.Is(xerr, errExchangeUnsupported) {
			s.noExchange.Store(true)
		}
	}
	if xerr != nil {
		// No exchange (first mark for the ID, a platform or filesystem
		// without it, or the mark file vanished): a plain rename.
		if err := os.Rename(tmp, mark); err != nil {
			return err
		}
	}
	renamed = true
	// If the directory fsync fails the new mark may or may not survive a
	// crash; the caller leaves memory at the old mark and reports the store
	// unavailable. Nothing was signed for the new mark, so either outcome
	// on disk is safe.
	if err := s.step("dirsync"); err != nil {
		return err
	}
	if err := s.dirf.Sync(); err != nil {
		return &fs.PathError{Op: "fsync", Path: s.dir, Err: err}
	}
	return nil
}
