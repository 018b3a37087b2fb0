package signer_test

import (
	"context"
	"testing"

	gethcrypto "github.com/ethereum/go-ethereum/crypto"

	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/local"
)

func BenchmarkVerifySecp256k1(b *testing.B) {
	k, _ := local.Generate(signer.Secp256k1)
	d := make([]byte, 32)
	sig, _ := k.Sign(context.Background(), d)
	pub := k.PublicKey()
	b.Run("signer.Verify", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if !signer.Verify(pub, d, sig) {
				b.Fatal("bad")
			}
		}
	})
	b.Run("geth.VerifySignature", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if !gethcrypto.VerifySignature(pub.Bytes, d, sig) {
				b.Fatal("bad")
			}
		}
	})
	b.Run("local.Sign", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			k.Sign(context.Background(), d)
		}
	})
}

func BenchmarkVerifySecp256k1_UncompressedKey(b *testing.B) {
	k, _ := local.Generate(signer.Secp256k1)
	d := make([]byte, 32)
	sig, _ := k.Sign(context.Background(), d)
	unc, _ := k.PublicKey().Uncompressed()
	for i := 0; i < b.N; i++ {
		if !gethcrypto.VerifySignature(unc, d, sig) {
			b.Fatal("bad")
		}
	}
}
