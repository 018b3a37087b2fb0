// Package octezkey parses Octez secret-key text (edsk, spsk, p2sk, BLsk, with "unencrypted:", and the "encrypted:" edesk/spesk/p2esk/BLesk forms) into the curve and secret bytes keyward's keystore takes.
package octezkey

import (
	"crypto/sha512"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/nacl/secretbox"
	"golang.org/x/crypto/pbkdf2"

	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/signer"
)

// Errors returned by Parse. Check with errors.Is. None contains the text.
var (
	// ErrBadSecret means the text is not an Octez secret key.
	ErrBadSecret = errors.New("not an Octez secret key")
	// ErrWrongPassphrase means an encrypted key did not decrypt with the passphrase.
	ErrWrongPassphrase = errors.New("wrong passphrase for the Octez encrypted key")
	// ErrNoPassphrase means the key is encrypted and no passphrase function was given.
	ErrNoPassphrase = errors.New("the Octez key is encrypted and no passphrase was given")
)

// Octez's encrypted secret keys (src/lib_signer_backends/encrypted.ml):
// salt(8) ‖ secretbox(secret) under PBKDF2-HMAC-SHA512(passphrase, salt,
// 32768 iterations, 32 bytes) with a zero nonce.
const (
	kdfIterations = 32768
	saltLen       = 8
	maxTextLen    = 256
)

// Parse parses an Octez secret key given as text, optionally prefixed by
// "unencrypted:" or "encrypted:" (surrounding space ignored):
//
//   - edsk… (32-byte seed or 64-byte seed ‖ public key, checked), spsk…,
//     p2sk…, BLsk…;
//   - edesk…, spesk…, p2esk…, BLesk… (Octez encrypted keys): passphrase is
//     called for these only.
//
// It returns the curve and the 32-byte secret in keyward's keystore form
// (local.NewPrivateKey): the Ed25519 seed, the big-endian ECDSA scalar, the
// little-endian BLS12-381 scalar. Scalars are range-checked by the
// keystore, not here. The caller zeroes the secret.
func Parse(text string, passphrase func() ([]byte, error)) (signer.Curve, []byte, error) {
	s := strings.TrimSpace(text)
	if len(s) > maxTextLen {
		return signer.CurveUnknown, nil, fmt.Errorf("%w: text too long", ErrBadSecret)
	}
	want := 0 // 1 encrypted, -1 unencrypted, 0 either
	if rest, ok := strings.CutPrefix(s, "unencrypted:"); ok {
		s, want = rest, -1
	} else if rest, ok := strings.CutPrefix(s, "encrypted:"); ok {
		s, want = rest, 1
	}
	c, secret, err := tezos.ParseSecretKey(s)
	if err == nil {
		if want == 1 {
			clear(secret)
			return signer.CurveUnknown, nil, fmt.Errorf("%w: \"encrypted:\" given with an unencrypted key", ErrBadSecret)
		}
		return c, secret, nil
	}
	if !errors.Is(err, tezos.ErrEncryptedKey) {
		return signer.CurveUnknown, nil, fmt.Errorf("%w (edsk…, spsk…, p2sk…, BLsk…, edesk…, spesk…, p2esk…, BLesk…): %w", ErrBadSecret, err)
	}
	if want == -1 {
		return signer.CurveUnknown, nil, fmt.Errorf("%w: \"unencrypted:\" given with an encrypted key", ErrBadSecret)
	}
	c, body, err := tezos.ParseEncryptedSecretKey(s)
	if err != nil {
		return signer.CurveUnknown, nil, fmt.Errorf("%w: %w", ErrBadSecret, err)
	}
	secret, err = decrypt(body, passphrase)
	if err != nil {
		return signer.CurveUnknown, nil, fmt.Errorf("octezkey: %v key: %w", c, err)
	}
	return c, secret, nil
}

// decrypt opens salt(8) ‖ secretbox(tag(16) ‖ secret(32)).
func decrypt(body []byte, passphrase func() ([]byte, error)) ([]byte, error) {
	if passphrase == nil {
		return nil, ErrNoPassphrase
	}
	pass, err := passphrase()
	if err != nil {
		return nil, fmt.Errorf("reading the passphrase: %w", err)
	}
	defer clear(pass)
	salt, box := body[:saltLen], body[saltLen:]
	dk := pbkdf2.Key(pass, salt, kdfIterations, 32, sha512.New)
	var key [32]byte
	copy(key[:], dk)
	clear(dk)
	var nonce [24]byte
	secret, ok := secretbox.Open(nil, box, &nonce, &key)
	clear(key[:])
	if !ok {
		return nil, ErrWrongPassphrase
	}
	return secret, nil
}
