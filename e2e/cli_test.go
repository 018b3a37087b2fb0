package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testutil"
	"github.com/keyward/keyward/internal/tezostest"
)

// The Octez sandbox bootstrap1 account.
const (
	bootstrap1Secret = "unencrypted:edsk3gUfUPyBSfrS9CCgmCiQsTCHGkviBDusMxDJstFtojtc1zcpsh"
	bootstrap1PKH    = "tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx"
)

func TestCLI_ImportShowListCheck(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte(bootstrap1Secret+"\n"), 0o600)
	keyPath := filepath.Join(dir, "b1.json")
	out, err := testutil.Run(t, passEnv, "keys", "import", "--from", secret, "--out", keyPath)
	if err != nil || !strings.Contains(out, bootstrap1PKH) {
		t.Fatalf("import: %v\n%s", err, out)
	}
	st, _ := os.Stat(keyPath)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", st.Mode().Perm())
	}
	data, _ := os.ReadFile(keyPath)
	if strings.Contains(string(data), "edsk") {
		t.Fatal("key file holds the secret in the clear")
	}
	// A world-readable secret file is refused.
	os.Chmod(secret, 0o644)
	if out, err := testutil.Run(t, passEnv, "keys", "import", "--from", secret, "--out", filepath.Join(dir, "x.json")); err == nil {
		t.Fatalf("world-readable secret accepted:\n%s", out)
	}
	// Show needs the passphrase and prints the address.
	out, err = testutil.Run(t, passEnv, "keys", "show", "file://"+keyPath)
	if err != nil || !strings.Contains(out, bootstrap1PKH) || !strings.Contains(out, "edpk") {
		t.Fatalf("show: %v\n%s", err, out)
	}
	if out, err := testutil.Run(t, []string{"KEYWARD_PASSPHRASE=wrong"}, "keys", "show", "file://"+keyPath); err == nil || !strings.Contains(out, "passphrase") {
		t.Fatalf("wrong passphrase: %v\n%s", err, out)
	}
	p2, tz2 := genKey(t, dir, "secp256k1")
	cfg := tezosConfig(t, dir, testutil.Addr(t), "", keySpec{"bootstrap1", keyPath, ""}, keySpec{"poster", p2, "ethereum:\n  chain_ids: [1]"})
	out, err = testutil.Run(t, passEnv, "keys", "list", "--config", cfg)
	if err != nil {
		t.Fatalf("list: %v\n%s", err, out)
	}
	for _, want := range []string{"NAME", "bootstrap1", bootstrap1PKH, "ed25519", "poster", tz2, "0x", "yes"} {
		if !strings.Contains(out, want) {
			t.Errorf("keys list lacks %q:\n%s", want, out)
		}
	}
	if out, err := testutil.Run(t, passEnv, "config", "check", "--config", cfg); err != nil || !strings.Contains(out, "OK") {
		t.Fatalf("config check: %v\n%s", err, out)
	}
	// A typo in the config is an error naming the field.
	bad := filepath.Join(dir, "bad.yaml")
	wm := "file://" + filepath.Join(dir, "wm-bad")
	os.WriteFile(bad, []byte("watermark: "+wm+"\nkeys:\n  a:\n    ref: file:///x\n    tezoss: {}\n"), 0o600)
	if out, err := testutil.Run(t, passEnv, "config", "check", "--config", bad); err == nil || !strings.Contains(out, "tezoss") {
		t.Fatalf("typo accepted: %v\n%s", err, out)
	}
	// An unknown scheme is a start-up error.
	os.WriteFile(bad, []byte("watermark: "+wm+"\nkeys:\n  a:\n    ref: vault:///x\n"), 0o600)
	if out, err := testutil.Run(t, passEnv, "config", "check", "--config", bad); err == nil || !strings.Contains(out, "unknown key URI scheme") {
		t.Fatalf("unknown scheme: %v\n%s", err, out)
	}
}

