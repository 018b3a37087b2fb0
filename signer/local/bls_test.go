//go:build cgo

package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/keyward/keyward/signer"
)

func TestBLS_KeyFileHoldsTheOctezSecretEncrypted(t *testing.T) {
	secret := make([]byte, 32)
	for i := range secret {
		secret[i] = byte(i + 1)
	}
	k, err := NewPrivateKey(signer.BLS12381, secret)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k.secret(), secret) {
		t.Fatal("secret() is not the little-endian scalar given")
	}
	for _, opts := range []WriteOptions{{Passphrase: []byte("pw")}, {SealWith: "fakekms:///alias/bls"}} {
		path := writeTemp(t, k, opts)
		raw, _ := os.ReadFile(path)
		var kf keyFile
		if err := json.Unmarshal(raw, &kf); err != nil {
			t.Fatal(err)
		}
		if kf.Curve != "bls12-381" || !bytes.Equal(kf.PublicKey, k.Public().Bytes) || len(kf.Crypto.Ciphertext) != 32+16 || len(kf.Crypto.Plaintext) != 0 {
			t.Fatalf("%+v: key file %s", opts, raw)
		}
		if bytes.Contains(raw, []byte(hexEncode(secret))) {
			t.Fatal("key file holds the secret in clear")
		}
		got, err := LoadKeyFile(context.Background(), path, []byte("pw"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.secret(), secret) {
			t.Fatal("loaded a different secret")
		}
	}
}

func TestBLS_LoadRefusesABadPublicKeyField(t *testing.T) {
	k, _ := Generate(signer.BLS12381)
	path := writeTemp(t, k, WriteOptions{Passphrase: []byte("pw")})
	other, _ := Generate(signer.BLS12381)
	rewrite(t, path, func(kf map[string]any) { kf["public_key"] = hexEncode(other.Public().Bytes) })
	if _, err := LoadKeyFile(context.Background(), path, []byte("pw")); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("swapped public key: err = %v, want the AEAD to refuse it", err)
	}
	rewrite(t, path, func(kf map[string]any) { kf["public_key"] = "c0" + hexEncode(make([]byte, 47)) })
	if _, err := LoadKeyFile(context.Background(), path, []byte("pw")); !errors.Is(err, ErrBadKeyFile) {
		t.Errorf("identity public key: err = %v, want ErrBadKeyFile", err)
	}
}

func TestBLS_NewPrivateKeyRefusesOutOfRangeScalars(t *testing.T) {
	for name, s := range map[string][]byte{"zero": make([]byte, 32), "all ff": bytes.Repeat([]byte{0xff}, 32), "short": make([]byte, 31)} {
		if _, err := NewPrivateKey(signer.BLS12381, s); !errors.Is(err, ErrBadSecret) {
			t.Errorf("%s: err = %v, want ErrBadSecret", name, err)
		}
	}
}

func TestBLS_ZeroClearsTheSecret(t *testing.T) {
	k, _ := Generate(signer.BLS12381)
	k.Zero()
	if !bytes.Equal(k.secret(), make([]byte, 32)) {
		t.Fatal("secret survives Zero")
	}
}

func TestBLS_SignsWholeMessagesOnly(t *testing.T) {
	ctx := context.Background()
	k, _ := Generate(signer.BLS12381)
	if _, err := k.Sign(ctx, digest("d")); !errors.Is(err, signer.ErrNotDigestKey) {
		t.Errorf("Sign: err = %v, want ErrNotDigestKey", err)
	}
	ed, _ := Generate(signer.Ed25519)
	if _, err := ed.SignBLS(ctx, signer.BLSProofOfPossession, nil); !errors.Is(err, signer.ErrNotBLSKey) {
		t.Errorf("SignBLS on Ed25519: err = %v, want ErrNotBLSKey", err)
	}
	if _, err := ed.ProvePossession(ctx, nil); !errors.Is(err, signer.ErrNotBLSKey) {
		t.Errorf("ProvePossession on Ed25519: err = %v, want ErrNotBLSKey", err)
	}
}
