package local

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/nacl/secretbox"
	"golang.org/x/crypto/pbkdf2"

	"github.com/keyward/keyward/signer"
)

// Octez base58check prefixes of secret keys.
var (
	prefixEdSeed  = []byte{13, 15, 58, 7}         // edsk, 32-byte seed (54 chars)
	prefixEdSK    = []byte{43, 246, 78, 7}        // edsk, 64-byte seed||public key (98 chars)
	prefixSpSK    = []byte{17, 162, 224, 201}     // spsk
	prefixP2SK    = []byte{16, 81, 238, 189}      // p2sk
	prefixEdESK   = []byte{7, 90, 60, 179, 41}    // edesk
	prefixSpESK   = []byte{9, 237, 241, 174, 150} // spesk (Octez base58.ml; not 9,237,181,144,41)
	prefixP2ESK   = []byte{9, 48, 57, 115, 171}   // p2esk
	octezKDFIters = 32768
)

const (
	octezSaltLen      = 8
	octezEncryptedLen = octezSaltLen + secretbox.Overhead + 32
	maxSecretTextLen  = 256
)

// ParseSecret parses a secret key given as text:
//
//   - Octez secret keys: edsk… (32-byte seed or 64-byte seed||public key),
//     spsk…, p2sk…, optionally prefixed "unencrypted:";
//   - Octez encrypted keys: [encrypted:]edesk…, spesk…, p2esk… (PBKDF2-HMAC-
//     SHA512, 32768 iterations, 8-byte salt; NaCl secretbox, zero nonce);
//     passphrase is called only for these;
//   - a secp256k1 secret as 64 hex digits, with or without 0x.
//
// Errors wrap ErrBadSecret, ErrWrongPassphrase or ErrNoPassphrase and never
// contain the text.
func ParseSecret(text string, passphrase func() ([]byte, error)) (*PrivateKey, error) {
	s := strings.TrimSpace(text)
	if len(s) > maxSecretTextLen {
		return nil, fmt.Errorf("local: %w: text too long", ErrBadSecret)
	}
	wantEncrypted := 0 // 0 unknown, 1 encrypted, -1 unencrypted
	if rest, ok := strings.CutPrefix(s, "unencrypted:"); ok {
		s, wantEncrypted = rest, -1
	} else if rest, ok := strings.CutPrefix(s, "encrypted:"); ok {
		s, wantEncrypted = rest, 1
	}
	if h, ok := hexSecret(s); ok {
		if wantEncrypted == 1 {
			return nil, fmt.Errorf("local: %w: \"encrypted:\" given with a hex secret", ErrBadSecret)
		}
		defer zero(h)
		k, err := newPrivateKey(signer.Secp256k1, h)
		if err != nil {
			return nil, fmt.Errorf("local: %w", err)
		}
		return k, nil
	}
	raw, err := base58CheckDecode(s)
	if err != nil {
		return nil, fmt.Errorf("local: %w: not an Octez secret key (edsk…, spsk…, p2sk…, edesk…, spesk…, p2esk…) nor 64 hex digits: %v", ErrBadSecret, err)
	}
	defer zero(raw)
	type form struct {
		prefix    []byte
		curve     signer.Curve
		length    int
		encrypted bool
	}
	forms := []form{
		{prefixEdSeed, signer.Ed25519, 32, false},
		{prefixEdSK, signer.Ed25519, 64, false},
		{prefixSpSK, signer.Secp256k1, 32, false},
		{prefixP2SK, signer.P256, 32, false},
		{prefixEdESK, signer.Ed25519, octezEncryptedLen, true},
		{prefixSpESK, signer.Secp256k1, octezEncryptedLen, true},
		{prefixP2ESK, signer.P256, octezEncryptedLen, true},
	}
	for _, f := range forms {
		if len(raw) != len(f.prefix)+f.length || string(raw[:len(f.prefix)]) != string(f.prefix) {
			continue
		}
		body := raw[len(f.prefix):]
		if f.encrypted {
			if wantEncrypted == -1 {
				return nil, fmt.Errorf("local: %w: \"unencrypted:\" given with an encrypted key", ErrBadSecret)
			}
			return decryptOctez(f.curve, body, passphrase)
		}
		if wantEncrypted == 1 {
			return nil, fmt.Errorf("local: %w: \"encrypted:\" given with an unencrypted key", ErrBadSecret)
		}
		if f.length == 64 {
			return edFromLong(body)
		}
		k, err := newPrivateKey(f.curve, body)
		if err != nil {
			return nil, fmt.Errorf("local: %w", err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("local: %w: base58check data is not an Octez secret key (unknown prefix or length %d)", ErrBadSecret, len(raw))
}

// hexSecret decodes 64 hex digits with an optional 0x prefix.
func hexSecret(s string) ([]byte, bool) {
	if len(s) == 66 && (s[:2] == "0x" || s[:2] == "0X") {
		s = s[2:]
	}
	if len(s) != 64 {
		return nil, false
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, false
	}
	return b, true
}

// edFromLong accepts the 64-byte Ed25519 form (seed || public key) and checks
// that the public key half matches the seed.
func edFromLong(body []byte) (*PrivateKey, error) {
	k, err := newPrivateKey(signer.Ed25519, body[:32])
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	if string(k.pub.Bytes) != string(body[32:]) {
		k.Zero()
		return nil, fmt.Errorf("local: %w: 64-byte edsk: public key half does not match the seed", ErrBadSecret)
	}
	return k, nil
}

// decryptOctez decrypts an Octez encrypted secret key body: salt(8) ||
// secretbox(tag(16) || secret(32)) under PBKDF2-HMAC-SHA512(passphrase, salt,
// 32768) with a zero nonce.
func decryptOctez(c signer.Curve, body []byte, passphrase func() ([]byte, error)) (*PrivateKey, error) {
	if passphrase == nil {
		return nil, fmt.Errorf("local: %w: Octez encrypted key", ErrNoPassphrase)
	}
	pass, err := passphrase()
	if err != nil {
		return nil, fmt.Errorf("local: reading passphrase: %w", err)
	}
	defer zero(pass)
	salt, box := body[:octezSaltLen], body[octezSaltLen:]
	dk := pbkdf2.Key(pass, salt, octezKDFIters, 32, sha512.New)
	var key [32]byte
	copy(key[:], dk)
	zero(dk)
	var nonce [24]byte
	secret, ok := secretbox.Open(nil, box, &nonce, &key)
	clear(key[:])
	if !ok {
		return nil, fmt.Errorf("local: Octez encrypted %v key: %w", c, ErrWrongPassphrase)
	}
	defer zero(secret)
	k, err := newPrivateKey(c, secret)
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	return k, nil
}

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

var errBase58 = errors.New("invalid base58check")

// base58CheckDecode decodes Bitcoin-alphabet base58 and verifies and strips
// the 4-byte double-SHA-256 checksum.
func base58CheckDecode(s string) ([]byte, error) {
	if s == "" || len(s) > maxSecretTextLen {
		return nil, errBase58
	}
	zeros := 0
	for zeros < len(s) && s[zeros] == '1' {
		zeros++
	}
	// Big-endian base-256 accumulator; log(58)/log(256) < 0.733.
	buf := make([]byte, len(s)*733/1000+1)
	used := 0
	for i := zeros; i < len(s); i++ {
		d := b58Index[s[i]]
		if d < 0 {
			return nil, fmt.Errorf("%w: character outside the alphabet", errBase58)
		}
		carry := int(d)
		j := 0
		for k := len(buf) - 1; k >= 0 && (carry != 0 || j < used); k-- {
			carry += 58 * int(buf[k])
			buf[k] = byte(carry)
			carry >>= 8
			j++
		}
		used = j
	}
	out := make([]byte, zeros+used)
	copy(out[zeros:], buf[len(buf)-used:])
	zero(buf)
	if len(out) < 4 {
		return nil, fmt.Errorf("%w: too short", errBase58)
	}
	payload, sum := out[:len(out)-4], out[len(out)-4:]
	h1 := sha256.Sum256(payload)
	h2 := sha256.Sum256(h1[:])
	clear(h1[:])
	if string(h2[:4]) != string(sum) {
		zero(out)
		return nil, fmt.Errorf("%w: bad checksum", errBase58)
	}
	return payload, nil
}
