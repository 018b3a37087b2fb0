package octezkey

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/local"
)

type octezVector struct {
	Name       string `json:"name"`
	Secret     string `json:"secret"`
	Passphrase string `json:"passphrase"`
	Decrypted  string `json:"decrypted"`
	PK         string `json:"pk"`
	PKH        string `json:"pkh"`
}

func loadOctezVectors(t testing.TB) []octezVector {
	t.Helper()
	raw, err := os.ReadFile("testdata/octez_keys.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Keys []octezVector `json:"keys"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	return f.Keys
}

func staticPassphrase(p string) func() ([]byte, error) {
	return func() ([]byte, error) { return []byte(p), nil }
}

func noPassphrase(t *testing.T) func() ([]byte, error) {
	return func() ([]byte, error) {
		t.Error("passphrase asked for an unencrypted key")
		return nil, errors.New("unexpected")
	}
}

// TestParse_OctezVectors parses every vector into the keystore and checks the
// address and public key Octez or Taquito give for it, that the encrypted
// and decrypted forms hold the same secret, and that the key signs.
func TestParse_OctezVectors(t *testing.T) {
	ctx := context.Background()
	for _, v := range loadOctezVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			pass := noPassphrase(t)
			if v.Passphrase != "" {
				pass = staticPassphrase(v.Passphrase)
			}
			c, secret, err := Parse(v.Secret, pass)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			k, err := local.NewPrivateKey(c, secret)
			if err != nil {
				t.Fatalf("NewPrivateKey: %v", err)
			}
			if v.PK != "" {
				if got, _ := tezos.EncodePublicKey(k.Public()); got != v.PK {
					t.Errorf("public key %s, want %s", got, v.PK)
				}
			}
			if v.PKH != "" {
				if got, _ := tezos.PublicKeyHash(k.Public()); got != v.PKH {
					t.Errorf("address %s, want %s", got, v.PKH)
				}
			}
			if v.Decrypted != "" {
				dc, dsecret, err := Parse(v.Decrypted, noPassphrase(t))
				if err != nil {
					t.Fatalf("decrypted form: %v", err)
				}
				if dc != c || !bytes.Equal(dsecret, secret) {
					t.Error("encrypted and decrypted forms give different secrets")
				}
			}
			if c == signer.BLS12381 {
				if _, err := signer.SignMessage(ctx, k, signer.BLSProofOfPossession, []byte(v.Name)); err != nil {
					t.Fatalf("sign: %v", err)
				}
				return
			}
			d := tezos.Digest([]byte(v.Name))
			if _, err := signer.SignDigest(ctx, k, d[:]); err != nil {
				t.Fatalf("sign: %v", err)
			}
		})
	}
}

