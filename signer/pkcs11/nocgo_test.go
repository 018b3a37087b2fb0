//go:build !cgo

package pkcs11

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keyward/keyward/signer"
)

func TestStub_ReportsBuiltWithoutPKCS11Support(t *testing.T) {
	ref := "pkcs11:token=t;object=k?module-path=/m.so&pin-value=secret"
	k, err := signer.Open(context.Background(), ref)
	if k != nil || !errors.Is(err, ErrNotSupported) {
		t.Fatalf("Open = %v, %v; want ErrNotSupported", k, err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("error leaks the PIN: %v", err)
	}
	if _, err := CreateKey(context.Background(), ref, signer.Secp256k1); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("CreateKey = %v; want ErrNotSupported", err)
	}
}
