//go:build cgo

package bls12381_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/internal/bls12381"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Octez src/lib_crypto/test/key_encoding_vectors.ml, bls12_381_key_encodings:
// seed given to Bls.generate_key, then the tz4, BLpk and BLsk it encodes to.
var keyEncodings = []struct{ seed, pkh, pk, sk string }{
	{"72fb8a8eec04f982f2da16b99b6a04fe267c9354c3423939b4b8bf956d6ebb90", "tz4TFJdv9Jd44FtBMAxi3KQT7AtazhVyaPa6",
		"BLpk1ur5XXicWYMMzCVZZWyLZhybtyX8Zot2uCzDCZW8KcC5BdZiLVXRZvZzi4GuZYL9SarUvKpE", "BLsk1eGhiPQXKtvvkBeXzmtVVJs6KPhEF45drF7MLjoCDcSnTGuyjL"},
	{"08fc8090db18b88071ba0bba933eed56243d2d179566a1bcc3479cc9c7df2050", "tz4Dyjj4Z2gtQ9TSUTdTsHcd3Z3eBE2HzFb5",
		"BLpk1x47e4TtzgBSUEeoahw3BgoDghPhCFTNwUxVtGrqF58Y9vrj2SdCDamNRpj66e6wQKXzfBRk", "BLsk1fDMA5xVZA59YJojdZ3hZMYBtt8HUhn9uGWkwHRirH1L45GtWt"},
	{"7d87e0cf2c74957b7dd2260679468f8f54ff00d3b937d3d9b32d66ebe73f67a3", "tz4NhiAC3w3PjbQ98CgHGJoio5rSynDHNqiP",
		"BLpk1p9AGKVCAGq5D6qoMsYwqGpefnz7vfmQMrU75rEjsNpj8L6VMyiwBs2mdUo2t7GGZpEbNwZu", "BLsk2iUavBozFrCLSM7X5UXLzkDx39sDEHkJJUTYaEgWxbLRrtvyNf"},
	{"bcf77d6bf16cc2799bc1de55720ed599252729a1e71e30351e6bd313b561a4ea", "tz4Dt6fB8UNdSChkPDFEKLcGGQz3YBuDq998",
		"BLpk1qC82vRoYQMkAFT94Bjtw7kzxmxisowcjJh6oXbZDaFLbFZ7dtGRoNWUhbMF7CvWSpxwkgun", "BLsk1dPDxKE5dxFYoE9aqMejGyiPWkzc2CcPaqAB9a4eFmDQNqK9Q7"},
	{"980620d47bdd003c3622d955f0274cee64384bfc7a6c2f2ab8985f2bda2c2343", "tz4ApzyLB8EHgzbejLSJtFSivNGnER8dWQcS",
		"BLpk1yLTeYPhNat6LiySqEEQdYaKdDb6RMjczbpXZaywySDqXy4CnEr8aiWPtS3FeT1mnmQ6E9DL", "BLsk2wkrpV3XGKRoDgN9ZPyCqKvFGBLLRewJPsG8AdM7arS9YTxPmW"},
	{"f41ddac1d11c01bbcc4238897c6dc61a85c5ae1c0ca21168a45cc4ac0c9910f9", "tz4Wd2VUBGR6SsqV9LxtUee2M8FHeHUEtH62",
		"BLpk1psQKXTXbmXk3PZmzeXLrvpixkUr8HgwpuqyBnHHTm62D8pEYDftbQNV3oZpqDsZyaTixChg", "BLsk2hhrgwqPgAhEYygupCE5fwyQW8So3WYMeQva4DdeHk8e4GxMek"},
}

func TestKeyGen_MatchesOctezKeyEncodingVectors(t *testing.T) {
	for _, v := range keyEncodings {
		t.Run(v.pkh, func(t *testing.T) {
			k, err := bls12381.KeyGen(unhex(t, v.seed))
			if err != nil {
				t.Fatal(err)
			}
			if sk, _ := tezos.EncodeSecretKey(signer.BLS12381, k.LE()); sk != v.sk {
				t.Errorf("secret %s, want %s", sk, v.sk)
			}
			pub := signer.PublicKey{Curve: signer.BLS12381, Bytes: k.PublicKey()}
			if pk, _ := tezos.EncodePublicKey(pub); pk != v.pk {
				t.Errorf("public key %s, want %s", pk, v.pk)
			}
			if pkh, _ := tezos.PublicKeyHash(pub); pkh != v.pkh {
				t.Errorf("address %s, want %s", pkh, v.pkh)
			}
			// The BLsk bytes give the same key back.
			_, le, err := tezos.ParseSecretKey(v.sk)
			if err != nil {
				t.Fatal(err)
			}
			k2, err := bls12381.SecretKeyFromLE(le)
			if err != nil || !bytes.Equal(k2.PublicKey(), k.PublicKey()) {
				t.Fatalf("SecretKeyFromLE: %v", err)
			}
		})
	}
}

