// Package local holds secp256k1, P-256, Ed25519 and BLS12-381 private keys in memory and stores them in encrypted key files for the "file" key URI scheme.
package local

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/internal/bls12381"
)

// ErrBadSecret means secret key material is malformed or out of range for its curve.
var ErrBadSecret = errors.New("invalid secret key")

// PrivateKey is a private key held in memory, parsed once so that Sign does
// no per-call derivation. It implements signer.Key and is safe for
// concurrent use.
type PrivateKey struct {
	curve signer.Curve
	pub   signer.PublicKey
	secp  *secp256k1.PrivateKey // Secp256k1
	p256  *ecdsa.PrivateKey     // P256
	ed    ed25519.PrivateKey    // Ed25519 (seed || public key)
	bls   *bls12381.SecretKey   // BLS12381
}

var (
	_ signer.Key    = (*PrivateKey)(nil)
	_ signer.BLSKey = (*PrivateKey)(nil)
)

// Generate creates a new random key on curve c.
func Generate(c signer.Curve) (*PrivateKey, error) {
	switch c {
	case signer.Secp256k1:
		sk, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			return nil, fmt.Errorf("local: generate secp256k1 key: %w", err)
		}
		return fromSecp(sk), nil
	case signer.P256:
		sk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("local: generate P-256 key: %w", err)
		}
		return fromP256(sk)
	case signer.Ed25519:
		_, sk, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("local: generate Ed25519 key: %w", err)
		}
		return fromEd(sk), nil
	case signer.BLS12381:
		// As Octez's Bls.generate_key: IETF KeyGen over 32 random bytes.
		var ikm [32]byte
		if _, err := rand.Read(ikm[:]); err != nil {
			return nil, fmt.Errorf("local: generate BLS12-381 key: %w", err)
		}
		sk, err := bls12381.KeyGen(ikm[:])
		clear(ikm[:])
		if err != nil {
			return nil, fmt.Errorf("local: generate BLS12-381 key: %w", err)
		}
		return fromBLS(sk), nil
	}
	return nil, fmt.Errorf("local: cannot generate a key on curve %v", c)
}

// NewPrivateKey builds a key from its 32-byte secret: the big-endian scalar
// for secp256k1 and P-256, the seed for Ed25519, the little-endian scalar
// for BLS12-381 (the bytes of an Octez BLsk). It checks that a scalar is in
// [1, n-1]. secret is not retained; the caller zeroes it.
func NewPrivateKey(c signer.Curve, secret []byte) (*PrivateKey, error) {
	if len(secret) != 32 {
		return nil, fmt.Errorf("%w: %v secret is %d bytes, want 32", ErrBadSecret, c, len(secret))
	}
	switch c {
	case signer.Secp256k1:
		var s secp256k1.ModNScalar
		overflow := s.SetByteSlice(secret)
		if overflow || s.IsZero() {
			s.Zero()
			return nil, fmt.Errorf("%w: secp256k1 scalar out of range", ErrBadSecret)
		}
		return fromSecp(secp256k1.NewPrivateKey(&s)), nil
	case signer.P256:
		sk, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), secret)
		if err != nil {
			return nil, fmt.Errorf("%w: P-256 scalar out of range", ErrBadSecret)
		}
		return fromP256(sk)
	case signer.Ed25519:
		return fromEd(ed25519.NewKeyFromSeed(secret)), nil
	case signer.BLS12381:
		sk, err := bls12381.SecretKeyFromLE(secret)
		if errors.Is(err, bls12381.ErrUnavailable) {
			return nil, fmt.Errorf("local: %w", err)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadSecret, err)
		}
		return fromBLS(sk), nil
	}
	return nil, fmt.Errorf("%w: unknown curve %v", ErrBadSecret, c)
}

func fromSecp(sk *secp256k1.PrivateKey) *PrivateKey {
	return &PrivateKey{
		curve: signer.Secp256k1,
		pub:   signer.PublicKey{Curve: signer.Secp256k1, Bytes: sk.PubKey().SerializeCompressed()},
		secp:  sk,
	}
}

func fromP256(sk *ecdsa.PrivateKey) (*PrivateKey, error) {
	pub, err := sk.PublicKey.Bytes() // uncompressed 0x04||X||Y
	if err != nil {
		return nil, fmt.Errorf("%w: P-256: %v", ErrBadSecret, err)
	}
	pk, err := signer.PublicKeyFromPoint(signer.P256, pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSecret, err)
	}
	return &PrivateKey{curve: signer.P256, pub: pk, p256: sk}, nil
}

func fromEd(sk ed25519.PrivateKey) *PrivateKey {
	pub := append([]byte(nil), sk[32:]...)
	return &PrivateKey{curve: signer.Ed25519, pub: signer.PublicKey{Curve: signer.Ed25519, Bytes: pub}, ed: sk}
}

func fromBLS(sk *bls12381.SecretKey) *PrivateKey {
	pub := append([]byte(nil), sk.PublicKey()...)
	return &PrivateKey{curve: signer.BLS12381, pub: signer.PublicKey{Curve: signer.BLS12381, Bytes: pub}, bls: sk}
}

