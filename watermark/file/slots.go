package file

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/keyward/keyward/internal/durable"
	"github.com/keyward/keyward/watermark"
)

// The two-slot mark file: its encoding, and writeMark, the durable write
// every mark change goes through.

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

// writeMark makes rec (an encoded mark record) the durable mark of e. The
// caller holds e's turn. Every failure wraps ErrUnavailable and leaves e's
// slot state as it was.
//
// A mark file in the two-slot format is written in place: the slot that does
// not hold the current mark gets rec with the next sequence number, then one
// fdatasync. The first mark of an ID (or a file in the older single-record
// format) is written as a whole new slot file. Either way the write goes
// through durable.Dir.WriteSlot; when the mark file exists its replacement
// is an exchange where available, and the previous file left under the temp
// name is never read back (Open removes temp files).
func (s *Store) writeMark(e *entry, rec []byte) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w: %w", watermark.ErrUnavailable, err)
		}
	}()
	slotData, err := encodeSlot(e.slots.Seq+1, rec)
	if err != nil {
		// A record too large for a slot (an ID with a very long key, only
		// reachable through import): the whole-file single-record format.
		if err := s.d.Replace(e.base+markSuffix, e.base+tmpSuffix, rec, e.exists); err != nil {
			return err
		}
		e.slots = durable.Slots{}
		return nil
	}
	return s.d.WriteSlot(e.base+markSuffix, e.base+tmpSuffix, &e.slots, slotData, e.exists)
}
