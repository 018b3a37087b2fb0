// Package keyring holds the configured keys, opened once at start, with their addresses and compiled policies, looked up by name, Tezos pkh or Ethereum address.
package keyring

import (
	"context"
	"fmt"
	"strings"

	"github.com/keyward/keyward/chains/ethereum"
	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/config"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/signer"
)

// Key is one configured, opened key.
type Key struct {
	Name         string
	Ref          string // redacted reference, safe to print
	Scheme       string // backend scheme: file, awskms, pkcs11
	Signer       signer.Key
	Pub          signer.PublicKey
	PKH          string // Tezos tz1/tz2/tz3 address
	PKHBytes     []byte // the address in binary: curve tag ‖ Blake2b-160 hash
	TezosPub     string // edpk/sppk/p2pk
	EthAddress   string // EIP-55 0x address for secp256k1 keys, "" otherwise
	Tezos        *policy.Tezos
	Ethereum     *policy.Ethereum // nil: the key is not served on Ethereum
	AuditPayload bool
	// Clients, when not nil, are the caller identities that may use the
	// key (token names, authorized-key hashes, "cert:" subjects).
	Clients map[string]bool
}

// Serves reports whether a caller with these identities may use the key.
func (k *Key) Serves(ids []string) bool {
	if k.Clients == nil {
		return true
	}
	for _, id := range ids {
		if k.Clients[id] {
			return true
		}
	}
	return false
}

// Ring is an immutable set of keys.
type Ring struct {
	keys   []*Key
	byName map[string]*Key
	byPKH  map[string]*Key
	byAddr map[string]*Key // lower-case 0x address
}

// Opener opens a key reference (signer.Open in production).
type Opener func(ctx context.Context, ref string) (signer.Key, error)

// Open opens every key of the config. The first failure is returned, naming the key.
func Open(ctx context.Context, cfg *config.Config, open Opener) (ring *Ring, err error) {
	if open == nil {
		open = signer.Open
	}
	var keys []*Key
	defer func() {
		if err != nil { // release HSM sessions and the like of the keys already open
			(&Ring{keys: keys}).Close()
		}
	}()
	for _, name := range cfg.KeyNames() {
		kc := cfg.Keys[name]
		u, err := signer.ParseURI(kc.Ref)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", name, err)
		}
		sk, err := open(ctx, kc.Ref)
		if err != nil {
			return nil, fmt.Errorf("key %s (%s): %w", name, u.Redacted(), err)
		}
		k, err := NewKey(name, u, sk, kc)
		if err != nil {
			if c, ok := sk.(signer.Closer); ok {
				c.Close()
			}
			return nil, err
		}
		keys = append(keys, k)
	}
	return New(keys)
}

// NewKey builds a Key from an opened signer and its config.
func NewKey(name string, u *signer.URI, sk signer.Key, kc config.KeyConfig) (*Key, error) {
	pub := sk.PublicKey()
	k := &Key{Name: name, Ref: u.Redacted(), Scheme: u.Scheme, Signer: sk, Pub: pub, AuditPayload: kc.AuditPayload}
	if len(kc.Clients) > 0 {
		k.Clients = map[string]bool{}
		for _, c := range kc.Clients {
			k.Clients[c] = true
		}
	}
	var err error
	if k.PKH, err = tezos.PublicKeyHash(pub); err != nil {
		return nil, fmt.Errorf("key %s: %w", name, err)
	}
	if k.PKHBytes, err = tezos.PKHBytes(pub); err != nil {
		return nil, fmt.Errorf("key %s: %w", name, err)
	}
	if k.TezosPub, err = tezos.EncodePublicKey(pub); err != nil {
		return nil, fmt.Errorf("key %s: %w", name, err)
	}
	if pub.Curve == signer.Secp256k1 {
		addr, err := ethereum.Address(pub)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", name, err)
		}
		k.EthAddress = addr.Hex()
	}
	tz := kc.Tezos
	if tz == nil && kc.Ethereum != nil {
		// A key configured for Ethereum only is not a baker key: it gets
		// no Tezos default (a key listed with no rules at all signs
		// block, preattestation and attestation only).
		tz = &policy.TezosRules{Allow: []string{}}
	}
	if k.Tezos, err = policy.CompileTezos(tz); err != nil {
		return nil, fmt.Errorf("keys.%s.tezos: %w", name, err)
	}
	if kc.Ethereum != nil {
		if pub.Curve != signer.Secp256k1 {
			return nil, fmt.Errorf("keys.%s.ethereum: a %v key cannot sign for Ethereum (secp256k1 only)", name, pub.Curve)
		}
		if k.Ethereum, err = policy.CompileEthereum(kc.Ethereum); err != nil {
			return nil, fmt.Errorf("keys.%s.ethereum: %w", name, err)
		}
	}
	return k, nil
}

// New indexes keys; two keys with the same address are an error.
func New(keys []*Key) (*Ring, error) {
	r := &Ring{keys: keys, byName: map[string]*Key{}, byPKH: map[string]*Key{}, byAddr: map[string]*Key{}}
	for _, k := range keys {
		if o, dup := r.byPKH[k.PKH]; dup {
			return nil, fmt.Errorf("keys %s and %s are the same key (%s)", o.Name, k.Name, k.PKH)
		}
		r.byName[k.Name] = k
		r.byPKH[k.PKH] = k
		if k.EthAddress != "" {
			r.byAddr[strings.ToLower(k.EthAddress)] = k
		}
	}
	return r, nil
}

// Keys returns every key in name order.
func (r *Ring) Keys() []*Key { return r.keys }

// ByName finds a key by its config name.
func (r *Ring) ByName(name string) (*Key, bool) { k, ok := r.byName[name]; return k, ok }

// ByPKH finds a key by its Tezos address.
func (r *Ring) ByPKH(pkh string) (*Key, bool) { k, ok := r.byPKH[pkh]; return k, ok }

// ByAddress finds a key by its Ethereum address (any case).
func (r *Ring) ByAddress(addr string) (*Key, bool) {
	k, ok := r.byAddr[strings.ToLower(addr)]
	return k, ok
}

// Close closes keys that hold resources.
func (r *Ring) Close() {
	for _, k := range r.keys {
		if c, ok := k.Signer.(signer.Closer); ok {
			_ = c.Close()
		}
	}
}
