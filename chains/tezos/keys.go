package tezos

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"

	"golang.org/x/crypto/blake2b"

	"github.com/keyward/keyward/signer"
)

// Digest is the Blake2b-256 hash of a payload, the message Tezos signs with
// tz1, tz2 and tz3 keys (tz4 keys sign the payload itself).
func Digest(payload []byte) [32]byte {
	return blake2b.Sum256(payload)
}

// curveEncoding is how Tezos writes one curve's keys and signatures.
type curveEncoding struct {
	tag    byte   // tag in binary public key hashes and public keys
	pkh    []byte // tz1…tz4
	pk     []byte // edpk, sppk, p2pk, BLpk
	pkLen  int
	sig    []byte // edsig, spsig1, p2sig, BLsig
	sigLen int
	sk     []byte // edsk (32-byte seed form), spsk, p2sk, BLsk
	esk    []byte // edesk, spesk, p2esk, BLesk
}

var encodings = map[signer.Curve]curveEncoding{
	signer.Ed25519:   {0, PrefixTz1, PrefixEdpk, 32, PrefixEdsig, 64, PrefixEdsk32, PrefixEdesk},
	signer.Secp256k1: {1, PrefixTz2, PrefixSppk, 33, PrefixSpsig1, 64, PrefixSpsk, PrefixSpesk},
	signer.P256:      {2, PrefixTz3, PrefixP2pk, 33, PrefixP2sig, 64, PrefixP2sk, PrefixP2esk},
	signer.BLS12381:  {3, PrefixTz4, PrefixBLpk, 48, PrefixBLsig, 96, PrefixBLsk, PrefixBLesk},
}

// curves lists the curves in the order decoders try them.
var curves = []signer.Curve{signer.Ed25519, signer.Secp256k1, signer.P256, signer.BLS12381}

func encodingOf(c signer.Curve) (curveEncoding, error) {
	e, ok := encodings[c]
	if !ok {
		return curveEncoding{}, fmt.Errorf("tezos: unsupported curve %v", c)
	}
	return e, nil
}

func hash160(pub signer.PublicKey) ([]byte, error) {
	e, err := encodingOf(pub.Curve)
	if err != nil {
		return nil, err
	}
	if len(pub.Bytes) != e.pkLen {
		return nil, fmt.Errorf("tezos: %v public key is %d bytes, want %d", pub.Curve, len(pub.Bytes), e.pkLen)
	}
	h, err := blake2b.New(20, nil)
	if err != nil {
		return nil, err
	}
	h.Write(pub.Bytes)
	return h.Sum(nil), nil
}

// PublicKeyHash returns the tz1/tz2/tz3/tz4 address of a key: the
// Blake2b-160 hash of its compact public key.
func PublicKeyHash(pub signer.PublicKey) (string, error) {
	h, err := hash160(pub)
	if err != nil {
		return "", err
	}
	return B58Encode(encodings[pub.Curve].pkh, h), nil
}

// PKHBytes returns the 21-byte binary public key hash: curve tag ‖ hash.
func PKHBytes(pub signer.PublicKey) ([]byte, error) {
	h, err := hash160(pub)
	if err != nil {
		return nil, err
	}
	return append([]byte{encodings[pub.Curve].tag}, h...), nil
}

// ParsePublicKeyHash parses a tz1/tz2/tz3/tz4 address into its curve and 20-byte hash.
func ParsePublicKeyHash(s string) (signer.Curve, []byte, error) {
	for _, c := range curves {
		if h, err := B58Decode(s, encodings[c].pkh, 20); err == nil {
			return c, h, nil
		}
	}
	return signer.CurveUnknown, nil, fmt.Errorf("%w: %q is not a tz1, tz2, tz3 or tz4 address", ErrBase58, s)
}

// EncodePublicKey returns the edpk/sppk/p2pk/BLpk form of a key.
func EncodePublicKey(pub signer.PublicKey) (string, error) {
	e, err := encodingOf(pub.Curve)
	if err != nil {
		return "", err
	}
	if len(pub.Bytes) != e.pkLen {
		return "", fmt.Errorf("tezos: %v public key is %d bytes, want %d", pub.Curve, len(pub.Bytes), e.pkLen)
	}
	return B58Encode(e.pk, pub.Bytes), nil
}

// ParsePublicKey parses an edpk/sppk/p2pk/BLpk string and checks the point
// is valid on its curve (for BLpk: in the prime-order subgroup and not the
// identity).
func ParsePublicKey(s string) (signer.PublicKey, error) {
	for _, c := range curves {
		e := encodings[c]
		b, err := B58Decode(s, e.pk, e.pkLen)
		if err != nil {
			continue
		}
		pub, err := signer.PublicKeyFromPoint(c, b)
		if err != nil {
			return signer.PublicKey{}, fmt.Errorf("tezos: public key %q: %w", s, err)
		}
		return pub, nil
	}
	return signer.PublicKey{}, fmt.Errorf("%w: %q is not an edpk, sppk, p2pk or BLpk public key", ErrBase58, s)
}

