package tezos

import (
	"crypto/sha256"
	"errors"
	"fmt"
)

// Base58check prefixes (Octez src/lib_crypto/base58.ml). The data length each
// one encodes is given in the comment.
var (
	PrefixTz1 = []byte{6, 161, 159} // tz1, 20: Ed25519 public key hash
	PrefixTz2 = []byte{6, 161, 161} // tz2, 20: secp256k1 public key hash
	PrefixTz3 = []byte{6, 161, 164} // tz3, 20: P-256 public key hash
	PrefixTz4 = []byte{6, 161, 166} // tz4, 20: BLS12-381 public key hash
	PrefixTz5 = []byte{6, 161, 169} // tz5, 20: ML-DSA-44 public key hash (Ushuaia)
	PrefixKT1 = []byte{2, 90, 121}  // KT1, 20: originated contract
	PrefixSr1 = []byte{6, 124, 117} // sr1, 20: smart rollup address

	PrefixEdpk = []byte{13, 15, 37, 217}  // edpk, 32
	PrefixSppk = []byte{3, 254, 226, 86}  // sppk, 33
	PrefixP2pk = []byte{3, 178, 139, 127} // p2pk, 33
	PrefixBLpk = []byte{6, 149, 135, 204} // BLpk, 48
	PrefixMdpk = []byte{13, 7, 237, 67}   // mdpk, 1312: ML-DSA-44 public key (Ushuaia)

	PrefixEdsig  = []byte{9, 245, 205, 134, 18} // edsig, 64
	PrefixSpsig1 = []byte{13, 115, 101, 19, 63} // spsig1, 64
	PrefixP2sig  = []byte{54, 240, 44, 52}      // p2sig, 64
	PrefixSig    = []byte{4, 130, 43}           // sig, 64 (generic)
	PrefixBLsig  = []byte{40, 171, 64, 207}     // BLsig, 96

	PrefixEdsk32 = []byte{13, 15, 58, 7}     // edsk, 32: Ed25519 seed
	PrefixEdsk64 = []byte{43, 246, 78, 7}    // edsk, 64: Ed25519 seed ‖ public key
	PrefixSpsk   = []byte{17, 162, 224, 201} // spsk, 32
	PrefixP2sk   = []byte{16, 81, 238, 189}  // p2sk, 32
	PrefixBLsk   = []byte{3, 150, 192, 40}   // BLsk, 32: BLS12-381 scalar, little-endian

	PrefixEdesk = []byte{7, 90, 60, 179, 41}    // edesk, 56: encrypted Ed25519 seed
	PrefixSpesk = []byte{9, 237, 241, 174, 150} // spesk, 56: encrypted secp256k1 key
	PrefixP2esk = []byte{9, 48, 57, 115, 171}   // p2esk, 56: encrypted P-256 key
	PrefixBLesk = []byte{2, 5, 30, 53, 25}      // BLesk, 56: encrypted BLS12-381 key

	PrefixNet      = []byte{87, 82, 0}      // Net, 4: chain id
	PrefixBlock    = []byte{1, 52}          // B, 32: block hash
	PrefixOp       = []byte{5, 116}         // o, 32: operation hash
	PrefixProtocol = []byte{2, 170}         // P, 32: protocol hash
	PrefixPayload  = []byte{1, 106, 242}    // vh, 32: block payload hash
	PrefixExpr     = []byte{13, 44, 64, 27} // expr, 32: script expression hash
)

// ErrBase58 is returned for any base58check decoding failure.
var ErrBase58 = errors.New("invalid base58check string")

const b58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

var b58Index = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(b58Alphabet); i++ {
		t[b58Alphabet[i]] = int8(i)
	}
	return t
}()

// B58Encode returns the base58check encoding of prefix ‖ data ‖ checksum,
// the checksum being the first 4 bytes of SHA-256(SHA-256(prefix ‖ data)).
func B58Encode(prefix []byte, data []byte) string {
	var stack [128]byte
	n := len(prefix) + len(data) + 4
	buf := stack[:0]
	if n > len(stack) {
		buf = make([]byte, 0, n)
	}
	buf = append(buf, prefix...)
	buf = append(buf, data...)
	h := sha256.Sum256(buf)
	h = sha256.Sum256(h[:])
	buf = append(buf, h[:4]...)
	return b58(buf)
}

