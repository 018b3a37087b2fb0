package main

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testutil"
)

// Finding 7 of issue 14: keys show --help printed an empty Flags section
// and every watermark subcommand printed the group's usage.
func TestCLI_EverySubcommandHasItsOwnHelp(t *testing.T) {
	for _, args := range [][]string{
		{"keys", "show", "--help"}, {"watermark", "show", "--help"}, {"watermark", "set", "--help"},
		{"watermark", "export", "--help"}, {"watermark", "import", "--help"}, {"config", "check", "--help"},
		{"config", "example", "--help"}, {"audit", "verify", "--help"},
	} {
		out, err := runCLI(t, args...)
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%v: %v", args, err)
		}
		want := "Usage: keyward " + strings.Join(args[:len(args)-1], " ")
		if !strings.HasPrefix(out, want) {
			t.Errorf("%v: help starts %q, want %q", args, firstLine(out), want)
		}
		if strings.HasSuffix(strings.TrimSpace(out), "Flags:") {
			t.Errorf("%v: empty Flags section:\n%s", args, out)
		}
	}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

// Finding 7: version printed "dev"; it prints the module version and the
// VCS revision (or says none was stamped) and the Go version.
func TestCLI_VersionNamesModuleVersionAndRevision(t *testing.T) {
	out, err := runCLI(t, "version")
	if err != nil || !strings.HasPrefix(out, "keyward ") || strings.HasPrefix(out, "keyward dev") || !strings.Contains(out, "go1.") ||
		!(strings.Contains(out, "revision ") || strings.Contains(out, "no VCS revision stamped")) {
		t.Fatalf("version: %v %q", err, out)
	}
}

// Finding 7: a group-readable secret file was called a "passphrase file".
func TestCLI_KeysImportNamesTheSecretFile(t *testing.T) {
	t.Setenv("KEYWARD_PASSPHRASE", "x")
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("unencrypted:edsk3gUfUPyBSfrS9CCgmCiQsTCHGkviBDusMxDJstFtojtc1zcpsh\n"), 0o644)
	_, err := runCLI(t, "keys", "import", "--from", secret, "--out", filepath.Join(t.TempDir(), "k.json"))
	if err == nil || !strings.Contains(err.Error(), "secret key file") || strings.Contains(err.Error(), "passphrase") {
		t.Fatalf("err = %v", err)
	}
}

// Finding 7: export wrote "kind": 19 and base64 where show and set use
// names and hex. Version 2 uses names and hex; import reads both.
func TestCLI_WatermarkImportReadsBothExportVersions(t *testing.T) {
	dir := t.TempDir()
	key, pkh, _ := opsKey(t, dir, "baker")
	digest := strings.Repeat("ab", 32)
	v1 := `{"version":1,"marks":[{"id":{"key":"` + pkh + `","chain":"NetXdQprcVkpaWU","kind":19},"mark":{"level":7,"round":1,"digest":"` + "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=" + `"}}]}`
	v2 := `{"version":2,"marks":[{"key":"` + pkh + `","chain":"NetXdQprcVkpaWU","kind":"block","level":9,"round":0,"digest":"` + digest + `"}]}`
	for name, doc := range map[string]string{"v1": v1, "v2": v2} {
		d := filepath.Join(dir, name)
		os.Mkdir(d, 0o700)
		cfg := testutil.WriteConfig(t, d, "watermark: file://"+d+"/wm\nkeys:\n  baker:\n    ref: file://"+key+"\n")
		in := filepath.Join(d, "marks.json")
		os.WriteFile(in, []byte(doc), 0o600)
		if out, err := runCLI(t, "watermark", "import", "--config", cfg, "--in", in); err != nil || !strings.Contains(out, "imported 1 marks") {
			t.Fatalf("%s import: %v\n%s", name, err, out)
		}
		out, err := runCLI(t, "watermark", "export", "--config", cfg)
		if err != nil {
			t.Fatal(err)
		}
		var exp exportDoc
		if err := json.Unmarshal([]byte(out), &exp); err != nil || exp.Version != 2 || len(exp.Marks) != 1 {
			t.Fatalf("%s export: %v\n%s", name, err, out)
		}
		m := exp.Marks[0]
		if m.Digest != digest || (name == "v1" && (m.Kind != "attestation" || m.Level != 7)) || (name == "v2" && (m.Kind != "block" || m.Level != 9)) {
			t.Errorf("%s: exported %+v", name, m)
		}
		if !strings.Contains(out, `"kind": "`) {
			t.Errorf("%s: kind not by name:\n%s", name, out)
		}
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"version":2,"marks":[{"key":"x","chain":"y","kind":"blocks","level":1,"round":0,"digest":"00"}]}`), 0o600)
	if _, err := runCLI(t, "watermark", "import", "--config", filepath.Join(dir, "v2", "keyward.yaml"), "--in", bad); err == nil || !strings.Contains(err.Error(), "marks[0]") {
		t.Fatalf("bad kind: %v", err)
	}
}
