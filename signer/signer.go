// Package signer defines the Key and Backend interfaces every key store implements (and the Sealer interface of sealed key files), parses key URIs, and normalizes and verifies every signature, ECDSA, Ed25519 or BLS, before it leaves keyward.
package signer

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"errors"
	"fmt"
	"math/big"
	"sync"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	gethcrypto "github.com/ethereum/go-ethereum/crypto"

	"github.com/keyward/keyward/internal/registry"
	"github.com/keyward/keyward/signer/internal/bls12381"
)

// Curve is the signature scheme of a key.
type Curve int

// The curves keyward signs with.
const (
	CurveUnknown Curve = iota
	Secp256k1          // Tezos tz2, Ethereum
	P256               // Tezos tz3 (NIST P-256, prime256v1)
	Ed25519            // Tezos tz1
	BLS12381           // Tezos tz4 (BLS12-381, MinPk: public keys in G1, signatures in G2)
)

func (c Curve) String() string {
	switch c {
	case Secp256k1:
		return "secp256k1"
	case P256:
		return "p256"
	case Ed25519:
		return "ed25519"
	case BLS12381:
		return "bls12-381"
	}
	return "unknown"
}

// ParseCurve accepts the names used on the command line and in key files.
func ParseCurve(s string) (Curve, error) {
	switch s {
	case "secp256k1", "tz2":
		return Secp256k1, nil
	case "p256", "p-256", "P-256", "P256", "prime256v1", "secp256r1", "tz3":
		return P256, nil
	case "ed25519", "Ed25519", "tz1":
		return Ed25519, nil
	case "bls", "bls12-381", "bls12381", "BLS12-381", "BLS12381", "tz4":
		return BLS12381, nil
	}
	return CurveUnknown, fmt.Errorf("unknown key type %q (want secp256k1, p256, ed25519 or bls)", s)
}

// PublicKey is a public key in its compact form: 33-byte compressed SEC1 for
// secp256k1 and P-256, the 32-byte key for Ed25519, the 48-byte compressed
// G1 point for BLS12-381.
type PublicKey struct {
	Curve Curve
	Bytes []byte
}

// Errors returned by signer and its backends. Check with errors.Is.
var (
	// ErrUnavailable means the backend (KMS, HSM, ...) could not be reached or failed; nothing was signed.
	ErrUnavailable = errors.New("key backend unavailable")
	// ErrBadSignature means a backend returned a signature that does not verify; it is never released.
	ErrBadSignature = errors.New("backend returned a signature that does not verify against the key")
	// ErrUnknownScheme means a key URI names a scheme no backend registered.
	ErrUnknownScheme = errors.New("unknown key URI scheme")
	// ErrBadDigest means the digest given to Sign is not 32 bytes.
	ErrBadDigest = errors.New("digest must be 32 bytes")
)

// Key is one signing key held by a backend. Implementations must be safe for
// concurrent use.
type Key interface {
	// PublicKey returns the key's public key, read once when the key was opened.
	PublicKey() PublicKey
	// Sign signs a 32-byte digest. ECDSA keys return r||s (32 bytes each,
	// either S form: SignDigest normalizes); Ed25519 keys return the 64-byte
	// signature of the digest taken as the message; BLS12-381 keys never
	// sign a digest and fail with ErrNotDigestKey (they are BLSKeys). Errors
	// reaching the backend wrap ErrUnavailable.
	Sign(ctx context.Context, digest []byte) ([]byte, error)
}

// ReadinessChecker is an optional capability: a key that can tell whether its
// backend can still sign (for /readyz).
type ReadinessChecker interface {
	Ready(ctx context.Context) error
}

// Closer is an optional capability for keys holding resources.
type Closer interface {
	Close() error
}

// Backend opens keys of one URI scheme.
type Backend interface {
	// Scheme is the URI scheme this backend serves ("file", "awskms", "pkcs11").
	Scheme() string
	// Open opens the key named by u, reading its public key once.
	Open(ctx context.Context, u *URI) (Key, error)
}

var backends = registry.New[Backend]("signer: backend for scheme")

