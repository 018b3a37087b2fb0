package audit

import (
	"bytes"
	"testing"
)

// FuzzDecodeAnchor: an anchor file is read from disk, where anyone who
// can write the log directory can put anything. Decoding never panics,
// accepts only slots whose checksum holds, and what it accepts encodes
// back to the same slot.
func FuzzDecodeAnchor(f *testing.F) {
	good := encodeAnchorSlot(7, Anchor{Lines: 3, Size: 900, Hash: [32]byte{1, 2, 3}})
	f.Add(good)
	f.Add(append(append([]byte{}, good...), encodeAnchorSlot(8, Anchor{Lines: 4, Size: 1200})...))
	f.Add(append(make([]byte, anchorSlotSize), good...))
	f.Add([]byte("KWANCHR1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, seq, slot, err := decodeAnchor(data)
		if err != nil {
			return
		}
		if a.Lines > a.Size || a.Lines < 0 {
			t.Fatalf("accepted %+v", a)
		}
		got := data[slot*anchorSlotSize : (slot+1)*anchorSlotSize]
		if !bytes.Equal(encodeAnchorSlot(seq, a), got) {
			t.Fatalf("slot %d decodes to %+v seq %d, which encodes differently", slot, a, seq)
		}
	})
}
