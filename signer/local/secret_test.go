package local

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	ethcrypto "github.com/ethereum/go-ethereum/crypto"

	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/signer"
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

func TestParseSecret_OctezVectors(t *testing.T) {
	for _, v := range loadOctezVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			pass := noPassphrase(t)
			if v.Passphrase != "" {
				pass = staticPassphrase(v.Passphrase)
			}
			k, err := ParseSecret(v.Secret, pass)
			if err != nil {
				t.Fatalf("ParseSecret: %v", err)
			}
			if v.PK != "" {
				if got := mustTezos(tezos.EncodePublicKey(k.Public())); got != v.PK {
					t.Errorf("public key %s, want %s", got, v.PK)
				}
			}
			if got := mustTezos(tezos.PublicKeyHash(k.Public())); got != v.PKH {
				t.Errorf("address %s, want %s", got, v.PKH)
			}
			if v.Decrypted != "" {
				dk, err := ParseSecret(v.Decrypted, noPassphrase(t))
				if err != nil {
					t.Fatalf("decrypted form: %v", err)
				}
				if !bytes.Equal(dk.secret(), k.secret()) {
					t.Error("encrypted and decrypted forms give different secrets")
				}
			}
			d := digest(v.Name)
			sig, err := signer.SignDigest(context.Background(), k, d)
			if err != nil || !signer.Verify(k.PublicKey(), d, sig) {
				t.Fatalf("sign: %v", err)
			}
		})
	}
}

// TestParseSecret_ReencodesToSameText checks the prefixes against the
// vectors: re-encoding the parsed 32-byte secret gives the input text back.
func TestParseSecret_ReencodesToSameText(t *testing.T) {
	prefixes := map[signer.Curve][]byte{signer.Ed25519: tezos.PrefixEdsk32, signer.Secp256k1: tezos.PrefixSpsk, signer.P256: tezos.PrefixP2sk}
	for _, v := range loadOctezVectors(t) {
		text := strings.TrimPrefix(v.Secret, "unencrypted:")
		if v.Passphrase != "" || len(text) != 54 {
			continue
		}
		k, err := ParseSecret(text, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := tezos.B58Encode(prefixes[k.Curve()], k.secret()); got != text {
			t.Errorf("%s: re-encoded %s", v.Name, got)
		}
	}
}

func TestParseSecret_EncryptedKeyRefusals(t *testing.T) {
	const esk = "encrypted:edesk1RK4W4Qdo6tUwf5oB1swQMXnxJwPo6vWDmWNJEQUbsfA4auJiXdWkXk3JWyzNPAugcQaQuoui1hpNfWfYtK"
	if _, err := ParseSecret(esk, staticPassphrase("wrong")); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("wrong passphrase: err = %v, want ErrWrongPassphrase", err)
	}
	if _, err := ParseSecret(esk, nil); !errors.Is(err, ErrNoPassphrase) {
		t.Errorf("nil passphrase func: err = %v, want ErrNoPassphrase", err)
	}
	boom := errors.New("no tty")
	if _, err := ParseSecret(esk, func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("passphrase func error: err = %v, want it wrapped", err)
	}
	bare := strings.TrimPrefix(esk, "encrypted:")
	if _, err := ParseSecret("unencrypted:"+bare, staticPassphrase("password")); !errors.Is(err, ErrBadSecret) {
		t.Errorf("unencrypted: prefix on encrypted key: err = %v, want ErrBadSecret", err)
	}
	if _, err := ParseSecret(bare, staticPassphrase("password")); err != nil {
		t.Errorf("bare edesk: %v", err)
	}
}