// b58base is 58^5, the largest power of 58 below 2^32: the conversion works
// on limbs of five base58 digits.
const b58base = 58 * 58 * 58 * 58 * 58

func b58(in []byte) string {
	zeros := 0
	for zeros < len(in) && in[zeros] == 0 {
		zeros++
	}
	rest := in[zeros:]
	// Little-endian limbs in base 58^5; 8/log2(58^5) ≈ 0.2731 limbs per byte.
	var limbStack [48]uint32
	limbs := limbStack[:0]
	if need := len(rest)*2731/10000 + 2; need > len(limbStack) {
		limbs = make([]uint32, 0, need)
	}
	for _, b := range rest {
		carry := uint64(b)
		for i := range limbs {
			x := uint64(limbs[i])<<8 | carry
			limbs[i] = uint32(x % b58base)
			carry = x / b58base
		}
		for carry > 0 {
			limbs = append(limbs, uint32(carry%b58base))
			carry /= b58base
		}
	}
	var outStack [256]byte
	out := outStack[:0]
	if need := zeros + 5*len(limbs); need > len(outStack) {
		out = make([]byte, 0, need)
	}
	for k := 0; k < zeros; k++ {
		out = append(out, '1')
	}
	// Most significant limb first, without its leading zero digits.
	for i := len(limbs) - 1; i >= 0; i-- {
		v := limbs[i]
		var d [5]byte
		for j := 4; j >= 0; j-- {
			d[j] = b58Alphabet[v%58]
			v /= 58
		}
		if i == len(limbs)-1 {
			k := 0
			for k < 4 && d[k] == '1' {
				k++
			}
			out = append(out, d[k:]...)
			continue
		}
		out = append(out, d[:]...)
	}
	return string(out)
}

// maxB58Len bounds the strings B58Decode accepts; no Tezos value is longer.
const maxB58Len = 256

func unb58(s string) ([]byte, error) {
	if len(s) > maxB58Len {
		return nil, fmt.Errorf("%w: %d characters is too long", ErrBase58, len(s))
	}
	zeros := 0
	for zeros < len(s) && s[zeros] == '1' {
		zeros++
	}
	// log(58)/log(256) ≈ 0.733
	size := (len(s)-zeros)*733/1000 + 1
	out := make([]byte, size)
	high := size - 1
	for i := zeros; i < len(s); i++ {
		v := b58Index[s[i]]
		if v < 0 {
			return nil, fmt.Errorf("%w: bad character %q at %d", ErrBase58, s[i], i)
		}
		carry := int(v)
		j := size - 1
		for ; j > high || carry != 0; j-- {
			carry += 58 * int(out[j])
			out[j] = byte(carry)
			carry >>= 8
		}
		high = j
	}
	i := 0
	for i < size && out[i] == 0 {
		i++
	}
	res := make([]byte, zeros+size-i)
	copy(res[zeros:], out[i:])
	clear(out) // secret keys pass through here too
	return res, nil
}

// B58Decode decodes a base58check string, checks its checksum and that it
// starts with prefix and carries exactly dataLen bytes (any length when
// dataLen < 0), and returns the data without the prefix.
func B58Decode(s string, prefix []byte, dataLen int) ([]byte, error) {
	raw, err := unb58(s)
	if err != nil {
		return nil, err
	}
	if len(raw) < 4 {
		return nil, fmt.Errorf("%w: too short", ErrBase58)
	}
	body, sum := raw[:len(raw)-4], raw[len(raw)-4:]
	h := sha256.Sum256(body)
	h = sha256.Sum256(h[:])
	if h[0] != sum[0] || h[1] != sum[1] || h[2] != sum[2] || h[3] != sum[3] {
		return nil, fmt.Errorf("%w: bad checksum", ErrBase58)
	}
	if len(body) < len(prefix) || string(body[:len(prefix)]) != string(prefix) {
		return nil, fmt.Errorf("%w: wrong prefix", ErrBase58)
	}
	data := body[len(prefix):]
	if dataLen >= 0 && len(data) != dataLen {
		return nil, fmt.Errorf("%w: %d data bytes, want %d", ErrBase58, len(data), dataLen)
	}
	return data, nil
}