// EncodeSignature returns the edsig/spsig1/p2sig form of a 64-byte signature
// (r‖s for ECDSA), or the BLsig form of a 96-byte BLS12-381 signature.
func EncodeSignature(c signer.Curve, sig []byte) (string, error) {
	e, err := encodingOf(c)
	if err != nil {
		return "", err
	}
	if len(sig) != e.sigLen {
		return "", fmt.Errorf("tezos: %v signature is %d bytes, want %d", c, len(sig), e.sigLen)
	}
	return B58Encode(e.sig, sig), nil
}

// DecodeSignature parses an edsig/spsig1/p2sig signature (64 bytes), a
// BLsig (96 bytes), or a generic sig (64 bytes, returned with CurveUnknown).
func DecodeSignature(s string) (signer.Curve, []byte, error) {
	for _, c := range curves {
		e := encodings[c]
		if b, err := B58Decode(s, e.sig, e.sigLen); err == nil {
			return c, b, nil
		}
	}
	if b, err := B58Decode(s, PrefixSig, 64); err == nil {
		return signer.CurveUnknown, b, nil
	}
	return signer.CurveUnknown, nil, fmt.Errorf("%w: %q is not an edsig, spsig1, p2sig, BLsig or sig signature", ErrBase58, s)
}

// ErrEncryptedKey is returned by ParseSecretKey for edesk/spesk/p2esk/BLesk
// keys, which need a passphrase to decrypt (package octezkey does).
var ErrEncryptedKey = errors.New("secret key is encrypted")

// EncryptedSecretKeyLen is the length of the data of an Octez encrypted
// secret key: salt (8) ‖ secretbox tag (16) ‖ secret (32).
const EncryptedSecretKeyLen = 56

// ParseSecretKey parses an unencrypted edsk/spsk/p2sk/BLsk secret key. For
// Ed25519 it returns the 32-byte seed (from either the 32-byte seed form or
// the 64-byte seed ‖ public key form, whose public half must match); for
// ECDSA the 32-byte big-endian scalar; for BLS12-381 the 32-byte
// little-endian scalar. Scalars are not range-checked (the keystore does).
// Encrypted keys yield ErrEncryptedKey. Errors never contain the key.
func ParseSecretKey(s string) (signer.Curve, []byte, error) {
	if b, err := B58Decode(s, PrefixEdsk64, 64); err == nil {
		pub := ed25519.NewKeyFromSeed(b[:32]).Public().(ed25519.PublicKey)
		if !bytes.Equal(pub, b[32:]) {
			clear(b)
			return signer.CurveUnknown, nil, fmt.Errorf("%w: edsk public half does not match its seed", ErrBase58)
		}
		return signer.Ed25519, b[:32], nil
	}
	for _, c := range curves {
		if b, err := B58Decode(s, encodings[c].sk, 32); err == nil {
			return c, b, nil
		}
	}
	for _, c := range curves {
		if _, err := B58Decode(s, encodings[c].esk, EncryptedSecretKeyLen); err == nil {
			return signer.CurveUnknown, nil, ErrEncryptedKey
		}
	}
	return signer.CurveUnknown, nil, fmt.Errorf("%w: not an edsk, spsk, p2sk or BLsk secret key", ErrBase58)
}

// ParseEncryptedSecretKey decodes an edesk/spesk/p2esk/BLesk string into
// its curve and 56 bytes (salt ‖ secretbox), without decrypting it.
func ParseEncryptedSecretKey(s string) (signer.Curve, []byte, error) {
	for _, c := range curves {
		if b, err := B58Decode(s, encodings[c].esk, EncryptedSecretKeyLen); err == nil {
			return c, b, nil
		}
	}
	return signer.CurveUnknown, nil, fmt.Errorf("%w: not an edesk, spesk, p2esk or BLesk encrypted secret key", ErrBase58)
}

// EncodeSecretKey returns the edsk (32-byte seed form), spsk, p2sk or BLsk
// string of a 32-byte secret in the form ParseSecretKey returns.
func EncodeSecretKey(c signer.Curve, secret []byte) (string, error) {
	e, err := encodingOf(c)
	if err != nil {
		return "", err
	}
	if len(secret) != 32 {
		return "", fmt.Errorf("tezos: secret key is %d bytes, want 32", len(secret))
	}
	return B58Encode(e.sk, secret), nil
}
