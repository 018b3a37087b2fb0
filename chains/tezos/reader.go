package tezos

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
)

// reader reads Octez binary encodings (Data_encoding) from a payload. The
// first failure is kept in err and every later read returns zero values, so
// decoders can read a whole structure and check err once. It never panics:
// every read is bounds-checked against end, the limit of the innermost
// length-prefixed field being read.
type reader struct {
	b   []byte
	off int
	end int
	err error
	// tallinn reads dal_entrapment_evidence in Tallinn's layout (no
	// lag_index); entrapment records that one was read.
	tallinn, entrapment bool
}

func newReader(b []byte) *reader { return &reader{b: b, end: len(b)} }

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s at offset %d", ErrMalformed, fmt.Sprintf(format, args...), r.off)
	}
}

func (r *reader) ok() bool { return r.err == nil }

// left is the number of bytes before the current limit.
func (r *reader) left() int { return r.end - r.off }

func (r *reader) need(n int, what string) bool {
	if r.err != nil {
		return false
	}
	if n < 0 || r.end-r.off < n {
		r.fail("truncated %s (need %d bytes, have %d)", what, n, r.end-r.off)
		return false
	}
	return true
}

func (r *reader) bytes(n int, what string) []byte {
	if !r.need(n, what) {
		return nil
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b
}

func (r *reader) skip(n int, what string) { r.bytes(n, what) }

func (r *reader) u8(what string) byte {
	if !r.need(1, what) {
		return 0
	}
	v := r.b[r.off]
	r.off++
	return v
}

func (r *reader) u16(what string) uint16 {
	if !r.need(2, what) {
		return 0
	}
	v := binary.BigEndian.Uint16(r.b[r.off:])
	r.off += 2
	return v
}

func (r *reader) i32(what string) int32 {
	if !r.need(4, what) {
		return 0
	}
	v := int32(binary.BigEndian.Uint32(r.b[r.off:]))
	r.off += 4
	return v
}

func (r *reader) i64(what string) int64 {
	if !r.need(8, what) {
		return 0
	}
	v := int64(binary.BigEndian.Uint64(r.b[r.off:]))
	r.off += 8
	return v
}

// int31 reads Data_encoding's int31: a 4-byte signed integer in [-2^30, 2^30-1].
func (r *reader) int31(what string) int32 {
	v := r.i32(what)
	if r.ok() && (v < -(1<<30) || v > 1<<30-1) {
		r.off -= 4
		r.fail("%s %d out of int31 range", what, v)
	}
	return v
}

// bool reads a Data_encoding boolean: 0x00 or 0xff.
func (r *reader) bool(what string) bool {
	v := r.u8(what)
	switch v {
	case 0x00:
		return false
	case 0xff:
		return true
	}
	r.off--
	r.fail("invalid boolean 0x%02x for %s", v, what)
	return false
}

// dynLen reads the 4-byte length ("unsigned 30-bit") of a dynamic field and
// checks the field fits.
func (r *reader) dynLen(what string) int {
	if !r.need(4, what+" length") {
		return 0
	}
	n := binary.BigEndian.Uint32(r.b[r.off:])
	if n > 1<<30-1 {
		r.fail("%s length %d out of range", what, n)
		return 0
	}
	r.off += 4
	if int(n) > r.end-r.off {
		r.off -= 4
		r.fail("%s length %d exceeds the %d bytes left", what, n, r.end-r.off-4)
		return 0
	}
	return int(n)
}

// dynBytes reads a 4-byte length then that many bytes.
func (r *reader) dynBytes(what string) []byte {
	n := r.dynLen(what)
	return r.bytes(n, what)
}

// enter limits reads to the next n bytes (a length-prefixed field) and
// returns the previous limit for leave.
func (r *reader) enter(n int) int {
	prev := r.end
	if r.err == nil {
		r.end = r.off + n
	}
	return prev
}

// leave checks the field was consumed exactly and restores the limit.
func (r *reader) leave(prev int, what string) {
	if r.err == nil && r.off != r.end {
		r.fail("%d unexpected bytes at the end of %s", r.end-r.off, what)
	}
	if r.err == nil {
		r.end = prev
	}
}

// dyn runs f on a field prefixed by its 4-byte length.
func (r *reader) dyn(what string, f func()) {
	n := r.dynLen(what)
	if !r.ok() {
		return
	}
	prev := r.enter(n)
	f()
	r.leave(prev, what)
}

// zarith reads an n (natural, signed=false) or z (integer, signed=true)
// Zarith number. With want set it returns the value as a *big.Int (nil
// otherwise, without allocating). Like Data_encoding it refuses a trailing
// zero byte.
func (r *reader) zarith(what string, signed, want bool) *big.Int {
	if r.err != nil {
		return nil
	}
	start := r.off
	i := r.off
	for {
		if i >= r.end {
			r.fail("truncated %s", what)
			return nil
		}
		c := r.b[i]
		i++
		if c&0x80 == 0 {
			if c == 0 && i-start > 1 {
				r.fail("trailing zero byte in %s", what)
				return nil
			}
			break
		}
	}
	raw := r.b[start:i]
	r.off = i
	if !want {
		return nil
	}
	return zarithValue(raw, signed)
}

// mutez reads a Tez amount: a Zarith natural that, as in Octez's Tez_repr,
// must fit a signed 64-bit integer.
func (r *reader) mutez(what string) *big.Int {
	start := r.off
	v := r.zarith(what, false, true)
	if r.ok() && !v.IsInt64() {
		r.off = start
		r.fail("%s above %d mutez", what, int64(math.MaxInt64))
		return nil
	}
	return v
}

func zarithValue(raw []byte, signed bool) *big.Int {
	neg := signed && raw[0]&0x40 != 0
	first := 7
	if signed {
		first = 6
	}
	nbits := first + 7*(len(raw)-1)
	if nbits <= 64 {
		var v uint64
		shift := uint(0)
		for k, c := range raw {
			if k == 0 {
				v = uint64(c) & (1<<first - 1)
				shift = uint(first)
				continue
			}
			v |= uint64(c&0x7f) << shift
			shift += 7
		}
		z := new(big.Int).SetUint64(v)
		if neg {
			z.Neg(z)
		}
		return z
	}
	// Long number: gather the bits little-endian, then reverse for SetBytes.
	out := make([]byte, (nbits+7)/8)
	var acc uint
	var accBits uint
	pos := 0
	push := func(bits uint, n uint) {
		acc |= bits << accBits
		accBits += n
		for accBits >= 8 {
			out[pos] = byte(acc)
			pos++
			acc >>= 8
			accBits -= 8
		}
	}
	for k, c := range raw {
		if k == 0 {
			push(uint(c)&(1<<first-1), uint(first))
			continue
		}
		push(uint(c&0x7f), 7)
	}
	if accBits > 0 {
		out[pos] = byte(acc)
	}
	for a, b := 0, len(out)-1; a < b; a, b = a+1, b-1 {
		out[a], out[b] = out[b], out[a]
	}
	z := new(big.Int).SetBytes(out)
	if neg {
		z.Neg(z)
	}
	return z
}
