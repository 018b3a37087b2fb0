package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testutil"
)

const passphrase = "e2e-test-passphrase"

var passEnv = []string{"KEYWARD_PASSPHRASE=" + passphrase}

var tzRe = regexp.MustCompile(`tz address: (tz[123][1-9A-HJ-NP-Za-km-z]+)`)

// genKey runs `keyward keys generate` and returns the file path and tz address.
func genKey(t *testing.T, dir, typ string) (string, string) {
	t.Helper()
	path := filepath.Join(dir, typ+".json")
	out, err := testutil.Run(t, passEnv, "keys", "generate", "--type", typ, "--out", path)
	if err != nil {
		t.Fatalf("keys generate: %v\n%s", err, out)
	}
	m := tzRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no tz address in:\n%s", out)
	}
	return path, m[1]
}

type keySpec struct {
	name, path, rules string
}

// tezosConfig writes a config for keys (name → file path, policy YAML block).
func tezosConfig(t *testing.T, dir, addr string, extra string, keys ...keySpec) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "tezos:\n  listen: %s\n%swatermark: file://%s\naudit: %s\nkeys:\n", addr, extra, filepath.Join(dir, "wm"), filepath.Join(dir, "audit.jsonl"))
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s:\n    ref: file://%s\n", k.name, k.path)
		if k.rules != "" {
			for _, line := range strings.Split(strings.TrimRight(k.rules, "\n"), "\n") {
				fmt.Fprintf(&b, "    %s\n", line)
			}
		}
	}
	return testutil.WriteConfig(t, dir, b.String())
}

type signResp struct {
	status int
	sig    string
	body   string
}

func postSign(t *testing.T, base, pkh string, body []byte, query string) signResp {
	t.Helper()
	url := base + "/keys/" + pkh
	if query != "" {
		url += "?" + query
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := signResp{status: resp.StatusCode, body: string(b)}
	if resp.StatusCode == 200 {
		var v struct {
			Signature string `json:"signature"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("200 with body %q: %v", b, err)
		}
		r.sig = v.Signature
	}
	return r
}

func hexBody(payload []byte) []byte { return []byte(fmt.Sprintf("%q", fmt.Sprintf("%x", payload))) }

// auditLines reads the audit file as JSON objects.
func auditLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("audit line is not JSON: %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}
