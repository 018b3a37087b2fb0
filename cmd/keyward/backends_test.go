package main

import (
	"context"
	"slices"
	"testing"

	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/watermark"
)

func TestBackends_EveryKeySchemeIsCompiledIn(t *testing.T) {
	if got, want := signer.Schemes(), []string{"awskms", "file", "pkcs11"}; !slices.Equal(got, want) {
		t.Fatalf("key schemes = %v, want %v", got, want)
	}
	s, err := watermark.Open(context.Background(), "file://"+t.TempDir())
	if err != nil {
		t.Fatalf("file watermark store: %v", err)
	}
	s.Close()
}
