//go:build !cgo

package local

import (
	"errors"
	"testing"

	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/internal/bls12381"
)

func TestBLS_NeedsCgo(t *testing.T) {
	if _, err := Generate(signer.BLS12381); !errors.Is(err, bls12381.ErrUnavailable) {
		t.Errorf("Generate: err = %v, want bls12381.ErrUnavailable", err)
	}
	if _, err := NewPrivateKey(signer.BLS12381, make([]byte, 32)); !errors.Is(err, bls12381.ErrUnavailable) {
		t.Errorf("NewPrivateKey: err = %v, want bls12381.ErrUnavailable", err)
	}
}