type vector struct{ msg, ikm, want []byte }

func readVectors(t *testing.T, glob string) []vector {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", glob))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test vectors %s: %v", glob, err)
	}
	var out []vector
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			cols := strings.Fields(sc.Text())
			if len(cols) != 3 {
				continue
			}
			v := vector{unhex(t, cols[0]), unhex(t, cols[1]), unhex(t, cols[2])}
			if len(v.ikm) >= 32 { // Octez skips shorter ikm (generate_sk refuses them)
				out = append(out, v)
			}
		}
		fh.Close()
	}
	if len(out) == 0 {
		t.Fatalf("no usable vectors in %s", glob)
	}
	return out
}

// TestSign_MatchesOctezBlstVectors checks signing and verification against
// the vectors Octez's own BLS tests use, for each ciphersuite keyward signs with.
func TestSign_MatchesOctezBlstVectors(t *testing.T) {
	for _, tc := range []struct {
		name, glob string
		dst        []byte
		aug, proof bool
	}{
		{"pop sign", "sig_g2_pop_*", bls12381.DSTPop, false, false},
		{"aug sign", "sig_g2_aug_*", bls12381.DSTAug, true, false},
		{"pop_prove", "pop_g2_*", bls12381.DSTProof, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs := readVectors(t, tc.glob)
			for i, v := range vs {
				k, err := bls12381.KeyGen(v.ikm)
				if err != nil {
					t.Fatal(err)
				}
				var aug []byte
				msg := v.msg
				if tc.aug {
					aug = k.PublicKey()
				}
				if tc.proof {
					msg = k.PublicKey()
				}
				got := k.Sign(aug, msg, tc.dst)
				if !bytes.Equal(got, v.want) {
					t.Fatalf("vector %d: signature %x, want %x", i, got, v.want)
				}
				pk, err := bls12381.ParsePublicKey(k.PublicKey())
				if err != nil {
					t.Fatal(err)
				}
				if !pk.Verify(aug, msg, got, tc.dst) {
					t.Fatalf("vector %d: does not verify", i)
				}
				if pk.Verify(aug, append(msg, 0), got, tc.dst) {
					t.Fatalf("vector %d: verifies for another message", i)
				}
			}
			t.Logf("%d vectors", len(vs))
		})
	}
}

// Points on the curve outside the prime-order subgroup, from Octez's
// test_signature.ml (pk_not_in_subgroup, signature_not_in_subgroup).
var (
	pkNotInSubgroup = []string{
		"a4c9678ad327129f4388e7f7ff781fc8e98d181add820b79d15facdca422b3ee7fb20f7082a7f9b7c7915053191cb013",
		"97ae9b4dc6a05cda8bc833dfb983e41423d224bbf6954ce4721a50364a2b37643e18a276ce19b07b83a333f90e2de6c2",
		"b1be8c9f94c1435227b9a18fb57a6d9932c1670d16c514d2d9d67839cc0cc19afdcd114d6e06bf8eb8394061bf880bd4",
		"b173357ce7e2340dc64c6a5633e6800683fb0a6c0f4af92b383425bd76d915819252ac9459e79a1bae530ea0145338cb",
		"a53944773013669c2722949399322703c0b92d877e52b95e0309bdf286d8290314763d61952d6812da50c1826bcaf4c3",
		"8fd2557441f4076917ffe8dfb0e12270994351661600e72f48fe654198199f6cc625a041ce3c9b7c765b32cb53e77192",
	}
	sigNotInSubgroup = []string{
		"a7da246233ad216e60ee03070a0916154ae9f9dc23310c1191dfb4e277fc757f58a5cf5bdf7a9f322775143c37539cb90798205fd56217b682d5656f7ac7bc0da111dee59d3f863f1b040be659eda7941afb9f1bc5d0fe2beb5e2385e2cfe9ee",
		"b112717bbcd089ea99e8216eab455ea5cd462b0b3e3530303b83477f8e1bb7abca269fec10b3eb998f7f6fd1799d58ff11ed0a53bf75f91d2bf73d11bd52d061f401ac6a6ec0ef4a163e480bac85e75b97cb556f500057b9ef4b28bfe196791d",
		"86e5fa411047d9632c95747bea64d973757904c935ac0741b9eeefa2c7c4e439baf1d2c1e8633ba6c884ed9fdf1ffbdd129a32c046f355c5126254973115d6df32904498db6ca959d5bf1869f235be4c0e60fc334ed493f864476907cadfef2c",
	}
)