func TestCLI_HelpOnEveryCommand(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"serve", "--help"}, {"keys", "--help"}, {"keys", "generate", "--help"}, {"keys", "import", "--help"},
		{"keys", "show", "--help"}, {"keys", "list", "--help"}, {"keys", "create-kms", "--help"}, {"keys", "create-pkcs11", "--help"},
		{"config", "check", "--help"}, {"watermark", "--help"}, {"watermark", "show", "--help"}, {"audit", "verify", "--help"}, {"bench", "--help"},
	} {
		out, err := testutil.Run(t, nil, args...)
		if err != nil || !strings.Contains(out, "Usage") {
			t.Errorf("keyward %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if out, err := testutil.Run(t, nil, "version"); err != nil || !strings.HasPrefix(out, "keyward ") {
		t.Errorf("version: %v %s", err, out)
	}
}

func TestCLI_WatermarkShowExportImport(t *testing.T) {
	dir := t.TempDir()
	p, pkh := genKey(t, dir, "secp256k1")
	addr := testutil.Addr(t)
	cfg := tezosConfig(t, dir, addr, "", keySpec{"baker", p, "tezos:\n  allow: [attestation]"})
	d := testutil.StartKeyward(t, cfg, addr, passEnv...)
	if r := postSign(t, d.TezosURL, pkh, hexBody(tezostest.Attestation(42, 1, 1)), ""); r.status != 200 {
		t.Fatal(r.body)
	}
	d.Stop()
	out, err := testutil.Run(t, nil, "watermark", "show", "--config", cfg)
	if err != nil || !strings.Contains(out, pkh) || !strings.Contains(out, "42") || !strings.Contains(out, "attestation") {
		t.Fatalf("show: %v\n%s", err, out)
	}
	exp := filepath.Join(dir, "marks.json")
	if out, err := testutil.Run(t, nil, "watermark", "export", "--config", cfg, "--out", exp); err != nil {
		t.Fatalf("export: %v %s", err, out)
	}
	var doc struct {
		Version int
		Marks   []struct {
			Key, Kind, Digest string
			Level, Round      int64
		}
	}
	data, _ := os.ReadFile(exp)
	if err := json.Unmarshal(data, &doc); err != nil || doc.Version != 2 || len(doc.Marks) != 1 || doc.Marks[0].Level != 42 ||
		doc.Marks[0].Kind != "attestation" || doc.Marks[0].Key != pkh || !strings.HasPrefix(doc.Marks[0].Digest, strings.TrimSuffix(strings.Fields(out)[len(strings.Fields(out))-1], "…")) {
		t.Fatalf("export (names and hex, as show prints them): %v %s\nshow: %s", err, data, out)
	}
	// Import into a fresh store, then the old level is refused there.
	dir2 := t.TempDir()
	addr2 := testutil.Addr(t)
	cfg2 := tezosConfig(t, dir2, addr2, "", keySpec{"baker", p, "tezos:\n  allow: [attestation]"})
	if out, err := testutil.Run(t, nil, "watermark", "import", "--config", cfg2, "--in", exp); err != nil {
		t.Fatalf("import: %v %s", err, out)
	}
	d2 := testutil.StartKeyward(t, cfg2, addr2, passEnv...)
	if r := postSign(t, d2.TezosURL, pkh, hexBody(tezostest.Attestation(41, 0, 2)), ""); r.status != 409 {
		t.Fatalf("old level after import: %d %s", r.status, r.body)
	}
	if r := postSign(t, d2.TezosURL, pkh, hexBody(tezostest.Attestation(43, 0, 2)), ""); r.status != 200 {
		t.Fatalf("new level after import: %d %s", r.status, r.body)
	}
	// set needs --force.
	if out, err := testutil.Run(t, nil, "watermark", "set", "--config", cfg2, "--key", pkh, "--chain", "NetXdQprcVkpaWU", "--kind", "attestation", "--level", "1"); err == nil {
		t.Fatalf("set without --force: %s", out)
	}
}
