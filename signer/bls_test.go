//go:build cgo

package signer_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/local"
)

func newBLS(t testing.TB) *local.PrivateKey {
	t.Helper()
	k, err := local.Generate(signer.BLS12381)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseCurve_BLSNames(t *testing.T) {
	for _, s := range []string{"bls", "bls12-381", "bls12381", "tz4"} {
		if c, err := signer.ParseCurve(s); err != nil || c != signer.BLS12381 {
			t.Errorf("ParseCurve(%q) = %v, %v", s, c, err)
		}
	}
	if signer.BLS12381.String() != "bls12-381" {
		t.Errorf("String() = %q", signer.BLS12381)
	}
}

func TestSignMessage_SignsUnderTheSchemeAndVerifies(t *testing.T) {
	ctx := context.Background()
	k := newBLS(t)
	pub := k.PublicKey()
	msg := []byte("\x13 an attestation")
	pop, err := signer.SignMessage(ctx, k, signer.BLSProofOfPossession, msg)
	if err != nil || len(pop) != signer.BLSSignatureSize {
		t.Fatalf("pop: %d bytes, %v", len(pop), err)
	}
	aug, err := signer.SignMessage(ctx, k, signer.BLSAugmented, msg)
	if err != nil || len(aug) != signer.BLSSignatureSize {
		t.Fatalf("aug: %d bytes, %v", len(aug), err)
	}
	if bytes.Equal(pop, aug) {
		t.Fatal("the two schemes gave the same signature")
	}
	again, _ := signer.SignMessage(ctx, k, signer.BLSProofOfPossession, msg)
	if !bytes.Equal(again, pop) {
		t.Fatal("BLS signatures are not deterministic")
	}
	for _, tc := range []struct {
		name   string
		scheme signer.BLSScheme
		msg    []byte
		sig    []byte
		want   bool
	}{
		{"pop", signer.BLSProofOfPossession, msg, pop, true},
		{"aug", signer.BLSAugmented, msg, aug, true},
		{"pop signature as aug", signer.BLSAugmented, msg, pop, false},
		{"aug signature as pop", signer.BLSProofOfPossession, msg, aug, false},
		{"other message", signer.BLSProofOfPossession, append(msg, 0), pop, false},
		{"unknown scheme", signer.BLSScheme(9), msg, pop, false},
	} {
		if got := signer.VerifyBLS(pub, tc.scheme, tc.msg, tc.sig); got != tc.want {
			t.Errorf("%s: VerifyBLS = %v", tc.name, got)
		}
	}
	other := newBLS(t).PublicKey()
	if signer.VerifyBLS(other, signer.BLSProofOfPossession, msg, pop) {
		t.Error("verifies for another key")
	}
	if _, err := signer.SignMessage(ctx, k, signer.BLSScheme(9), msg); err == nil {
		t.Error("unknown scheme signed")
	}
}

func TestSignMessage_RefusesNonBLSKeys(t *testing.T) {
	ctx := context.Background()
	for _, c := range []signer.Curve{signer.Secp256k1, signer.P256, signer.Ed25519} {
		k, _ := local.Generate(c)
		if _, err := signer.SignMessage(ctx, k, signer.BLSProofOfPossession, []byte("m")); !errors.Is(err, signer.ErrNotBLSKey) {
			t.Errorf("%v: SignMessage err = %v, want ErrNotBLSKey", c, err)
		}
		if _, err := signer.ProvePossession(ctx, k, nil); !errors.Is(err, signer.ErrNotBLSKey) {
			t.Errorf("%v: ProvePossession err = %v, want ErrNotBLSKey", c, err)
		}
	}
}

func TestSignDigest_RefusesBLSKeys(t *testing.T) {
	ctx := context.Background()
	k := newBLS(t)
	d := make([]byte, 32)
	if _, err := signer.SignDigest(ctx, k, d); !errors.Is(err, signer.ErrNotDigestKey) {
		t.Errorf("SignDigest err = %v, want ErrNotDigestKey", err)
	}
	if _, err := k.Sign(ctx, d); !errors.Is(err, signer.ErrNotDigestKey) {
		t.Errorf("Sign err = %v, want ErrNotDigestKey", err)
	}
	if _, _, err := signer.SignDigestRecoverable(ctx, k, d); err == nil {
		t.Error("SignDigestRecoverable signed with a BLS key")
	}
	if signer.Verify(k.PublicKey(), d, make([]byte, 64)) {
		t.Error("Verify accepted a BLS key")
	}
}

// liar is a BLS backend that returns what it is told to, counting calls.
type liar struct {
	*local.PrivateKey
	sig   []byte
	calls int
}

func (l *liar) SignBLS(context.Context, signer.BLSScheme, []byte) ([]byte, error) {
	l.calls++
	return l.sig, nil
}

func (l *liar) ProvePossession(context.Context, []byte) ([]byte, error) {
	l.calls++
	return l.sig, nil
}

func TestSignMessage_WithholdsSignaturesThatDoNotVerify(t *testing.T) {
	ctx := context.Background()
	k := newBLS(t)
	otherMsg, _ := k.SignBLS(ctx, signer.BLSProofOfPossession, []byte("other"))
	otherKey, _ := newBLS(t).SignBLS(ctx, signer.BLSProofOfPossession, []byte("m"))
	augForPop, _ := k.SignBLS(ctx, signer.BLSAugmented, []byte("m"))
	proofOfOther, _ := k.ProvePossession(ctx, newBLS(t).PublicKey().Bytes)
	for name, sig := range map[string][]byte{
		"other message": otherMsg, "other key": otherKey, "other scheme": augForPop,
		"empty": nil, "garbage": bytes.Repeat([]byte{0xaa}, 96), "identity": append([]byte{0xc0}, make([]byte, 95)...),
	} {
		if _, err := signer.SignMessage(ctx, &liar{PrivateKey: k, sig: sig}, signer.BLSProofOfPossession, []byte("m")); !errors.Is(err, signer.ErrBadSignature) {
			t.Errorf("%s: err = %v, want ErrBadSignature", name, err)
		}
	}
	for name, sig := range map[string][]byte{"a signature, not a proof": otherMsg, "proof of another key": proofOfOther} {
		if _, err := signer.ProvePossession(ctx, &liar{PrivateKey: k, sig: sig}, nil); !errors.Is(err, signer.ErrBadSignature) {
			t.Errorf("%s: err = %v, want ErrBadSignature", name, err)
		}
	}
}

func TestProvePossession_OfItsOwnKeyAndOfAGivenKey(t *testing.T) {
	ctx := context.Background()
	k := newBLS(t)
	pub := k.PublicKey()
	own, err := signer.ProvePossession(ctx, k, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !signer.VerifyPossession(pub, nil, own) || !signer.VerifyPossession(pub, pub.Bytes, own) {
		t.Fatal("own proof does not verify")
	}
	if signer.VerifyBLS(pub, signer.BLSProofOfPossession, pub.Bytes, own) {
		t.Fatal("a proof verifies as a signature (same DST?)")
	}
	other := newBLS(t).PublicKey()
	proof, err := signer.ProvePossession(ctx, k, other.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !signer.VerifyPossession(pub, other.Bytes, proof) {
		t.Fatal("proof over bls_pk does not verify")
	}
	if signer.VerifyPossession(pub, nil, proof) || signer.VerifyPossession(other, nil, proof) {
		t.Fatal("proof over bls_pk verifies for the wrong key")
	}
}

func TestProvePossession_RefusesInvalidKeysBeforeSigning(t *testing.T) {
	ctx := context.Background()
	k := newBLS(t)
	outside, _ := hex.DecodeString("a4c9678ad327129f4388e7f7ff781fc8e98d181add820b79d15facdca422b3ee7fb20f7082a7f9b7c7915053191cb013")
	good := newBLS(t).PublicKey().Bytes
	for name, pk := range map[string][]byte{
		"outside the subgroup": outside,
		"identity":             append([]byte{0xc0}, make([]byte, 47)...),
		"47 bytes":             good[:47],
		"uncompressed flag":    append([]byte{good[0] &^ 0x80}, good[1:]...),
		"empty, not nil":       {},
	} {
		l := &liar{PrivateKey: k}
		if _, err := signer.ProvePossession(ctx, l, pk); !errors.Is(err, signer.ErrBadBLSPublicKey) {
			t.Errorf("%s: err = %v, want ErrBadBLSPublicKey", name, err)
		}
		if l.calls != 0 {
			t.Errorf("%s: the key was asked to sign", name)
		}
	}
	if _, err := signer.PublicKeyFromPoint(signer.BLS12381, outside); !errors.Is(err, signer.ErrBadBLSPublicKey) {
		t.Errorf("PublicKeyFromPoint: err = %v, want ErrBadBLSPublicKey", err)
	}
}

func BenchmarkBLS(b *testing.B) {
	ctx := context.Background()
	k := newBLS(b)
	pub := k.PublicKey()
	msg := bytes.Repeat([]byte{0x13}, 80) // about a tz4 attestation request
	sig, _ := k.SignBLS(ctx, signer.BLSProofOfPossession, msg)
	b.Run("sign", func(b *testing.B) {
		for b.Loop() {
			if _, err := k.SignBLS(ctx, signer.BLSProofOfPossession, msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			if !signer.VerifyBLS(pub, signer.BLSProofOfPossession, msg, sig) {
				b.Fatal("bad")
			}
		}
	})
	b.Run("SignMessage (sign+verify)", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := signer.SignMessage(ctx, k, signer.BLSProofOfPossession, msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("SignMessage parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := signer.SignMessage(ctx, k, signer.BLSProofOfPossession, msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// FuzzPublicKeyFromPoint_BLS: any bytes given as a BLS12-381 public key are
// refused or accepted as a valid point that verifies nothing it did not sign.
func FuzzPublicKeyFromPoint_BLS(f *testing.F) {
	k, _ := local.Generate(signer.BLS12381)
	f.Add(k.PublicKey().Bytes)
	outside, _ := hex.DecodeString("a4c9678ad327129f4388e7f7ff781fc8e98d181add820b79d15facdca422b3ee7fb20f7082a7f9b7c7915053191cb013")
	f.Add(outside)
	f.Add(append([]byte{0xc0}, make([]byte, 47)...))
	f.Add([]byte{})
	sig, _ := k.SignBLS(context.Background(), signer.BLSProofOfPossession, []byte("m"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pub, err := signer.PublicKeyFromPoint(signer.BLS12381, b)
		if err != nil {
			if !errors.Is(err, signer.ErrBadBLSPublicKey) {
				t.Fatalf("error %v is not ErrBadBLSPublicKey", err)
			}
			return
		}
		if !bytes.Equal(pub.Bytes, b) || len(b) != signer.BLSPublicKeySize {
			t.Fatalf("accepted %x as %x", b, pub.Bytes)
		}
		if !bytes.Equal(b, k.PublicKey().Bytes) && signer.VerifyBLS(pub, signer.BLSProofOfPossession, []byte("m"), sig) {
			t.Fatal("another key's signature verifies")
		}
	})
}