func TestParseSecret_Rejects(t *testing.T) {
	good := "edsk3gUfUPyBSfrS9CCgmCiQsTCHGkviBDusMxDJstFtojtc1zcpsh"
	long := "edskS3DtVSbWbPD1yviMGebjYwWJtruMjDcfAZsH9uba22EzKeYhmQkkraFosFETmEMfFNVcDYQ5QbFerj9ozDKroXZ6mb5oxV"
	raw, err := tezos.B58Decode(long, nil, -1)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 1 // public key half no longer matches the seed
	mismatched := tezos.B58Encode(nil, raw)
	n := "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141" // secp256k1 order
	tests := []struct{ name, text string }{
		{"empty", ""},
		{"bad checksum", good[:len(good)-1] + "i"},
		{"not base58", strings.Replace(good, "U", "0", 1)},
		{"public key, not secret", "edpkuBknW28nW72KG6RoHtYW7p12T6GKc7nAbwYX5m8Wd9sDVC9yav"},
		{"64-byte edsk with wrong public key", mismatched},
		{"encrypted: prefix on unencrypted key", "encrypted:" + good},
		{"encrypted: prefix on hex", "encrypted:0x" + strings.Repeat("11", 32)},
		{"hex zero scalar", strings.Repeat("0", 64)},
		{"hex scalar = n", n},
		{"hex 63 digits", strings.Repeat("1", 63)},
		{"hex 65 digits", strings.Repeat("1", 65)},
		{"wrong prefix right length", tezos.B58Encode([]byte{1, 2, 3, 4}, make([]byte, 32))},
		{"spsk zero scalar", tezos.B58Encode(tezos.PrefixSpsk, make([]byte, 32))},
		{"p2sk scalar >= n", tezos.B58Encode(tezos.PrefixP2sk, bytes.Repeat([]byte{0xff}, 32))},
		{"too long", strings.Repeat("1", 1000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSecret(tc.text, staticPassphrase("x"))
			if !errors.Is(err, ErrBadSecret) {
				t.Fatalf("err = %v, want ErrBadSecret", err)
			}
			if len(tc.text) > 8 && strings.Contains(err.Error(), tc.text) {
				t.Fatal("error contains the secret text")
			}
		})
	}
}

func TestParseSecret_HexSecp256k1MatchesGoEthereum(t *testing.T) {
	tests := []struct{ secret, address string }{
		// Hardhat/Anvil default account #0.
		{"0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80", "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"},
		{"59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"},
		{"  0X5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a\n", "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"},
	}
	for _, tc := range tests {
		k, err := ParseSecret(tc.secret, nil)
		if err != nil {
			t.Fatalf("ParseSecret: %v", err)
		}
		if k.Curve() != signer.Secp256k1 {
			t.Fatalf("curve %v", k.Curve())
		}
		unc, err := k.Public().Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		pub, err := ethcrypto.UnmarshalPubkey(unc)
		if err != nil {
			t.Fatal(err)
		}
		got := ethcrypto.PubkeyToAddress(*pub)
		if got != common.HexToAddress(tc.address) {
			t.Errorf("address %s, want %s", got.Hex(), tc.address)
		}
		gk, err := ethcrypto.HexToECDSA(strings.TrimPrefix(strings.ToLower(strings.TrimSpace(tc.secret)), "0x"))
		if err != nil {
			t.Fatal(err)
		}
		if ethcrypto.PubkeyToAddress(gk.PublicKey) != got {
			t.Error("go-ethereum derives a different address from the same secret")
		}
		d := digest(tc.address)
		sig, err := k.Sign(context.Background(), d)
		if err != nil {
			t.Fatal(err)
		}
		if !ethcrypto.VerifySignature(ethcrypto.CompressPubkey(pub), d, sig) {
			t.Error("go-ethereum does not verify our signature")
		}
	}
}

func TestSign_Secp256k1IsDeterministicLowS(t *testing.T) {
	k, err := ParseSecret("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 32 {
		d := digest(string(rune('a' + i)))
		s1, _ := k.Sign(context.Background(), d)
		s2, _ := k.Sign(context.Background(), d)
		if !bytes.Equal(s1, s2) {
			t.Fatal("RFC 6979 signatures differ")
		}
		if !signer.IsLowS(signer.Secp256k1, s1) {
			t.Fatalf("high-S signature %s", hex.EncodeToString(s1))
		}
	}
}

func FuzzParseSecret(f *testing.F) {
	for _, v := range loadOctezVectors(f) {
		f.Add(v.Secret)
	}
	f.Add("0x" + strings.Repeat("ab", 32))
	f.Add("unencrypted:")
	f.Add("encrypted:1111")
	f.Add("")
	f.Fuzz(func(t *testing.T, text string) {
		k, err := ParseSecret(text, staticPassphrase("password"))
		if err == nil && k == nil {
			t.Fatal("nil key without error")
		}
		if tt := strings.TrimSpace(text); err != nil && len(tt) >= 16 && strings.Contains(err.Error(), tt) {
			t.Fatal("error contains the input")
		}
	})
}

// TestPrefixes_EncodeToOctezNames checks each prefix against the text prefix
// and length Octez registers (src/lib_crypto/base58.ml).
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
		{tezos.PrefixEdesk, 56, "edesk", 88},
		{tezos.PrefixSpesk, 56, "spesk", 88},
		{tezos.PrefixP2esk, 56, "p2esk", 88},
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
