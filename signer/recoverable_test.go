package signer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"testing"

	gethcrypto "github.com/ethereum/go-ethereum/crypto"

	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/local"
)

// plainKey hides a key's RecoverableKey capability (as KMS and HSM keys lack it).
type plainKey struct{ signer.Key }

// wrongHintKey reports the opposite recovery id.
type wrongHintKey struct{ *local.PrivateKey }

func (k wrongHintKey) SignRecoverable(ctx context.Context, d []byte) ([]byte, byte, error) {
	sig, v, err := k.PrivateKey.SignRecoverable(ctx, d)
	return sig, v ^ 1, err
}

// highSRecoverable returns high-S signatures with the recovery id that
// matches them, as a backend would before normalization.
type highSRecoverable struct{ *local.PrivateKey }

func (k highSRecoverable) SignRecoverable(ctx context.Context, d []byte) ([]byte, byte, error) {
	sig, v, err := k.PrivateKey.SignRecoverable(ctx, d)
	if err != nil {
		return nil, 0, err
	}
	hs, _ := highSKey(k).Sign(ctx, d)
	_ = sig
	return hs, v ^ 1, nil
}

func TestSignDigestRecoverable_RecoversToTheKey(t *testing.T) {
	k, _ := local.Generate(signer.Secp256k1)
	unc, _ := k.PublicKey().Uncompressed()
	keys := map[string]signer.Key{"local": k, "no recovery id": plainKey{k}, "wrong hint": wrongHintKey{k}, "high-S with its id": highSRecoverable{k}}
	for name, key := range keys {
		for i := 0; i < 20; i++ {
			d := sha256.Sum256([]byte{byte(i)})
			sig, v, err := signer.SignDigestRecoverable(context.Background(), key, d[:])
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !signer.IsLowS(signer.Secp256k1, sig) || v > 1 {
				t.Fatalf("%s: high-S or bad v %d", name, v)
			}
			got, err := gethcrypto.Ecrecover(d[:], append(append([]byte{}, sig...), v))
			if err != nil || !bytes.Equal(got, unc) {
				t.Fatalf("%s: (r, s, v) does not recover to the key", name)
			}
		}
	}
}

func TestSignDigestRecoverable_WithholdsBadSignature(t *testing.T) {
	k, _ := local.Generate(signer.Secp256k1)
	if _, _, err := signer.SignDigestRecoverable(context.Background(), plainKey{badKey{k}}, make([]byte, 32)); !errors.Is(err, signer.ErrBadSignature) {
		t.Fatalf("err = %v", err)
	}
	other, _ := local.Generate(signer.Secp256k1)
	if _, _, err := signer.SignDigestRecoverable(context.Background(), otherKey{k, other}, make([]byte, 32)); !errors.Is(err, signer.ErrBadSignature) {
		t.Fatalf("signature by another key: err = %v", err)
	}
	ed, _ := local.Generate(signer.Ed25519)
	if _, _, err := signer.SignDigestRecoverable(context.Background(), ed, make([]byte, 32)); err == nil {
		t.Fatal("an Ed25519 key gave a recoverable signature")
	}
}

// otherKey claims one public key and signs with another key.
type otherKey struct {
	claimed, real *local.PrivateKey
}

func (k otherKey) PublicKey() signer.PublicKey { return k.claimed.PublicKey() }
func (k otherKey) Sign(ctx context.Context, d []byte) ([]byte, error) {
	return k.real.Sign(ctx, d)
}
