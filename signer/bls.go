package signer

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/keyward/keyward/signer/internal/bls12381"
)

// BLSScheme selects the BLS signature scheme (Octez signature_v1..v3).
type BLSScheme uint8

// The BLS schemes of Octez's MinPk instantiation.
const (
	// BLSProofOfPossession is MinPk.Pop.sign, DST
	// BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_ (signature versions 2, 3
	// and the default).
	BLSProofOfPossession BLSScheme = iota
	// BLSAugmented is MinPk.Aug.sign: the compressed public key is prefixed
	// to the message, DST BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_AUG_
	// (signature version 1).
	BLSAugmented
)

func (s BLSScheme) String() string {
	switch s {
	case BLSProofOfPossession:
		return "pop"
	case BLSAugmented:
		return "aug"
	}
	return fmt.Sprintf("BLSScheme(%d)", uint8(s))
}

// dst returns the scheme's ciphersuite and whether the public key augments
// the message.
func (s BLSScheme) dst() (dst []byte, augmented bool, err error) {
	switch s {
	case BLSProofOfPossession:
		return bls12381.DSTPop, false, nil
	case BLSAugmented:
		return bls12381.DSTAug, true, nil
	}
	return nil, false, fmt.Errorf("signer: unknown BLS scheme %v", s)
}

// Sizes of BLS12-381 encodings.
const (
	BLSPublicKeySize = bls12381.PublicKeySize // compressed G1 point
	BLSSignatureSize = bls12381.SignatureSize // compressed G2 point
)

// Errors about BLS keys. Check with errors.Is.
var (
	// ErrNotBLSKey means a BLS operation was asked of a key that is not a
	// BLS12-381 key (those sign digests through SignDigest).
	ErrNotBLSKey = errors.New("not a BLS12-381 key")
	// ErrNotDigestKey means a digest was given to a BLS12-381 key, which
	// signs whole messages (SignMessage).
	ErrNotDigestKey = errors.New("BLS12-381 keys sign whole messages, not digests")
	// ErrBadBLSPublicKey means bytes are not a valid BLS12-381 public key:
	// not a canonical compressed G1 point, outside the prime-order
	// subgroup, or the identity.
	ErrBadBLSPublicKey = errors.New("invalid BLS12-381 public key")
)

// BLSKey is the capability of keys that sign whole messages with BLS.
type BLSKey interface {
	Key
	// SignBLS signs msg under scheme (for BLSAugmented, the key's public
	// key prefixed to msg) and returns the 96-byte compressed G2 signature.
	SignBLS(ctx context.Context, scheme BLSScheme, msg []byte) ([]byte, error)
	// ProvePossession returns MinPk.Pop.pop_prove over pk (nil: the key's
	// own compressed public key) under DST
	// BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_, 96 bytes.
	ProvePossession(ctx context.Context, pk []byte) ([]byte, error)
}

func blsKey(k Key) (BLSKey, PublicKey, error) {
	pub := k.PublicKey()
	if pub.Curve != BLS12381 {
		return nil, pub, fmt.Errorf("%w: the key is %v", ErrNotBLSKey, pub.Curve)
	}
	bk, ok := k.(BLSKey)
	if !ok {
		return nil, pub, fmt.Errorf("%w: its backend does not sign BLS messages", ErrNotBLSKey)
	}
	return bk, pub, nil
}

// SignMessage is the one path out for BLS signatures: it signs msg with k's
// scheme and verifies the signature with a pairing check before returning.
// Non-BLS keys get an error (they sign digests through SignDigest).
func SignMessage(ctx context.Context, k Key, scheme BLSScheme, msg []byte) ([]byte, error) {
	bk, pub, err := blsKey(k)
	if err != nil {
		return nil, err
	}
	dst, augmented, err := scheme.dst()
	if err != nil {
		return nil, err
	}
	pk, err := ownBLSKey(pub)
	if err != nil {
		return nil, err
	}
	var aug []byte
	if augmented {
		aug = pub.Bytes
	}
	// The public-key half of the pairing check (hashing msg to G2, a Miller
	// loop) does not need the signature: it runs while the key signs.
	prepared := make(chan *bls12381.Prepared, 1)
	go func() { prepared <- pk.Prepare(aug, msg, dst) }()
	sig, err := bk.SignBLS(ctx, scheme, msg)
	check := <-prepared
	if err != nil {
		return nil, err
	}
	if !check.Check(sig) {
		return nil, ErrBadSignature
	}
	return sig, nil
}

// ProvePossession has k prove possession of pk (nil: its own key) and
// verifies the proof. A pk that is not a valid BLS12-381 public key is
// refused with ErrBadBLSPublicKey before k is asked.
func ProvePossession(ctx context.Context, k Key, pk []byte) ([]byte, error) {
	bk, pub, err := blsKey(k)
	if err != nil {
		return nil, err
	}
	if pk != nil {
		if _, err := bls12381.ParsePublicKey(pk); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadBLSPublicKey, err)
		}
	}
	proof, err := bk.ProvePossession(ctx, pk)
	if err != nil {
		return nil, err
	}
	own, err := ownBLSKey(pub)
	if err != nil {
		return nil, err
	}
	if pk == nil {
		pk = pub.Bytes
	}
	if !own.Verify(nil, pk, proof, bls12381.DSTProof) {
		return nil, ErrBadSignature
	}
	return proof, nil
}

// VerifyBLS checks sig over msg with scheme (for BLSAugmented, pub's bytes
// prefixed to msg). It is false for a pub that is not a valid BLS12-381 key.
func VerifyBLS(pub PublicKey, scheme BLSScheme, msg, sig []byte) bool {
	dst, augmented, err := scheme.dst()
	if err != nil || pub.Curve != BLS12381 {
		return false
	}
	pk, err := bls12381.ParsePublicKey(pub.Bytes)
	if err != nil {
		return false
	}
	var aug []byte
	if augmented {
		aug = pub.Bytes
	}
	return pk.Verify(aug, msg, sig, dst)
}

// VerifyPossession checks a proof that pub's secret possesses pk (nil:
// pub's own key), with MinPk.Pop.pop_verify semantics.
func VerifyPossession(pub PublicKey, pk, proof []byte) bool {
	if pub.Curve != BLS12381 {
		return false
	}
	p, err := bls12381.ParsePublicKey(pub.Bytes)
	if err != nil {
		return false
	}
	if pk == nil {
		pk = pub.Bytes
	}
	return p.Verify(nil, pk, proof, bls12381.DSTProof)
}

// ownBLS caches the decoded, subgroup-checked points of keyward's own BLS
// keys (bounded by the configured keys; never filled from client input).
var ownBLS sync.Map // string(compressed) → *bls12381.PublicKey

func ownBLSKey(pub PublicKey) (*bls12381.PublicKey, error) {
	if v, ok := ownBLS.Load(string(pub.Bytes)); ok {
		return v.(*bls12381.PublicKey), nil
	}
	pk, err := bls12381.ParsePublicKey(pub.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadBLSPublicKey, err)
	}
	v, _ := ownBLS.LoadOrStore(string(pub.Bytes), pk)
	return v.(*bls12381.PublicKey), nil
}
