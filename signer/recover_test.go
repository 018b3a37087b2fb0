package signer_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"math/big"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/local"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rfc6979P256 are the P-256 vectors of RFC 6979 A.2.5 (key x =
// C9AFA9D8…0F6721). The recovery id is the parity of R = k·G, computed with
// crypto/ecdh from the vector's k, so it does not come from the code under
// test; negating s negates R and flips the id.
var rfc6979P256 = []struct {
	name   string
	digest func() []byte
	k, r   string
	s      string
}{
	{"SHA-256 sample", func() []byte { d := sha256.Sum256([]byte("sample")); return d[:] },
		"A6E3C57DD01ABE90086538398355DD4C3B17AA873382B0F24D6129493D8AAD60",
		"EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716",
		"F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8"},
	{"SHA-256 test", func() []byte { d := sha256.Sum256([]byte("test")); return d[:] },
		"D16B6AE827F17175E040871A1C7EC3500192C4C92677336EC2537ACAEE0008E0",
		"F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367",
		"019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083"},
	{"SHA-512 sample (leftmost 256 bits)", func() []byte { d := sha512.Sum512([]byte("sample")); return d[:32] },
		"5FA81C63109BADB88C1F367B47DA606DA28CAD69AA22C4FE6AD7DF73A7173AA5",
		"8496A60B5E9B47C825488827E0495B0E3FA109EC4568FD3F8D1097678EB97F00",
		"2362AB1ADBE2B8ADF9CB9EDAB740EA6049C028114F2460F96554F61FAE3302FE"},
}

const rfc6979P256Pub = "0460FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6" +
	"7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299"

func TestRecover_P256KnownVectors(t *testing.T) {
	want, err := signer.PublicKeyFromPoint(signer.P256, unhex(t, rfc6979P256Pub))
	if err != nil {
		t.Fatal(err)
	}
	n := p256N()
	for _, v := range rfc6979P256 {
		kp, err := ecdh.P256().NewPrivateKey(unhex(t, v.k))
		if err != nil {
			t.Fatal(err)
		}
		R := kp.PublicKey().Bytes()
		if !bytes.Equal(R[1:33], unhex(t, v.r)) {
			t.Fatalf("%s: vector's R.x is not r", v.name)
		}
		s := new(big.Int).SetBytes(unhex(t, v.s))
		for _, negate := range []bool{false, true} {
			id := R[64] & 1
			ss := new(big.Int).Set(s)
			if negate {
				ss.Sub(n, ss)
				id ^= 1
			}
			sig := append(unhex(t, v.r), ss.FillBytes(make([]byte, 32))...)
			d := v.digest()
			if !signer.Verify(want, d, sig) {
				t.Fatalf("%s: vector does not verify", v.name)
			}
			got, err := signer.Recover(signer.P256, d, sig, id)
			if err != nil || !bytes.Equal(got.Bytes, want.Bytes) {
				t.Fatalf("%s (negated %v) id %d: got %x, %v; want the vector's key", v.name, negate, id, got.Bytes, err)
			}
			all := signer.RecoverPublicKeys(signer.P256, d, sig)
			if len(all) != 2 || !bytes.Equal(all[id].Bytes, want.Bytes) {
				t.Fatalf("%s: RecoverPublicKeys = %d keys, want 2 with the vector's at %d", v.name, len(all), id)
			}
		}
	}
}

// TestRecover_WrongRecoveryIDGivesAnotherKey: the other parity recovers a
// key that verifies the signature but is not the signer's; ids 2 and 3 (R.x
// = r+n) have no point for a real signature, and ids above 3 do not exist.
func TestRecover_WrongRecoveryIDGivesAnotherKey(t *testing.T) {
	for _, c := range []signer.Curve{signer.Secp256k1, signer.P256} {
		k, err := local.Generate(c)
		if err != nil {
			t.Fatal(err)
		}
		pub := k.PublicKey()
		for i := 0; i < 20; i++ {
			d := sha256.Sum256([]byte{byte(c), byte(i)})
			sig, err := signer.SignDigest(context.Background(), k, d[:])
			if err != nil {
				t.Fatal(err)
			}
			var right []byte
			for id := byte(0); id < 2; id++ {
				got, err := signer.Recover(c, d[:], sig, id)
				if err != nil {
					t.Fatalf("%v id %d: %v", c, id, err)
				}
				if !signer.Verify(got, d[:], sig) {
					t.Fatalf("%v id %d: recovered key does not verify the signature", c, id)
				}
				if bytes.Equal(got.Bytes, pub.Bytes) {
					if right != nil {
						t.Fatalf("%v: both ids recover the signer's key", c)
					}
					right = got.Bytes
				}
			}
			if right == nil {
				t.Fatalf("%v: no id recovers the signer's key", c)
			}
			for _, id := range []byte{2, 3, 4, 27, 255} {
				if _, err := signer.Recover(c, d[:], sig, id); !errors.Is(err, signer.ErrNotRecoverable) {
					t.Fatalf("%v id %d: err = %v, want ErrNotRecoverable", c, id, err)
				}
			}
		}
	}
}

