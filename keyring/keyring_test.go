package keyring_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/config"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/local"
)

// The Hardhat/Anvil account #0: a well-known test vector.
const hardhat0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

func TestEthereumAddress_KnownVector(t *testing.T) {
	k, err := local.ParseHexSecret(hardhat0)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := signer.ParseURI("file:///k")
	key, err := keyring.NewKey("hardhat0", u, k, config.KeyConfig{Ethereum: &policy.EthereumRules{}})
	if err != nil {
		t.Fatal(err)
	}
	if key.EthAddress != "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266" {
		t.Fatalf("address %s", key.EthAddress)
	}
}

func TestRing_Lookups(t *testing.T) {
	var keys []*keyring.Key
	for i, c := range []signer.Curve{signer.Secp256k1, signer.P256} {
		pk, _ := local.Generate(c)
		u, _ := signer.ParseURI("file:///k" + c.String())
		kc := config.KeyConfig{}
		if i == 0 {
			kc.Ethereum = &policy.EthereumRules{}
		}
		k, err := keyring.NewKey(c.String(), u, pk, kc)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	r, err := keyring.New(keys)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := r.ByPKH(keys[1].PKH); !ok || k.Name != "p256" {
		t.Fatal("ByPKH")
	}
	if k, ok := r.ByAddress(keys[0].EthAddress); !ok || k.Name != "secp256k1" {
		t.Fatal("ByAddress")
	}
	if _, ok := r.ByName("nope"); ok {
		t.Fatal("ByName found a missing key")
	}
	if keys[1].EthAddress != "" {
		t.Fatal("a P-256 key got an Ethereum address")
	}
	if _, err := keyring.New(append(keys, keys[0])); err == nil {
		t.Fatal("the same key twice was accepted")
	}
}

func TestNewKey_EthereumRulesOnNonSecp256k1KeyRefused(t *testing.T) {
	pk, _ := local.Generate(signer.Ed25519)
	u, _ := signer.ParseURI("file:///k")
	if _, err := keyring.NewKey("e", u, pk, config.KeyConfig{Ethereum: &policy.EthereumRules{}}); err == nil {
		t.Fatal("accepted")
	}
}

func TestOpen_NamesTheFailingKey(t *testing.T) {
	cfg := &config.Config{Keys: map[string]config.KeyConfig{"baker": {Ref: "vault:///x"}}}
	_, err := keyring.Open(context.Background(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "baker") {
		t.Fatalf("err = %v", err)
	}
}

func TestNewKey_EthereumOnlyKeySignsNothingOnTezos(t *testing.T) {
	pk, _ := local.Generate(signer.Secp256k1)
	u, _ := signer.ParseURI("file:///k")
	k, err := keyring.NewKey("poster", u, pk, config.KeyConfig{Ethereum: &policy.EthereumRules{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range tezos.Kinds() {
		if k.Tezos.Allows(kind) {
			t.Errorf("an Ethereum-only key may sign Tezos %s", kind)
		}
	}
	plain, err := keyring.NewKey("baker", u, pk, config.KeyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []tezos.Kind{tezos.KindBlock, tezos.KindPreattestation, tezos.KindAttestation} {
		if !plain.Tezos.Allows(kind) {
			t.Errorf("a key listed without rules may not sign %s", kind)
		}
	}
	if plain.Tezos.Allows(tezos.KindGeneric) {
		t.Error("a key listed without rules may sign generic operations")
	}
}

type closeCounter struct {
	signer.Key
	closed *int
}

func (c closeCounter) Close() error { *c.closed++; return nil }

func TestOpen_FailureClosesKeysAlreadyOpen(t *testing.T) {
	closed := 0
	cfg := &config.Config{Keys: map[string]config.KeyConfig{"a": {Ref: "file:///a"}, "b": {Ref: "file:///b"}}}
	_, err := keyring.Open(context.Background(), cfg, func(_ context.Context, ref string) (signer.Key, error) {
		if ref == "file:///b" {
			return nil, errors.New("HSM unreachable")
		}
		k, _ := local.Generate(signer.Secp256k1)
		return closeCounter{k, &closed}, nil
	})
	if err == nil || closed != 1 {
		t.Fatalf("err = %v, closed %d keys, want an error and 1", err, closed)
	}
}
