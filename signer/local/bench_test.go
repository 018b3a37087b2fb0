package local

import (
	"context"
	"testing"

	"github.com/keyward/keyward/signer"
)

func benchSign(b *testing.B, c signer.Curve) {
	k, err := Generate(c)
	if err != nil {
		b.Fatal(err)
	}
	d := digest("bench")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Sign(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSign_Secp256k1(b *testing.B) { benchSign(b, signer.Secp256k1) }
func BenchmarkSign_P256(b *testing.B)      { benchSign(b, signer.P256) }
func BenchmarkSign_Ed25519(b *testing.B)   { benchSign(b, signer.Ed25519) }

func BenchmarkSignParallel_Secp256k1(b *testing.B) {
	k, err := Generate(signer.Secp256k1)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		d := digest("parallel")
		for pb.Next() {
			d[0]++
			if _, err := k.Sign(ctx, d); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkSignDigest_Secp256k1 is the full per-signature cost keyward pays:
// sign, low-S normalization and verification against the public key.
func BenchmarkSignDigest_Secp256k1(b *testing.B) {
	k, err := Generate(signer.Secp256k1)
	if err != nil {
		b.Fatal(err)
	}
	d := digest("bench")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := signer.SignDigest(ctx, k, d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadKeyFile measures start-up cost per key (scrypt N=2^15, r=8).
func BenchmarkLoadKeyFile(b *testing.B) {
	k, _ := Generate(signer.Secp256k1)
	path := b.TempDir() + "/k.json"
	if err := WriteKeyFile(context.Background(), path, k, WriteOptions{Passphrase: []byte("pw")}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := LoadKeyFile(context.Background(), path, []byte("pw")); err != nil {
			b.Fatal(err)
		}
	}
}
