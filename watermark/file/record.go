package file

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/keyward/keyward/watermark"
)

// On-disk layout. Each ID has one mark file, named from a hash of the ID so
// that no key or chain string can reach outside the directory:
//
//	wm-<64 hex>.mark   the durable mark (written temp, fsync, rename, fsync dir)
//	wm-<64 hex>.sig    the signature produced for that mark (best effort, no fsync)
//	wm-<64 hex>.tmp    a mark being written, or the previous mark swapped out
//	                   by the last write; never read, removed at open
//	.lock              flock held while a process has the store open
//
// A mark file is one JSON line followed by a line "sha256:<hex of the JSON
// line>". The JSON names the ID in full, so the file name is only an index.
const (
	recordVersion = 1
	namePrefix    = "wm-"
	markSuffix    = ".mark"
	sigSuffix     = ".sig"
	tmpSuffix     = ".tmp"
	lockName      = ".lock"
	probePrefix   = ".probe-"
	sumPrefix     = "sha256:"
	maxRecordSize = 1 << 16
)

// ErrCorrupt: a file in the watermark directory cannot be trusted; Open
// refuses to start rather than forget a mark. Fix or remove the file by hand.
var ErrCorrupt = errors.New("corrupt watermark record")

// record is the JSON body of a mark or signature file.
type record struct {
	V         int       `json:"v"`
	ID        idJSON    `json:"id"`
	Level     int64     `json:"level"`
	Round     int64     `json:"round"`
	Digest    hexBytes  `json:"digest"`
	Signature *hexBytes `json:"signature,omitempty"`
}

type idJSON struct {
	Key   string `json:"key"`
	Chain string `json:"chain"`
	Kind  byte   `json:"kind"`
}

// hexBytes is a byte slice written as a hex string (readable by operators).
type hexBytes []byte

func (h hexBytes) MarshalJSON() ([]byte, error) { return json.Marshal(hex.EncodeToString(h)) }

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// baseName is the file name stem for id: "wm-" and the hex SHA-256 of a
// length-prefixed encoding of the ID (unambiguous, fixed length, no path
// characters whatever the key or chain contains).
func baseName(id watermark.ID) string {
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(id.Key)))
	b = append(b, id.Key...)
	b = binary.AppendUvarint(b, uint64(len(id.Chain)))
	b = append(b, id.Chain...)
	b = append(b, id.Kind)
	sum := sha256.Sum256(b)
	return namePrefix + hex.EncodeToString(sum[:])
}

// encodeRecord returns the file contents for id and m. When withSig is false
// the signature is left out (mark files written by Advance carry none).
func encodeRecord(id watermark.ID, m watermark.Mark, withSig bool) []byte {
	// Hand-written for the hot path; the output is exactly what
	// json.Marshal(record{...}) produces (a test checks), which decodeRecord
	// reads back strictly.
	body := make([]byte, 0, 256+2*len(m.Signature))
	body = append(body, `{"v":`...)
	body = strconv.AppendInt(body, recordVersion, 10)
	body = append(body, `,"id":{"key":`...)
	body = appendJSONString(body, id.Key)
	body = append(body, `,"chain":`...)
	body = appendJSONString(body, id.Chain)
	body = append(body, `,"kind":`...)
	body = strconv.AppendUint(body, uint64(id.Kind), 10)
	body = append(body, `},"level":`...)
	body = strconv.AppendInt(body, m.Level, 10)
	body = append(body, `,"round":`...)
	body = strconv.AppendInt(body, m.Round, 10)
	body = append(body, `,"digest":"`...)
	body = hex.AppendEncode(body, m.Digest)
	body = append(body, '"')
	if withSig && len(m.Signature) > 0 {
		body = append(body, `,"signature":"`...)
		body = hex.AppendEncode(body, m.Signature)
		body = append(body, '"')
	}
	body = append(body, '}')
	sum := sha256.Sum256(body)
	out := make([]byte, 0, len(body)+len(sumPrefix)+2*len(sum)+2)
	out = append(out, body...)
	out = append(out, '\n')
	out = append(out, sumPrefix...)
	out = hex.AppendEncode(out, sum[:])
	out = append(out, '\n')
	return out
}

// appendJSONString appends s as a JSON string, as encoding/json writes it.
func appendJSONString(b []byte, s string) []byte {
	simple := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			simple = false
			break
		}
	}
	if simple {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	q, err := json.Marshal(s)
	if err != nil {
		panic(err) // a string always marshals
	}
	return append(b, q...)
}

// decodeRecord parses file contents written by encodeRecord. Anything else
// (a bad checksum, unknown fields, trailing bytes, another version) is
// ErrCorrupt.
func decodeRecord(data []byte) (watermark.ID, watermark.Mark, error) {
	var id watermark.ID
	var m watermark.Mark
	if len(data) > maxRecordSize {
		return id, m, fmt.Errorf("%w: %d bytes", ErrCorrupt, len(data))
	}
	body, rest, ok := bytes.Cut(data, []byte{'\n'})
	if !ok {
		return id, m, fmt.Errorf("%w: no checksum line", ErrCorrupt)
	}
	want := sha256.Sum256(body)
	line := append([]byte(sumPrefix), hex.AppendEncode(nil, want[:])...)
	line = append(line, '\n')
	if !bytes.Equal(rest, line) {
		return id, m, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var r record
	if err := dec.Decode(&r); err != nil {
		return id, m, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return id, m, fmt.Errorf("%w: trailing data", ErrCorrupt)
	}
	if r.V != recordVersion {
		return id, m, fmt.Errorf("%w: version %d", ErrCorrupt, r.V)
	}
	id = watermark.ID(r.ID)
	m = watermark.Mark{Level: r.Level, Round: r.Round, Digest: []byte(r.Digest)}
	if r.Signature != nil {
		m.Signature = []byte(*r.Signature)
	}
	return id, cloneMark(m), nil
}

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