func TestParsePublicKey_RefusesInvalidPoints(t *testing.T) {
	k, _ := bls12381.KeyGen(bytes.Repeat([]byte{1}, 32))
	good := k.PublicKey()
	uncompressedFlagCleared := append([]byte(nil), good...)
	uncompressedFlagCleared[0] &^= 0x80
	identity := append([]byte{0xc0}, make([]byte, 47)...)
	cases := map[string][]byte{
		"empty":               nil,
		"47 bytes":            good[:47],
		"49 bytes":            append(append([]byte(nil), good...), 0),
		"identity":            identity,
		"compression flag":    uncompressedFlagCleared,
		"x not on the curve":  append([]byte{0x80}, bytes.Repeat([]byte{0}, 46)...),
		"x above the modulus": append([]byte{0x9f}, bytes.Repeat([]byte{0xff}, 47)...),
	}
	for i, h := range pkNotInSubgroup {
		cases["outside the subgroup "+string(rune('a'+i))] = unhex(t, h)
	}
	for name, b := range cases {
		if _, err := bls12381.ParsePublicKey(b); !errors.Is(err, bls12381.ErrBadPublicKey) {
			t.Errorf("%s: err = %v, want ErrBadPublicKey", name, err)
		}
	}
	if _, err := bls12381.ParsePublicKey(good); err != nil {
		t.Fatalf("valid key refused: %v", err)
	}
}

func TestVerify_RefusesSignaturesOutsideTheSubgroup(t *testing.T) {
	k, _ := bls12381.KeyGen(bytes.Repeat([]byte{2}, 32))
	pk, _ := bls12381.ParsePublicKey(k.PublicKey())
	msg := []byte("Hello")
	for _, h := range sigNotInSubgroup {
		if pk.Verify(nil, msg, unhex(t, h), bls12381.DSTPop) {
			t.Errorf("signature %s… outside G2's subgroup verified", h[:16])
		}
	}
	sig := k.Sign(nil, msg, bls12381.DSTPop)
	for name, s := range map[string][]byte{"short": sig[:95], "other DST": k.Sign(nil, msg, bls12381.DSTAug), "identity": append([]byte{0xc0}, make([]byte, 95)...)} {
		if pk.Verify(nil, msg, s, bls12381.DSTPop) {
			t.Errorf("%s signature verified", name)
		}
	}
}

func TestSecretKeyFromLE_RefusesOutOfRangeScalars(t *testing.T) {
	// r, the order of G1 and G2, little-endian.
	r := unhex(t, "73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001")
	le := func(be []byte) []byte {
		out := make([]byte, len(be))
		for i := range be {
			out[i] = be[len(be)-1-i]
		}
		return out
	}
	rMinus1 := append([]byte(nil), r...)
	rMinus1[31]--
	for name, tc := range map[string]struct {
		le []byte
		ok bool
	}{
		"zero":    {make([]byte, 32), false},
		"r":       {le(r), false},
		"all ff":  {bytes.Repeat([]byte{0xff}, 32), false},
		"31 byte": {make([]byte, 31), false},
		"one":     {append([]byte{1}, make([]byte, 31)...), true},
		"r-1":     {le(rMinus1), true},
	} {
		k, err := bls12381.SecretKeyFromLE(tc.le)
		if tc.ok != (err == nil) {
			t.Errorf("%s: err = %v", name, err)
		}
		if err == nil && !bytes.Equal(k.LE(), tc.le) {
			t.Errorf("%s: LE() = %x, want %x", name, k.LE(), tc.le)
		}
		if err != nil && !errors.Is(err, bls12381.ErrBadSecret) {
			t.Errorf("%s: err = %v, want ErrBadSecret", name, err)
		}
	}
}
