package file

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/keyward/keyward/limits/internal/ledger"
)

// A budget file holds two slots of the same size (a multiple of pageSize).
// Each slot is
//
//	"KWL1" | seq (8 bytes, big endian) | n (4 bytes) | SHA-256 of seq ‖ n ‖ body (32 bytes) | body (n bytes of ledger JSON) | zeros
//
// and the state is the body of the valid slot with the highest seq. A new
// state is written over the other slot, then fdatasync: a write torn by a
// crash spoils only that slot, and the Debit that wrote it had not
// returned, so nothing was signed for it.
const (
	slotMagic  = "KWL1"
	slotHeader = 4 + 8 + 4 + sha256.Size
	pageSize   = 4096
)

func slotSum(seq uint64, body []byte) [sha256.Size]byte {
	h := sha256.New()
	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], seq)
	binary.BigEndian.PutUint32(b[8:], uint32(len(body)))
	h.Write(b[:])
	h.Write(body)
	return [sha256.Size]byte(h.Sum(nil))
}

// encodeSlot returns a slot of size bytes holding body at seq; body must fit.
func encodeSlot(seq uint64, body []byte, size int) []byte {
	out := make([]byte, size)
	copy(out, slotMagic)
	binary.BigEndian.PutUint64(out[4:], seq)
	binary.BigEndian.PutUint32(out[12:], uint32(len(body)))
	sum := slotSum(seq, body)
	copy(out[16:], sum[:])
	copy(out[slotHeader:], body)
	return out
}

// slotSizeFor is the slot size of a new file for body: room for it to
// double, in whole pages.
func slotSizeFor(body []byte) int {
	n := 2 * (slotHeader + len(body))
	return (n + pageSize - 1) / pageSize * pageSize
}

// decodeSlots returns the state of a budget file, its seq, the slot that
// holds it and the slot size.
func decodeSlots(data []byte) (st *ledger.State, seq uint64, slot, size int, err error) {
	size = len(data) / 2
	if len(data) == 0 || len(data)%(2*pageSize) != 0 {
		return nil, 0, 0, 0, fmt.Errorf("%w: file of %d bytes is not two slots", ErrCorrupt, len(data))
	}
	found := false
	var body []byte
	for i := 0; i < 2; i++ {
		s := data[i*size : (i+1)*size]
		if !bytes.Equal(s[:4], []byte(slotMagic)) {
			continue
		}
		q := binary.BigEndian.Uint64(s[4:])
		n := int(binary.BigEndian.Uint32(s[12:]))
		if n > size-slotHeader {
			continue
		}
		b := s[slotHeader : slotHeader+n]
		if sum := slotSum(q, b); !bytes.Equal(sum[:], s[16:slotHeader]) {
			continue
		}
		if !found || q > seq {
			found, seq, slot, body = true, q, i, b
		}
	}
	if !found {
		return nil, 0, 0, 0, fmt.Errorf("%w: no slot with a valid checksum", ErrCorrupt)
	}
	if st, err = ledger.Unmarshal(body); err != nil {
		return nil, 0, 0, 0, err
	}
	return st, seq, slot, size, nil
}