// TestParse_ReencodesToSameText checks the prefixes against the vectors:
// re-encoding the parsed 32-byte secret gives the input text back.
func TestParse_ReencodesToSameText(t *testing.T) {
	n := 0
	for _, v := range loadOctezVectors(t) {
		text := strings.TrimPrefix(v.Secret, "unencrypted:")
		if v.Passphrase != "" || len(text) != 54 {
			continue
		}
		c, secret, err := Parse(text, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := tezos.EncodeSecretKey(c, secret); got != text {
			t.Errorf("%s: re-encoded %s", v.Name, got)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no vector re-encoded")
	}
}

func TestParse_EncryptedKeyRefusals(t *testing.T) {
	for _, esk := range []string{
		"encrypted:edesk1RK4W4Qdo6tUwf5oB1swQMXnxJwPo6vWDmWNJEQUbsfA4auJiXdWkXk3JWyzNPAugcQaQuoui1hpNfWfYtK",
		"encrypted:BLesk1ExnCaFxVcGFvKFQrPs2AADo2KpukB6bhA8SLASRzZ58uqvSNUNyzdNdya5NPgE1BAFwcN3wtyFv76r1GJ9",
	} {
		if _, _, err := Parse(esk, staticPassphrase("wrong")); !errors.Is(err, ErrWrongPassphrase) {
			t.Errorf("wrong passphrase: err = %v, want ErrWrongPassphrase", err)
		}
		if _, _, err := Parse(esk, nil); !errors.Is(err, ErrNoPassphrase) {
			t.Errorf("nil passphrase func: err = %v, want ErrNoPassphrase", err)
		}
		boom := errors.New("no tty")
		if _, _, err := Parse(esk, func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
			t.Errorf("passphrase func error: err = %v, want it wrapped", err)
		}
		bare := strings.TrimPrefix(esk, "encrypted:")
		if _, _, err := Parse("unencrypted:"+bare, staticPassphrase("password")); !errors.Is(err, ErrBadSecret) {
			t.Errorf("unencrypted: prefix on encrypted key: err = %v, want ErrBadSecret", err)
		}
	}
}

func TestParse_Rejects(t *testing.T) {
	good := "edsk3gUfUPyBSfrS9CCgmCiQsTCHGkviBDusMxDJstFtojtc1zcpsh"
	long := "edskS3DtVSbWbPD1yviMGebjYwWJtruMjDcfAZsH9uba22EzKeYhmQkkraFosFETmEMfFNVcDYQ5QbFerj9ozDKroXZ6mb5oxV"
	raw, err := tezos.B58Decode(long, nil, -1)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 1 // public key half no longer matches the seed
	mismatched := tezos.B58Encode(nil, raw)
	tests := []struct{ name, text string }{
		{"empty", ""},
		{"bad checksum", good[:len(good)-1] + "i"},
		{"not base58", strings.Replace(good, "U", "0", 1)},
		{"public key, not secret", "edpkuBknW28nW72KG6RoHtYW7p12T6GKc7nAbwYX5m8Wd9sDVC9yav"},
		{"BLS public key, not secret", "BLpk1ur5XXicWYMMzCVZZWyLZhybtyX8Zot2uCzDCZW8KcC5BdZiLVXRZvZzi4GuZYL9SarUvKpE"},
		{"64-byte edsk with wrong public key", mismatched},
		{"encrypted: prefix on unencrypted key", "encrypted:" + good},
		{"encrypted: prefix on BLsk", "encrypted:BLsk1eGhiPQXKtvvkBeXzmtVVJs6KPhEF45drF7MLjoCDcSnTGuyjL"},
		{"hex is not Octez", strings.Repeat("11", 32)},
		{"wrong prefix right length", tezos.B58Encode([]byte{1, 2, 3, 4}, make([]byte, 32))},
		{"BLsk of 31 bytes", tezos.B58Encode(tezos.PrefixBLsk, make([]byte, 31))},
		{"BLesk of 55 bytes", tezos.B58Encode(tezos.PrefixBLesk, make([]byte, 55))},
		{"too long", strings.Repeat("1", 1000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Parse(tc.text, staticPassphrase("x"))
			if !errors.Is(err, ErrBadSecret) {
				t.Fatalf("err = %v, want ErrBadSecret", err)
			}
			if len(tc.text) > 8 && strings.Contains(err.Error(), tc.text) {
				t.Fatal("error contains the secret text")
			}
		})
	}
}

// TestParse_KeystoreRangeChecks: Parse hands over the bytes; the keystore
// refuses scalars out of range for their curve.
func TestParse_KeystoreRangeChecks(t *testing.T) {
	for name, text := range map[string]string{
		"spsk zero scalar": tezos.B58Encode(tezos.PrefixSpsk, make([]byte, 32)),
		"p2sk scalar >= n": tezos.B58Encode(tezos.PrefixP2sk, bytes.Repeat([]byte{0xff}, 32)),
		"BLsk zero scalar": tezos.B58Encode(tezos.PrefixBLsk, make([]byte, 32)),
		"BLsk scalar >= r": tezos.B58Encode(tezos.PrefixBLsk, bytes.Repeat([]byte{0xff}, 32)),
	} {
		c, secret, err := Parse(text, nil)
		if err != nil {
			t.Fatalf("%s: Parse: %v", name, err)
		}
		if _, err := local.NewPrivateKey(c, secret); !errors.Is(err, local.ErrBadSecret) {
			t.Errorf("%s: err = %v, want local.ErrBadSecret", name, err)
		}
	}
}

// TestPrefixes_EncodeToOctezNames checks each secret-key prefix against the
// text prefix and length Octez registers (src/lib_crypto/base58.ml).
func TestPrefixes_EncodeToOctezNames(t *testing.T) {
	tests := []struct {
		prefix []byte
		n      int
		text   string
		length int
	}{
		{tezos.PrefixEdsk32, 32, "edsk", 54},
		{tezos.PrefixEdsk64, 64, "edsk", 98},
		{tezos.PrefixSpsk, 32, "spsk", 54},
		{tezos.PrefixP2sk, 32, "p2sk", 54},
		{tezos.PrefixBLsk, 32, "BLsk", 54},
		{tezos.PrefixEdesk, 56, "edesk", 88},
		{tezos.PrefixSpesk, 56, "spesk", 88},
		{tezos.PrefixP2esk, 56, "p2esk", 88},
		{tezos.PrefixBLesk, 56, "BLesk", 88},
	}
	for _, tc := range tests {
		for _, fill := range []byte{0x00, 0xff} {
			s := tezos.B58Encode(tc.prefix, bytes.Repeat([]byte{fill}, tc.n))
			if !strings.HasPrefix(s, tc.text) || len(s) != tc.length {
				t.Errorf("prefix %v encodes to %s (len %d), want %s… of length %d", tc.prefix, s, len(s), tc.text, tc.length)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, v := range loadOctezVectors(f) {
		f.Add(v.Secret)
	}
	f.Add("unencrypted:")
	f.Add("encrypted:1111")
	f.Add("")
	f.Fuzz(func(t *testing.T, text string) {
		c, secret, err := Parse(text, staticPassphrase("password"))
		if err == nil && (c == signer.CurveUnknown || len(secret) != 32) {
			t.Fatalf("curve %v, %d-byte secret without error", c, len(secret))
		}
		if tt := strings.TrimSpace(text); err != nil && len(tt) >= 16 && strings.Contains(err.Error(), tt) {
			t.Fatal("error contains the input")
		}
	})
}
