package tezos

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"

	"golang.org/x/crypto/blake2b"

	"github.com/keyward/keyward/signer"
)

// Digest is the Blake2b-256 hash of a payload, the message Tezos signs.
func Digest(payload []byte) [32]byte {
	return blake2b.Sum256(payload)
}

// curveTag is the tag of a curve in Tezos binary public key hashes, public
// keys and signatures (0 ed25519, 1 secp256k1, 2 p256).
func curveTag(c signer.Curve) (byte, error) {
	switch c {
	case signer.Ed25519:
		return 0, nil
	case signer.Secp256k1:
		return 1, nil
	case signer.P256:
		return 2, nil
	}
	return 0, fmt.Errorf("tezos: unsupported curve %v", c)
}

func pkhPrefix(c signer.Curve) []byte {
	switch c {
	case signer.Ed25519:
		return PrefixTz1
	case signer.Secp256k1:
		return PrefixTz2
	case signer.P256:
		return PrefixTz3
	}
	return nil
}

func pkLen(c signer.Curve) int {
	if c == signer.Ed25519 {
		return 32
	}
	return 33
}

func hash160(pub signer.PublicKey) ([]byte, error) {
	if pkhPrefix(pub.Curve) == nil {
		return nil, fmt.Errorf("tezos: unsupported curve %v", pub.Curve)
	}
	if len(pub.Bytes) != pkLen(pub.Curve) {
		return nil, fmt.Errorf("tezos: %v public key is %d bytes, want %d", pub.Curve, len(pub.Bytes), pkLen(pub.Curve))
	}
	h, err := blake2b.New(20, nil)
	if err != nil {
		return nil, err
	}
	h.Write(pub.Bytes)
	return h.Sum(nil), nil
}

// PublicKeyHash returns the tz1/tz2/tz3 address of a key: the Blake2b-160
// hash of its compact public key.
func PublicKeyHash(pub signer.PublicKey) (string, error) {
	h, err := hash160(pub)
	if err != nil {
		return "", err
	}
	return B58Encode(pkhPrefix(pub.Curve), h), nil
}

// PKHBytes returns the 21-byte binary public key hash: curve tag ‖ hash.
func PKHBytes(pub signer.PublicKey) ([]byte, error) {
	h, err := hash160(pub)
	if err != nil {
		return nil, err
	}
	tag, _ := curveTag(pub.Curve)
	return append([]byte{tag}, h...), nil
}

// ParsePublicKeyHash parses a tz1/tz2/tz3 address into its curve and 20-byte hash.
func ParsePublicKeyHash(s string) (signer.Curve, []byte, error) {
	for _, c := range []signer.Curve{signer.Ed25519, signer.Secp256k1, signer.P256} {
		if h, err := B58Decode(s, pkhPrefix(c), 20); err == nil {
			return c, h, nil
		}
	}
	return signer.CurveUnknown, nil, fmt.Errorf("%w: %q is not a tz1, tz2 or tz3 address", ErrBase58, s)
}

func pkPrefix(c signer.Curve) []byte {
	switch c {
	case signer.Ed25519:
		return PrefixEdpk
	case signer.Secp256k1:
		return PrefixSppk
	case signer.P256:
		return PrefixP2pk
	}
	return nil
}

// EncodePublicKey returns the edpk/sppk/p2pk form of a key.
func EncodePublicKey(pub signer.PublicKey) (string, error) {
	p := pkPrefix(pub.Curve)
	if p == nil {
		return "", fmt.Errorf("tezos: unsupported curve %v", pub.Curve)
	}
	if len(pub.Bytes) != pkLen(pub.Curve) {
		return "", fmt.Errorf("tezos: %v public key is %d bytes, want %d", pub.Curve, len(pub.Bytes), pkLen(pub.Curve))
	}
	return B58Encode(p, pub.Bytes), nil
}

// ParsePublicKey parses an edpk/sppk/p2pk string and checks the point is on its curve.
func ParsePublicKey(s string) (signer.PublicKey, error) {
	for _, c := range []signer.Curve{signer.Ed25519, signer.Secp256k1, signer.P256} {
		b, err := B58Decode(s, pkPrefix(c), pkLen(c))
		if err != nil {
			continue
		}
		pub, err := signer.PublicKeyFromPoint(c, b)
		if err != nil {
			return signer.PublicKey{}, fmt.Errorf("tezos: public key %q: %w", s, err)
		}
		return pub, nil
	}
	return signer.PublicKey{}, fmt.Errorf("%w: %q is not an edpk, sppk or p2pk public key", ErrBase58, s)
}

