package signer_test

import (
	"context"
	"errors"
	"math/big"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/local"
)

func TestParseURI_Forms(t *testing.T) {
	cases := []struct {
		in                 string
		scheme, host, path string
		attrs              map[string]string
		query              map[string]string
	}{
		{in: "file:///var/lib/keyward/keys/baker.json", scheme: "file", path: "/var/lib/keyward/keys/baker.json"},
		{in: "file:///k.json?passphrase-source=/run/p", scheme: "file", path: "/k.json", query: map[string]string{"passphrase-source": "/run/p"}},
		{in: "awskms:///alias/baker?region=eu-west-1", scheme: "awskms", path: "/alias/baker", query: map[string]string{"region": "eu-west-1"}},
		{in: "awskms://127.0.0.1:4599/alias/x", scheme: "awskms", host: "127.0.0.1:4599", path: "/alias/x"},
		{in: "pkcs11:token=keyward;object=baker?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/run/pin", scheme: "pkcs11",
			attrs: map[string]string{"token": "keyward", "object": "baker"}, query: map[string]string{"module-path": "/usr/lib/softhsm/libsofthsm2.so", "pin-source": "/run/pin"}},
		{in: "pkcs11:token=my%20token;id=%01%02", scheme: "pkcs11", attrs: map[string]string{"token": "my token", "id": "\x01\x02"}},
	}
	for _, c := range cases {
		u, err := signer.ParseURI(c.in)
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if u.Scheme != c.scheme || u.Host != c.host || u.Path != c.path {
			t.Errorf("%s: got %q %q %q", c.in, u.Scheme, u.Host, u.Path)
		}
		for k, v := range c.attrs {
			if u.Attrs[k] != v {
				t.Errorf("%s: attr %s = %q, want %q", c.in, k, u.Attrs[k], v)
			}
		}
		for k, v := range c.query {
			if u.Param(k) != v {
				t.Errorf("%s: param %s = %q, want %q", c.in, k, u.Param(k), v)
			}
		}
	}
}

func TestParseURI_RejectsMalformed(t *testing.T) {
	for _, in := range []string{"", "baker.json", ":x", "pkcs11:token", "pkcs11:token=a;token=b", "bad scheme:x"} {
		if _, err := signer.ParseURI(in); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestURI_RedactsPinValue(t *testing.T) {
	u, err := signer.ParseURI("pkcs11:token=t;object=o?module-path=/m.so&pin-value=1234")
	if err != nil {
		t.Fatal(err)
	}
	if r := u.Redacted(); r != "pkcs11:token=t;object=o?module-path=/m.so&pin-value=REDACTED" {
		t.Fatalf("redacted: %s", r)
	}
}

func TestOpen_UnknownSchemeIsAnError(t *testing.T) {
	_, err := signer.Open(context.Background(), "vault:///x")
	if !errors.Is(err, signer.ErrUnknownScheme) {
		t.Fatalf("err = %v", err)
	}
}

type dupBackend struct{}

func (dupBackend) Scheme() string { return "file" }
func (dupBackend) Open(context.Context, *signer.URI) (signer.Key, error) {
	return nil, nil
}

func TestRegister_TwicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("registering file twice did not panic")
		}
	}()
	signer.Register(dupBackend{})
}

// highSKey returns signatures in high-S form, as KMS and HSMs do half the time.
type highSKey struct{ *local.PrivateKey }

func (k highSKey) Sign(ctx context.Context, d []byte) ([]byte, error) {
	sig, err := k.PrivateKey.Sign(ctx, d)
	if err != nil {
		return nil, err
	}
	n := secp256k1.Params().N
	if k.Curve() == signer.P256 {
		n = p256N()
	}
	s := new(big.Int).SetBytes(sig[32:])
	if signer.IsLowS(k.Curve(), sig) {
		s.Sub(n, s)
	}
	out := append([]byte{}, sig[:32]...)
	return append(out, s.FillBytes(make([]byte, 32))...), nil
}

func p256N() *big.Int {
	n, _ := new(big.Int).SetString("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)
	return n
}

func TestSignDigest_NormalizesHighSAndVerifies(t *testing.T) {
	for _, c := range []signer.Curve{signer.Secp256k1, signer.P256} {
		k, _ := local.Generate(c)
		d := make([]byte, 32)
		d[0] = 7
		raw, _ := highSKey{k}.Sign(context.Background(), d)
		if signer.IsLowS(c, raw) {
			t.Fatalf("%v: test key did not produce high-S", c)
		}
		sig, err := signer.SignDigest(context.Background(), highSKey{k}, d)
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		if !signer.IsLowS(c, sig) || !signer.Verify(k.PublicKey(), d, sig) {
			t.Fatalf("%v: normalized signature invalid", c)
		}
	}
}

type badKey struct{ *local.PrivateKey }

func (k badKey) Sign(ctx context.Context, d []byte) ([]byte, error) {
	sig, err := k.PrivateKey.Sign(ctx, d)
	sig[5] ^= 1
	return sig, err
}

func TestSignDigest_WithholdsSignatureThatDoesNotVerify(t *testing.T) {
	for _, c := range []signer.Curve{signer.Secp256k1, signer.P256, signer.Ed25519} {
		k, _ := local.Generate(c)
		_, err := signer.SignDigest(context.Background(), badKey{k}, make([]byte, 32))
		if !errors.Is(err, signer.ErrBadSignature) {
			t.Fatalf("%v: err = %v", c, err)
		}
	}
}

func TestSignDigest_RejectsWrongDigestLength(t *testing.T) {
	k, _ := local.Generate(signer.Secp256k1)
	if _, err := signer.SignDigest(context.Background(), k, make([]byte, 31)); !errors.Is(err, signer.ErrBadDigest) {
		t.Fatal(err)
	}
}
