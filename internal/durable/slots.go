package durable

// A two-slot file holds two slots of the same size, each an encoded record
// with a write sequence number and a checksum (the encoding is the store's).
// A new record goes over the slot that does not hold the current one, in
// place, followed by one fdatasync: a crash mid-write can only tear the slot
// being written, whose write had not returned, and the reader takes the
// valid slot with the highest sequence number.

// Slots is where a two-slot file stands. Only the writer of the file (the
// holder of its turn) touches it.
type Slots struct {
	Size  int    // bytes per slot; 0 while there is no two-slot file
	Seq   uint64 // sequence number of the current record
	Index int    // slot (0 or 1) holding the current record
}

// WriteSlot makes slot, one slot encoded with sequence number s.Seq+1, the
// durable record of the file name, and moves s on only once it is. When the
// file's slots are len(slot) bytes it is written in place over the other
// slot (WriteAt); otherwise (no file yet, another format, a record that
// outgrew its slots) name becomes a new file of two slots of len(slot)
// bytes, slot first and zeros after (Replace, with swap as there). A
// failure leaves s as it was.
func (d *Dir) WriteSlot(name, tmp string, s *Slots, slot []byte, swap bool) error {
	size := len(slot)
	if s.Size == size {
		other := 1 - s.Index
		if err := d.WriteAt(name, slot, int64(other*size)); err != nil {
			return err
		}
		s.Seq, s.Index = s.Seq+1, other
		return nil
	}
	file := make([]byte, 2*size)
	copy(file, slot)
	if err := d.Replace(name, tmp, file, swap); err != nil {
		return err
	}
	*s = Slots{Size: size, Seq: s.Seq + 1}
	return nil
}