func TestRecover_RefusesMalformedSignatures(t *testing.T) {
	scalar := func(n *big.Int) []byte { return n.FillBytes(make([]byte, 32)) }
	one := scalar(big.NewInt(1))
	zero := make([]byte, 32)
	orders := map[signer.Curve]*big.Int{signer.Secp256k1: secp256k1.Params().N, signer.P256: p256N()}
	// x coordinates with no point on the curve (x³+ax+b is not a square).
	offCurve := map[signer.Curve][]byte{signer.Secp256k1: scalar(big.NewInt(5)), signer.P256: scalar(big.NewInt(1))}
	digest := make([]byte, 32)
	digest[31] = 1
	for c, n := range orders {
		cases := []struct {
			name string
			sig  []byte
		}{
			{"r = 0", append(append([]byte{}, zero...), one...)},
			{"s = 0", append(append([]byte{}, one...), zero...)},
			{"r = n", append(scalar(n), one...)},
			{"s = n", append(append([]byte{}, one...), scalar(n)...)},
			{"r is no point's x", append(append([]byte{}, offCurve[c]...), one...)},
			{"63 bytes", make([]byte, 63)},
			{"65 bytes", append(append(append([]byte{}, one...), one...), 0)},
		}
		for _, tc := range cases {
			for id := byte(0); id < 4; id++ {
				if pub, err := signer.Recover(c, digest, tc.sig, id); !errors.Is(err, signer.ErrNotRecoverable) {
					t.Errorf("%v %s id %d: got %x, %v; want ErrNotRecoverable", c, tc.name, id, pub.Bytes, err)
				}
			}
			if got := signer.RecoverPublicKeys(c, digest, tc.sig); len(got) != 0 {
				t.Errorf("%v %s: RecoverPublicKeys returned %d keys", c, tc.name, len(got))
			}
		}
		if _, err := signer.Recover(c, digest[:31], append(append([]byte{}, one...), one...), 0); !errors.Is(err, signer.ErrBadDigest) {
			t.Errorf("%v 31-byte digest: err = %v, want ErrBadDigest", c, err)
		}
	}
	if _, err := signer.Recover(signer.Ed25519, digest, make([]byte, 64), 0); !errors.Is(err, signer.ErrNotRecoverable) {
		t.Errorf("Ed25519: err = %v, want ErrNotRecoverable", err)
	}
}

func TestPublicKeyFromPoint_P256RefusesPointsOffTheCurve(t *testing.T) {
	good := unhex(t, rfc6979P256Pub)
	offY := append([]byte{}, good...)
	offY[64] ^= 1
	offX := append([]byte{2}, make([]byte, 32)...)
	offX[32] = 1 // x = 1 is no point's x
	cases := map[string][]byte{
		"y off the curve":            offY,
		"compressed x off":           offX,
		"point at infinity":          {0},
		"bad prefix":                 append([]byte{5}, good[1:]...),
		"compressed prefix, 65 long": append([]byte{2}, good[1:]...),
		"truncated":                  good[:64],
		"x above the field prime":    append([]byte{2}, bytes.Repeat([]byte{0xff}, 32)...),
	}
	for name, b := range cases {
		if _, err := signer.PublicKeyFromPoint(signer.P256, b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := (signer.PublicKey{Curve: signer.P256, Bytes: offX}).Uncompressed(); err == nil {
		t.Error("Uncompressed accepted a compressed point off the curve")
	}
}

// TestPublicKey_P256MatchesCryptoECDH checks point compression and
// decompression against the standard library's encoding of the same keys.
func TestPublicKey_P256MatchesCryptoECDH(t *testing.T) {
	for i := 0; i < 20; i++ {
		sk, err := ecdh.P256().GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		unc := sk.PublicKey().Bytes()
		pub, err := signer.PublicKeyFromPoint(signer.P256, unc)
		if err != nil {
			t.Fatal(err)
		}
		if len(pub.Bytes) != 33 || pub.Bytes[0] != 2+unc[64]&1 || !bytes.Equal(pub.Bytes[1:], unc[1:33]) {
			t.Fatalf("compressed %x from %x", pub.Bytes, unc)
		}
		back, err := pub.Uncompressed()
		if err != nil || !bytes.Equal(back, unc) {
			t.Fatalf("uncompressed %x, %v; want %x", back, err, unc)
		}
		again, err := signer.PublicKeyFromPoint(signer.P256, pub.Bytes)
		if err != nil || !bytes.Equal(again.Bytes, pub.Bytes) {
			t.Fatalf("compressed round trip: %x, %v", again.Bytes, err)
		}
		if _, err := pub.ECDSA(); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzRecoverPublicKeys: any digest and signature give only keys for which
// the signature verifies (checked by crypto/ecdsa and libsecp256k1), and
// never a panic.
func FuzzRecoverPublicKeys(f *testing.F) {
	for _, v := range rfc6979P256 {
		f.Add(false, v.digest(), append(unhex(f, v.r), unhex(f, v.s)...))
	}
	k, _ := local.Generate(signer.Secp256k1)
	d := sha256.Sum256([]byte("seed"))
	sig, _ := signer.SignDigest(context.Background(), k, d[:])
	f.Add(true, d[:], sig)
	f.Add(true, make([]byte, 32), make([]byte, 64))
	f.Fuzz(func(t *testing.T, secp bool, digest, sig []byte) {
		c := signer.P256
		if secp {
			c = signer.Secp256k1
		}
		for _, pub := range signer.RecoverPublicKeys(c, digest, sig) {
			if !signer.Verify(pub, digest, sig) {
				t.Fatalf("%v: recovered %x does not verify %x over %x", c, pub.Bytes, sig, digest)
			}
		}
	})
}
