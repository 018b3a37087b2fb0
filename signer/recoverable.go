package signer

import (
	"bytes"
	"context"
	"fmt"

	gethcrypto "github.com/ethereum/go-ethereum/crypto"
)

// RecoveryUnknown is the recovery id a RecoverableKey returns when it cannot
// tell (a backend that signs without one).
const RecoveryUnknown = 0xff

// RecoverableKey is an optional capability of secp256k1 keys that learn the
// recovery id (the parity of R) while signing, as libsecp256k1 does. It
// spares one public-key recovery per Ethereum signature.
type RecoverableKey interface {
	// SignRecoverable is Sign plus the recovery id (0 or 1) of the returned
	// r||s, or RecoveryUnknown.
	SignRecoverable(ctx context.Context, digest []byte) (sig []byte, recid byte, err error)
}

// SignDigestRecoverable is SignDigest for secp256k1 keys that also returns
// the recovery id of the low-S signature, as Ethereum needs it. The
// signature is verified by recovering the public key from (r, s, v) and
// comparing it with the key's: a recovered key equal to the key's own is a
// verification of the signature. The backend's recovery id is only a hint
// (it is flipped with S by low-S normalization); when it is missing or
// wrong the other id is tried, and a signature that recovers to neither is
// ErrBadSignature.
func SignDigestRecoverable(ctx context.Context, k Key, digest []byte) ([]byte, byte, error) {
	if len(digest) != 32 {
		return nil, 0, ErrBadDigest
	}
	pub := k.PublicKey()
	if pub.Curve != Secp256k1 {
		return nil, 0, fmt.Errorf("recoverable signatures need a secp256k1 key, not %v", pub.Curve)
	}
	var sig []byte
	hint := byte(RecoveryUnknown)
	var err error
	if rk, ok := k.(RecoverableKey); ok {
		sig, hint, err = rk.SignRecoverable(ctx, digest)
	} else {
		sig, err = k.Sign(ctx, digest)
	}
	if err != nil {
		return nil, 0, err
	}
	low, err := NormalizeLowS(Secp256k1, sig)
	if err != nil {
		return nil, 0, err
	}
	if hint <= 1 && !bytes.Equal(low[32:], sig[32:]) {
		hint ^= 1 // s → n-s mirrors R
	}
	unc, err := ownUncompressed(pub)
	if err != nil {
		return nil, 0, err
	}
	order := [2]byte{0, 1}
	if hint == 1 {
		order = [2]byte{1, 0}
	}
	var full [65]byte
	copy(full[:], low)
	for _, v := range order {
		full[64] = v
		got, err := gethcrypto.Ecrecover(digest, full[:])
		if err == nil && bytes.Equal(got, unc) {
			return low, v, nil
		}
	}
	return nil, 0, ErrBadSignature
}

// ownUncompressed returns the cached uncompressed point of one of keyward's
// own secp256k1 keys.
func ownUncompressed(pub PublicKey) ([]byte, error) {
	if u, ok := ownKeys.Load(string(pub.Bytes)); ok {
		return u.([]byte), nil
	}
	u, err := pub.Uncompressed()
	if err != nil {
		return nil, err
	}
	v, _ := ownKeys.LoadOrStore(string(pub.Bytes), u)
	return v.([]byte), nil
}