// Register makes a backend available by its scheme. Registering a scheme twice panics.
func Register(b Backend) { backends.Register(b.Scheme(), b) }

// Schemes lists the registered schemes, sorted.
func Schemes() []string { return backends.Names() }

// Open parses ref and opens it with the backend registered for its scheme.
func Open(ctx context.Context, ref string) (Key, error) {
	u, err := ParseURI(ref)
	if err != nil {
		return nil, err
	}
	b, ok := backends.Lookup(u.Scheme)
	if !ok {
		return nil, fmt.Errorf("%w %q in %q (known: %v)", ErrUnknownScheme, u.Scheme, u.Redacted(), Schemes())
	}
	return b.Open(ctx, u)
}

// SignDigest has k sign digest, normalizes an ECDSA signature to low-S and
// verifies the result against k's public key. It is the only path by which a
// signature leaves keyward.
func SignDigest(ctx context.Context, k Key, digest []byte) ([]byte, error) {
	if len(digest) != 32 {
		return nil, ErrBadDigest
	}
	pub := k.PublicKey()
	if pub.Curve == BLS12381 {
		return nil, ErrNotDigestKey
	}
	sig, err := k.Sign(ctx, digest)
	if err != nil {
		return nil, err
	}
	if pub.Curve != Ed25519 {
		sig, err = NormalizeLowS(pub.Curve, sig)
		if err != nil {
			return nil, err
		}
	}
	if !verifyOwn(pub, digest, sig) {
		return nil, ErrBadSignature
	}
	return sig, nil
}

// ownKeys caches the uncompressed points of keyward's own secp256k1 keys
// (bounded by the configured keys; never filled from client input), which
// spares libsecp256k1 a square root on every verification.
var ownKeys sync.Map // string(compressed) → []byte (65-byte uncompressed)

func verifyOwn(pub PublicKey, digest, sig []byte) bool {
	if pub.Curve != Secp256k1 || len(digest) != 32 || !IsLowS(Secp256k1, sig) {
		return Verify(pub, digest, sig)
	}
	unc, err := ownUncompressed(pub)
	if err != nil {
		return false
	}
	return gethcrypto.VerifySignature(unc, digest, sig)
}

var (
	secpN     = secp256k1.Params().N
	secpHalfN = new(big.Int).Rsh(secpN, 1)
	p256HalfN = new(big.Int).Rsh(p256N, 1)
)

// NormalizeLowS returns r||s with s replaced by n-s when s > n/2. It is the
// single place where every ECDSA backend's signatures are normalized.
func NormalizeLowS(c Curve, sig []byte) ([]byte, error) {
	if len(sig) != 64 {
		return nil, fmt.Errorf("%w: ECDSA signature is %d bytes, want 64", ErrBadSignature, len(sig))
	}
	var n *big.Int
	switch c {
	case Secp256k1:
		n = secpN
	case P256:
		n = p256N
	default:
		return nil, fmt.Errorf("low-S normalization: not an ECDSA curve: %v", c)
	}
	if IsLowS(c, sig) {
		return sig, nil
	}
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(n, s)
	out := make([]byte, 64)
	copy(out, sig[:32])
	s.FillBytes(out[32:])
	return out, nil
}

var (
	secpHalfNBytes = secpHalfN.FillBytes(make([]byte, 32))
	p256HalfNBytes = p256HalfN.FillBytes(make([]byte, 32))
)

// IsLowS reports whether the S half of an ECDSA r||s signature is at most n/2.
func IsLowS(c Curve, sig []byte) bool {
	if len(sig) != 64 {
		return false
	}
	switch c {
	case Secp256k1:
		return bytes.Compare(sig[32:], secpHalfNBytes) <= 0
	case P256:
		return bytes.Compare(sig[32:], p256HalfNBytes) <= 0
	}
	return false
}

