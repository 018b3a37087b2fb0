package audit

import (
	"bytes"
	"os"
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

// Writes left unsynced (audit_sync: always) never touch the slot holding
// the anchor last made durable: a power loss before the next sync can spoil
// only the other one.
func TestAnchorFile_UnsyncedWritesSpareTheDurableSlot(t *testing.T) {
	path := t.TempDir() + "/a.anchor"
	w := &anchorFile{path: path}
	if err := w.write(Anchor{Lines: 1, Size: 10}, true); err != nil {
		t.Fatal(err)
	}
	durable := func() []byte {
		data, _ := os.ReadFile(path)
		return data[w.durSlot*anchorSlotSize : (w.durSlot+1)*anchorSlotSize]
	}
	before := bytes.Clone(durable())
	for i := int64(2); i <= 4; i++ {
		if err := w.write(Anchor{Lines: i, Size: 10 * i}, false); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(durable(), before) {
			t.Fatalf("unsynced write %d changed the durable slot", i)
		}
	}
	if err := w.sync(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if a, _, slot, err := decodeAnchor(data); err != nil || a.Lines != 4 || slot != w.durSlot {
		t.Fatalf("after sync: %+v slot %d (durable %d) %v", a, slot, w.durSlot, err)
	}
	w.close()
}
