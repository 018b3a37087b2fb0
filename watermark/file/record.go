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
//	wm-<64 hex>.mark   the durable mark: two slots written in place (slots.go),
//	                   created by temp, fsync, rename, fsync dir
//	wm-<64 hex>.sig    the signature produced for that mark (best effort, no fsync)
//	wm-<64 hex>.tmp    a mark being written, or the previous mark swapped out
//	                   by the last write; never read, removed at open
//	.lock              flock held while a process has the store open
//
// A record (a slot's payload, a .sig file, or a whole mark file in the older
// single-record format) is one JSON line followed by a line "sha256:<hex of
// the JSON line>". The JSON names the ID in full, so the file name is only an
// index.
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

// Errors. Check with errors.Is.
var (
	// ErrCorrupt: a file in the watermark directory cannot be trusted; Open
	// refuses to start rather than forget a mark. Fix or remove the file by
	// hand.
	ErrCorrupt = errors.New("corrupt watermark record")
	// ErrLocked: another process (or another Store in this process) has the
	// directory open. Two writers would each trust their own cached marks.
	ErrLocked = errors.New("watermark directory in use by another process")
)

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