// Verify checks sig (r||s for ECDSA, raw for Ed25519) over digest. It is
// false for BLS12-381 keys, whose signatures VerifyBLS checks.
func Verify(pub PublicKey, digest, sig []byte) bool {
	if len(sig) != 64 {
		return false
	}
	switch pub.Curve {
	case Secp256k1:
		if len(digest) != 32 {
			return false
		}
		if IsLowS(Secp256k1, sig) {
			// libsecp256k1 through go-ethereum (with cgo): about 3x faster
			// than the pure-Go verifier; it accepts low-S signatures only.
			return gethcrypto.VerifySignature(pub.Bytes, digest, sig)
		}
		pk, err := secp256k1.ParsePubKey(pub.Bytes)
		if err != nil {
			return false
		}
		var r, s secp256k1.ModNScalar
		if r.SetByteSlice(sig[:32]) || s.SetByteSlice(sig[32:]) || r.IsZero() || s.IsZero() {
			return false
		}
		return secpecdsa.NewSignature(&r, &s).Verify(digest, pk)
	case P256:
		pk, err := pub.ECDSA()
		if err != nil {
			return false
		}
		r := new(big.Int).SetBytes(sig[:32])
		s := new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(pk, digest, r, s)
	case Ed25519:
		if len(pub.Bytes) != ed25519.PublicKeySize {
			return false
		}
		return ed25519.Verify(ed25519.PublicKey(pub.Bytes), digest, sig)
	}
	return false
}

// ECDSA returns the key as a crypto/ecdsa public key (P-256 only; Go's
// crypto/ecdsa has no secp256k1).
func (p PublicKey) ECDSA() (*ecdsa.PublicKey, error) {
	if p.Curve != P256 {
		return nil, fmt.Errorf("not a P-256 key: %v", p.Curve)
	}
	unc, err := p.Uncompressed()
	if err != nil {
		return nil, err
	}
	return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), unc)
}

// Uncompressed returns the 65-byte SEC1 uncompressed point (0x04||X||Y) of an
// ECDSA key.
func (p PublicKey) Uncompressed() ([]byte, error) {
	switch p.Curve {
	case Secp256k1:
		pk, err := secp256k1.ParsePubKey(p.Bytes)
		if err != nil {
			return nil, err
		}
		return pk.SerializeUncompressed(), nil
	case P256:
		if len(p.Bytes) != 33 {
			return nil, fmt.Errorf("invalid compressed P-256 point: %d bytes", len(p.Bytes))
		}
		pk, err := p256Point(p.Bytes)
		if err != nil {
			return nil, err
		}
		return pk.Bytes(), nil
	}
	return nil, fmt.Errorf("no uncompressed form for %v keys", p.Curve)
}

// PublicKeyFromPoint builds a PublicKey from a SEC1 point (compressed or
// uncompressed) on curve c, a 32-byte Ed25519 key, or a 48-byte compressed
// BLS12-381 G1 point, checking that it is valid (for BLS12-381: canonical,
// in the prime-order subgroup and not the identity).
func PublicKeyFromPoint(c Curve, point []byte) (PublicKey, error) {
	switch c {
	case Secp256k1:
		pk, err := secp256k1.ParsePubKey(point)
		if err != nil {
			return PublicKey{}, fmt.Errorf("invalid secp256k1 public key: %w", err)
		}
		return PublicKey{Curve: c, Bytes: pk.SerializeCompressed()}, nil
	case P256:
		pk, err := p256Point(point)
		if err != nil {
			return PublicKey{}, fmt.Errorf("invalid P-256 public key: %w", err)
		}
		return PublicKey{Curve: c, Bytes: pk.BytesCompressed()}, nil
	case Ed25519:
		if len(point) != ed25519.PublicKeySize {
			return PublicKey{}, fmt.Errorf("invalid Ed25519 public key length %d", len(point))
		}
		return PublicKey{Curve: c, Bytes: append([]byte(nil), point...)}, nil
	case BLS12381:
		if _, err := bls12381.ParsePublicKey(point); err != nil {
			return PublicKey{}, fmt.Errorf("%w: %w", ErrBadBLSPublicKey, err)
		}
		return PublicKey{Curve: c, Bytes: append([]byte(nil), point...)}, nil
	}
	return PublicKey{}, fmt.Errorf("unknown curve %v", c)
}