func sigPrefix(c signer.Curve) []byte {
	switch c {
	case signer.Ed25519:
		return PrefixEdsig
	case signer.Secp256k1:
		return PrefixSpsig1
	case signer.P256:
		return PrefixP2sig
	}
	return nil
}

// EncodeSignature returns the edsig/spsig1/p2sig form of a 64-byte signature
// (r‖s for ECDSA).
func EncodeSignature(c signer.Curve, sig []byte) (string, error) {
	p := sigPrefix(c)
	if p == nil {
		return "", fmt.Errorf("tezos: unsupported curve %v", c)
	}
	if len(sig) != 64 {
		return "", fmt.Errorf("tezos: signature is %d bytes, want 64", len(sig))
	}
	return B58Encode(p, sig), nil
}

// DecodeSignature parses an edsig/spsig1/p2sig signature, or a generic sig
// (returned with CurveUnknown), into its 64 bytes.
func DecodeSignature(s string) (signer.Curve, []byte, error) {
	for _, c := range []signer.Curve{signer.Ed25519, signer.Secp256k1, signer.P256} {
		if b, err := B58Decode(s, sigPrefix(c), 64); err == nil {
			return c, b, nil
		}
	}
	if b, err := B58Decode(s, PrefixSig, 64); err == nil {
		return signer.CurveUnknown, b, nil
	}
	return signer.CurveUnknown, nil, fmt.Errorf("%w: %q is not an edsig, spsig1, p2sig or sig signature", ErrBase58, s)
}

// ErrEncryptedKey is returned by ParseSecretKey for edesk/spesk/p2esk keys,
// which need a passphrase to decrypt.
var ErrEncryptedKey = errors.New("secret key is encrypted")

// ParseSecretKey parses an unencrypted edsk/spsk/p2sk secret key. For
// Ed25519 it returns the 32-byte seed (from either the 32-byte seed form or
// the 64-byte seed ‖ public key form, whose public half must match); for
// ECDSA the 32-byte scalar. Encrypted keys yield ErrEncryptedKey. Errors
// never contain the key.
func ParseSecretKey(s string) (signer.Curve, []byte, error) {
	if b, err := B58Decode(s, PrefixEdsk32, 32); err == nil {
		return signer.Ed25519, b, nil
	}
	if b, err := B58Decode(s, PrefixEdsk64, 64); err == nil {
		pub := ed25519.NewKeyFromSeed(b[:32]).Public().(ed25519.PublicKey)
		if !bytes.Equal(pub, b[32:]) {
			return signer.CurveUnknown, nil, fmt.Errorf("%w: edsk public half does not match its seed", ErrBase58)
		}
		return signer.Ed25519, b[:32], nil
	}
	if b, err := B58Decode(s, PrefixSpsk, 32); err == nil {
		return signer.Secp256k1, b, nil
	}
	if b, err := B58Decode(s, PrefixP2sk, 32); err == nil {
		return signer.P256, b, nil
	}
	for _, p := range [][]byte{PrefixEdesk, PrefixSpesk, PrefixP2esk} {
		if _, err := B58Decode(s, p, 56); err == nil {
			return signer.CurveUnknown, nil, ErrEncryptedKey
		}
	}
	return signer.CurveUnknown, nil, fmt.Errorf("%w: not an edsk, spsk or p2sk secret key", ErrBase58)
}

// EncodeSecretKey returns the edsk (32-byte seed form), spsk or p2sk string of a secret key.
func EncodeSecretKey(c signer.Curve, secret []byte) (string, error) {
	if len(secret) != 32 {
		return "", fmt.Errorf("tezos: secret key is %d bytes, want 32", len(secret))
	}
	switch c {
	case signer.Ed25519:
		return B58Encode(PrefixEdsk32, secret), nil
	case signer.Secp256k1:
		return B58Encode(PrefixSpsk, secret), nil
	case signer.P256:
		return B58Encode(PrefixP2sk, secret), nil
	}
	return "", fmt.Errorf("tezos: unsupported curve %v", c)
}
