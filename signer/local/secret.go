package local

import (
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/nacl/secretbox"
	"golang.org/x/crypto/pbkdf2"

	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/signer"
)

const octezKDFIters = 32768

// octezEncrypted maps the prefixes of Octez encrypted secret keys to curves.
var octezEncrypted = []struct {
	prefix []byte
	curve  signer.Curve
}{
	{tezos.PrefixEdesk, signer.Ed25519},
	{tezos.PrefixSpesk, signer.Secp256k1},
	{tezos.PrefixP2esk, signer.P256},
}

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
	// Unencrypted edsk (both forms, the 64-byte one checked), spsk, p2sk:
	// chains/tezos parses them.
	c, secret, err := tezos.ParseSecretKey(s)
	if err == nil {
		defer zero(secret)
		if wantEncrypted == 1 {
			return nil, fmt.Errorf("local: %w: \"encrypted:\" given with an unencrypted key", ErrBadSecret)
		}
		k, err := newPrivateKey(c, secret)
		if err != nil {
			return nil, fmt.Errorf("local: %w", err)
		}
		return k, nil
	}
	if !errors.Is(err, tezos.ErrEncryptedKey) {
		return nil, fmt.Errorf("local: %w: not an Octez secret key (edsk…, spsk…, p2sk…, edesk…, spesk…, p2esk…) nor 64 hex digits: %v", ErrBadSecret, err)
	}
	if wantEncrypted == -1 {
		return nil, fmt.Errorf("local: %w: \"unencrypted:\" given with an encrypted key", ErrBadSecret)
	}
	for _, f := range octezEncrypted {
		if body, err := tezos.B58Decode(s, f.prefix, octezEncryptedLen); err == nil {
			return decryptOctez(f.curve, body, passphrase)
		}
	}
	return nil, fmt.Errorf("local: %w: unknown Octez encrypted key form", ErrBadSecret)
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
