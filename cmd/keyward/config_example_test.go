package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/keyward/keyward/config"
	"github.com/keyward/keyward/internal/testutil"
	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/local"
)

// runCLI runs `keyward args...` in process and returns its output.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(args, &out, &out)
	return out.String(), err
}

// commentedSetting is a setting the example shows commented out: the "# "
// after its indentation is all there is to remove.
var commentedSetting = regexp.MustCompile(`(?m)^(\s*)# (\s*[a-z_]+:.*)$`)

func uncomment(text string) string { return commentedSetting.ReplaceAllString(text, "$1$2") }

// exampleRoot prints the example under a scratch root and creates every
// file it names: keys, passphrase, tokens and TLS files.
func exampleRoot(t *testing.T) (root, text string) {
	t.Helper()
	root = t.TempDir()
	text, err := runCLI(t, "config", "example", "--root", root)
	if err != nil {
		t.Fatalf("config example: %v\n%s", err, text)
	}
	mk := func(rel string) string {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pass := []byte("example passphrase")
	if err := os.WriteFile(mk("run/credentials/keyward.service/passphrase"), pass, 0o400); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"baker", "oracle", "poster"} {
		k, err := local.Generate(signer.Secp256k1)
		if err != nil {
			t.Fatal(err)
		}
		if err := local.WriteKeyFile(context.Background(), mk("var/lib/keyward/keys/"+name+".json"), k, local.WriteOptions{Passphrase: pass}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(mk("etc/keyward/tokens"), []byte("bot-a 0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsDir := mk("etc/keyward/tls/x")
	tlsDir = filepath.Dir(tlsDir)
	testutil.TLSFiles(t, tlsDir)
	for _, side := range []string{"tezos", "ethereum"} {
		for _, ext := range []string{".crt", ".key"} {
			data, _ := os.ReadFile(filepath.Join(tlsDir, "server"+ext))
			os.WriteFile(filepath.Join(tlsDir, side+ext), data, 0o600)
		}
	}
	data, _ := os.ReadFile(filepath.Join(tlsDir, "ca.crt"))
	os.WriteFile(filepath.Join(tlsDir, "clients-ca.crt"), data, 0o600)
	return root, text
}

// Build item 5 of issue 14: `config example` prints a configuration that
// `config check` accepts, as printed and with every commented-out setting
// turned on.
func TestConfigExample_ConfigCheckAcceptsIt(t *testing.T) {
	root, text := exampleRoot(t)
	for name, body := range map[string]string{"as printed": text, "every setting on": uncomment(text)} {
		p := filepath.Join(root, strings.ReplaceAll(name, " ", "-")+".yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := runCLI(t, "config", "check", "--config", p)
		if err != nil || !strings.Contains(out, "OK (3 keys") {
			t.Fatalf("%s: config check: %v\n%s", name, err, out)
		}
		if strings.Contains(out, "warning:") {
			t.Errorf("%s: the example draws warnings:\n%s", name, out)
		}
	}
	if uncomment(text) == text {
		t.Fatal("the example has no commented-out settings (the TLS blocks, audit_sync)")
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/keyward/watermarks")); err == nil {
		t.Error("config check created the watermark directory")
	}
	if _, err := os.Stat(filepath.Join(root, "var/log/keyward")); err == nil {
		t.Error("config check created the audit directory")
	}
}

// Every setting of every section of the configuration appears in the
// example (turned on or commented out), so a field added to config, policy
// or server without its line in the example fails here.
func TestConfigExample_HasEverySetting(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(uncomment(exampleConfig("/x"))), &doc); err != nil {
		t.Fatal(err)
	}
	want := map[reflect.Type]map[string]bool{}
	seen := map[reflect.Type]map[string]bool{}
	var walkType func(t reflect.Type)
	walkType = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || want[t] != nil {
			return
		}
		want[t] = map[string]bool{}
		for i := 0; i < t.NumField(); i++ {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			want[t][name] = true
			walkType(t.Field(i).Type)
		}
	}
	root := reflect.TypeFor[config.Config]()
	walkType(root)
	var walk func(n *yaml.Node, t reflect.Type)
	walk = func(n *yaml.Node, t reflect.Type) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case n.Kind == yaml.DocumentNode:
			walk(n.Content[0], t)
		case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
			for _, c := range n.Content {
				walk(c, t.Elem())
			}
		case n.Kind == yaml.MappingNode && t.Kind() == reflect.Map:
			for i := 1; i < len(n.Content); i += 2 {
				walk(n.Content[i], t.Elem())
			}
		case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
			if seen[t] == nil {
				seen[t] = map[string]bool{}
			}
			for i := 0; i+1 < len(n.Content); i += 2 {
				name := n.Content[i].Value
				seen[t][name] = true
				for j := 0; j < t.NumField(); j++ {
					if n2, _, _ := strings.Cut(t.Field(j).Tag.Get("yaml"), ","); n2 == name {
						walk(n.Content[i+1], t.Field(j).Type)
					}
				}
			}
		}
	}
	walk(&doc, root)
	var missing []string
	for typ, names := range want {
		for name := range names {
			if !seen[typ][name] {
				missing = append(missing, typ.String()+"."+name)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("settings missing from keyward config example: %v", missing)
	}
}
