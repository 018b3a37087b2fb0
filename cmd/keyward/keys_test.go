package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/signer"
)

// runKeys runs `keyward keys args...` in process and returns its output.
func runKeys(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := cmdKeys(args, &out, &out)
	return out.String(), err
}

func writeSecret(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKeys_GenerateShowAndListBLS(t *testing.T) {
	t.Setenv("KEYWARD_PASSPHRASE", "correct horse")
	dir := t.TempDir()
	path := filepath.Join(dir, "baker.json")
	out, err := runKeys(t, "generate", "--type", "bls", "--out", path)
	if err != nil {
		t.Fatalf("generate: %v\n%s", err, out)
	}
	for _, want := range []string{"curve:      bls12-381", "tz address: tz4", "public key: BLpk"} {
		if !strings.Contains(out, want) {
			t.Fatalf("generate output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "0x address") {
		t.Fatalf("a tz4 key printed an Ethereum address:\n%s", out)
	}
	tz4 := strings.Fields(out[strings.Index(out, "tz address:"):])[2]
	shown, err := runKeys(t, "show", "file://"+path)
	if err != nil || !strings.Contains(shown, tz4) {
		t.Fatalf("show: %v\n%s", err, shown)
	}
	cfg := filepath.Join(dir, "keyward.yaml")
	os.WriteFile(cfg, []byte("watermark: file://"+dir+"/marks\nkeys:\n  baker:\n    ref: file://"+path+"\n"), 0o600)
	listed, err := runKeys(t, "list", "--config", cfg)
	if err != nil {
		t.Fatalf("list: %v\n%s", err, listed)
	}
	for _, want := range []string{"baker", "file", "bls12-381", tz4, "yes"} {
		if !strings.Contains(listed, want) {
			t.Errorf("keys list lacks %q:\n%s", want, listed)
		}
	}
}

func TestKeys_ImportOctezBLSForms(t *testing.T) {
	t.Setenv("KEYWARD_PASSPHRASE", "correct horse")
	dir := t.TempDir()
	// Octez key_encoding_vectors.ml and test_encrypted.ml.
	const (
		pk  = "BLpk1ur5XXicWYMMzCVZZWyLZhybtyX8Zot2uCzDCZW8KcC5BdZiLVXRZvZzi4GuZYL9SarUvKpE"
		pkh = "tz4TFJdv9Jd44FtBMAxi3KQT7AtazhVyaPa6"
		sk  = "BLsk1eGhiPQXKtvvkBeXzmtVVJs6KPhEF45drF7MLjoCDcSnTGuyjL"
	)
	for i, text := range []string{sk, "unencrypted:" + sk} {
		out, err := runKeys(t, "import", "--from", writeSecret(t, dir, "s", text), "--out", filepath.Join(dir, string(rune('a'+i))+".json"))
		if err != nil || !strings.Contains(out, pkh) || !strings.Contains(out, pk) {
			t.Fatalf("import %q: %v\n%s", text[:16], err, out)
		}
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "a.json"))
	if strings.Contains(string(raw), "BLsk") {
		t.Fatal("key file holds the secret in the clear")
	}

	pass := writeSecret(t, dir, "octez-pass", "aVah7eid")
	enc := writeSecret(t, dir, "enc", "encrypted:BLesk1c92TTyYAbkt5Aa2g2puGZHy1M9hQVX7um7PYpxfsjbaaiYsqR2ahArH53WGSvbvzUBizgPipMyfmh8bCs5")
	out, err := runKeys(t, "import", "--from", enc, "--octez-passphrase-file", pass, "--out", filepath.Join(dir, "enc.json"))
	if err != nil || !strings.Contains(out, "tz4") {
		t.Fatalf("import BLesk: %v\n%s", err, out)
	}
	k, err := signer.Open(context.Background(), "file://"+filepath.Join(dir, "enc.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signer.SignMessage(context.Background(), k, signer.BLSProofOfPossession, []byte{0x11}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KEYWARD_OCTEZ_PASSPHRASE", "")
	if out, err := runKeys(t, "import", "--from", enc, "--out", filepath.Join(dir, "enc2.json")); err == nil || !strings.Contains(err.Error(), "encrypted") {
		t.Fatalf("BLesk without its passphrase: %v\n%s", err, out)
	}
}

func TestKeys_CreateInKMSOrHSMRefusesBLS(t *testing.T) {
	for _, args := range [][]string{
		{"create-kms", "--type", "bls", "--alias", "alias/baker"},
		{"create-pkcs11", "pkcs11:token=t;object=o?module-path=/nonexistent.so&pin-value=1", "--type", "tz4"},
	} {
		_, err := runKeys(t, args...)
		if err == nil {
			t.Fatalf("%v: no error", args)
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") || !strings.Contains(msg, "BLS12-381") || !strings.Contains(msg, "--seal-with") {
			t.Errorf("%v: error %q is not one line pointing at the sealed keystore", args, msg)
		}
	}
}
