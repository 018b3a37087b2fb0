package local

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	ethcrypto "github.com/ethereum/go-ethereum/crypto"

	"github.com/keyward/keyward/signer"
)

func TestParseHexSecret_Rejects(t *testing.T) {
	n := "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141" // secp256k1 order
	tests := []struct {
		name, text string
		want       error
	}{
		{"empty", "", ErrNotHexSecret},
		{"Octez key", "spsk2rBDDeUqakQ42nBHDGQTtP3GErb6AahHPwF9bhca3Q5KA5HESE", ErrNotHexSecret},
		{"encrypted: prefix on hex", "encrypted:0x" + strings.Repeat("11", 32), ErrNotHexSecret},
		{"not hex", strings.Repeat("g", 64), ErrNotHexSecret},
		{"hex 63 digits", strings.Repeat("1", 63), ErrNotHexSecret},
		{"hex 65 digits", strings.Repeat("1", 65), ErrNotHexSecret},
		{"hex zero scalar", strings.Repeat("0", 64), ErrBadSecret},
		{"hex scalar = n", n, ErrBadSecret},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseHexSecret(tc.text)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if len(tc.text) > 8 && strings.Contains(err.Error(), tc.text) {
				t.Fatal("error contains the secret text")
			}
		})
	}
}

func TestParseHexSecret_MatchesGoEthereum(t *testing.T) {
	tests := []struct{ secret, address string }{
		// Hardhat/Anvil default account #0.
		{"0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80", "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"},
		{"59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"},
		{"  0X5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a\n", "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"},
	}
	for _, tc := range tests {
		k, err := ParseHexSecret(tc.secret)
		if err != nil {
			t.Fatalf("ParseHexSecret: %v", err)
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
	k, err := ParseHexSecret("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
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

func FuzzParseHexSecret(f *testing.F) {
	f.Add("0x" + strings.Repeat("ab", 32))
	f.Add(strings.Repeat("0", 64))
	f.Add("")
	f.Fuzz(func(t *testing.T, text string) {
		k, err := ParseHexSecret(text)
		if err == nil && (k == nil || k.Curve() != signer.Secp256k1) {
			t.Fatal("no secp256k1 key without error")
		}
		if tt := strings.TrimSpace(text); err != nil && len(tt) >= 16 && strings.Contains(err.Error(), tt) {
			t.Fatal("error contains the input")
		}
	})
}
