// Package ethereum turns Ethereum signing requests (transaction arguments, EIP-191 messages, EIP-712 typed data, clique headers, EIP-7702 authorizations) into digests and encodes secp256k1 signatures with their recovery id.
package ethereum

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/keyward/keyward/signer"
)

// Errors returned by this package. Check with errors.Is / errors.As.
var (
	// ErrInvalidParams matches every *ParamError.
	ErrInvalidParams = errors.New("invalid params")
	// ErrNoRecoveryID means neither recovery id recovers the key's public
	// key from a signature (the backend signed with another key).
	ErrNoRecoveryID = errors.New("ethereum: signature does not recover to the key")
	// ErrNotSecp256k1 means a key of another curve was asked to sign for Ethereum.
	ErrNotSecp256k1 = errors.New("ethereum: key is not secp256k1")
)

// ParamError is a malformed or missing request parameter. Field names the
// parameter as the client spelled it ("nonce", "params[1]", "authorizationList[0].address").
type ParamError struct {
	Field  string
	Reason string
}

func (e *ParamError) Error() string {
	if e.Field == "" {
		return "invalid params: " + e.Reason
	}
	return fmt.Sprintf("invalid params: %s: %s", e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidParams) true.
func (e *ParamError) Is(target error) bool { return target == ErrInvalidParams }

func paramErr(field, format string, args ...any) error {
	return &ParamError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Address returns the Ethereum address of a secp256k1 public key.
func Address(pub signer.PublicKey) (common.Address, error) {
	unc, err := UncompressedKey(pub)
	if err != nil {
		return common.Address{}, err
	}
	return common.BytesToAddress(crypto.Keccak256(unc[1:])[12:]), nil
}

// UncompressedKey returns the 65-byte 0x04||X||Y form of a secp256k1 key.
func UncompressedKey(pub signer.PublicKey) ([]byte, error) {
	if pub.Curve != signer.Secp256k1 {
		return nil, fmt.Errorf("%w: %v", ErrNotSecp256k1, pub.Curve)
	}
	return pub.Uncompressed()
}

// RecoveryID returns v (0 or 1) such that r||s||v recovers pub65 (the
// uncompressed public key) from digest. sig is r||s, already low-S.
func RecoveryID(digest, sig, pub65 []byte) (byte, error) {
	if len(sig) != 64 {
		return 0, fmt.Errorf("%w: signature is %d bytes", ErrNoRecoveryID, len(sig))
	}
	var full [65]byte
	copy(full[:], sig)
	for v := byte(0); v < 2; v++ {
		full[64] = v
		got, err := crypto.Ecrecover(digest, full[:])
		if err == nil && bytes.Equal(got, pub65) {
			return v, nil
		}
	}
	return 0, ErrNoRecoveryID
}

// Sign has k sign digest through signer.SignDigestRecoverable (low-S,
// verified by recovery) and returns the 65-byte r||s||v with v = 0 or 1.
// pub65 is k's uncompressed public key (kept for callers; the signer caches
// its own copy).
func Sign(ctx context.Context, k signer.Key, pub65, digest []byte) ([]byte, error) {
	if k.PublicKey().Curve != signer.Secp256k1 {
		return nil, ErrNotSecp256k1
	}
	// Verified by recovering the key from (r, s, v): one recovery when the
	// backend knows v (local keys), two at most otherwise.
	rs, v, err := signer.SignDigestRecoverable(ctx, k, digest)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 65)
	copy(out, rs)
	out[64] = v
	return out, nil
}
