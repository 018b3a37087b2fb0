//go:build !cgo

package pkcs11

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testutil"
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

// TestStub_BinaryReportsBuiltWithoutPKCS11Support builds keyward without cgo
// (this test only runs under CGO_ENABLED=0, which the build inherits) and
// opens a pkcs11: key with it.
func TestStub_BinaryReportsBuiltWithoutPKCS11Support(t *testing.T) {
	if testing.Short() && !testutil.InCI() {
		t.Skip("builds the binary")
	}
	out, err := testutil.Run(t, nil, "keys", "show", "pkcs11:token=t;object=k?module-path=/m.so&pin-value=secret")
	if err == nil {
		t.Fatalf("keys show succeeded:\n%s", out)
	}
	if !strings.Contains(out, ErrNotSupported.Error()) || strings.Contains(out, "secret") {
		t.Fatalf("output does not report the missing support (or leaks the PIN):\n%s", out)
	}
}