// Curve returns the key's curve.
func (k *PrivateKey) Curve() signer.Curve { return k.curve }

// Public returns the key's public key in compact form (33-byte compressed
// SEC1, the 32-byte Ed25519 key, or the 48-byte compressed BLS12-381 G1 point).
func (k *PrivateKey) Public() signer.PublicKey {
	return signer.PublicKey{Curve: k.pub.Curve, Bytes: append([]byte(nil), k.pub.Bytes...)}
}

// PublicKey implements signer.Key; it is the same as Public.
func (k *PrivateKey) PublicKey() signer.PublicKey { return k.Public() }

// Sign signs a 32-byte digest. secp256k1 uses RFC 6979 deterministic nonces
// and returns low-S r||s (with cgo through libsecp256k1, whose nonce point
// multiplication is constant-time; see sign_secp_*.go); P-256 returns r||s (hedged random nonce, either S
// form); Ed25519 signs the digest as the message. A BLS12-381 key never
// signs a digest: it fails with signer.ErrNotDigestKey (see SignBLS).
func (k *PrivateKey) Sign(_ context.Context, digest []byte) ([]byte, error) {
	if k.curve == signer.BLS12381 {
		return nil, signer.ErrNotDigestKey
	}
	if len(digest) != 32 {
		return nil, signer.ErrBadDigest
	}
	switch k.curve {
	case signer.Secp256k1:
		return signSecp256k1(k.secp, digest)
	case signer.P256:
		r, s, err := ecdsa.Sign(rand.Reader, k.p256, digest)
		if err != nil {
			return nil, fmt.Errorf("local: P-256 sign: %w", err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out, nil
	case signer.Ed25519:
		return ed25519.Sign(k.ed, digest), nil
	}
	return nil, fmt.Errorf("local: key has unknown curve %v", k.curve)
}

// SignRecoverable implements signer.RecoverableKey for secp256k1 keys; other
// curves return signer.RecoveryUnknown.
func (k *PrivateKey) SignRecoverable(ctx context.Context, digest []byte) ([]byte, byte, error) {
	if k.curve != signer.Secp256k1 {
		sig, err := k.Sign(ctx, digest)
		return sig, signer.RecoveryUnknown, err
	}
	if len(digest) != 32 {
		return nil, 0, signer.ErrBadDigest
	}
	return signSecp256k1Recoverable(k.secp, digest)
}

// SignBLS implements signer.BLSKey: it signs the whole message msg under
// scheme (BLSAugmented prefixes the key's compressed public key) with blst.
// Callers outside this package use signer.SignMessage, which verifies.
func (k *PrivateKey) SignBLS(_ context.Context, scheme signer.BLSScheme, msg []byte) ([]byte, error) {
	if k.curve != signer.BLS12381 {
		return nil, fmt.Errorf("local: %w", signer.ErrNotBLSKey)
	}
	switch scheme {
	case signer.BLSProofOfPossession:
		return k.bls.Sign(nil, msg, bls12381.DSTPop), nil
	case signer.BLSAugmented:
		return k.bls.Sign(k.pub.Bytes, msg, bls12381.DSTAug), nil
	}
	return nil, fmt.Errorf("local: unknown BLS scheme %v", scheme)
}

// ProvePossession implements signer.BLSKey: MinPk.Pop.pop_prove over pk, or
// over the key's own compressed public key when pk is nil. Callers outside
// this package use signer.ProvePossession, which validates pk and verifies.
func (k *PrivateKey) ProvePossession(_ context.Context, pk []byte) ([]byte, error) {
	if k.curve != signer.BLS12381 {
		return nil, fmt.Errorf("local: %w", signer.ErrNotBLSKey)
	}
	if pk == nil {
		pk = k.pub.Bytes
	}
	return k.bls.Sign(nil, pk, bls12381.DSTProof), nil
}

// secret returns a copy of the 32-byte secret (scalar, Ed25519 seed, or
// little-endian BLS12-381 scalar). The caller zeroes it.
func (k *PrivateKey) secret() []byte {
	switch k.curve {
	case signer.Secp256k1:
		b := k.secp.Key.Bytes()
		out := make([]byte, 32)
		copy(out, b[:])
		clear(b[:])
		return out
	case signer.P256:
		b, err := k.p256.Bytes()
		if err != nil {
			return nil
		}
		return b
	case signer.Ed25519:
		return append([]byte(nil), k.ed.Seed()...)
	case signer.BLS12381:
		return k.bls.LE()
	}
	return nil
}

// Zero overwrites the secret held by k, as far as the Go runtime allows. k
// must not be used afterwards.
func (k *PrivateKey) Zero() {
	switch k.curve {
	case signer.Secp256k1:
		if k.secp != nil {
			k.secp.Zero()
		}
	case signer.P256:
		// crypto/ecdsa gives no way to overwrite its scalar; drop the
		// reference so nothing here keeps it alive.
		k.p256 = nil
	case signer.Ed25519:
		clear(k.ed)
	case signer.BLS12381:
		if k.bls != nil {
			k.bls.Zero()
		}
	}
}

func zero(b []byte) { clear(b) }
