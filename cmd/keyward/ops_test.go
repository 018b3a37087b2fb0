package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/chains/ethereum"
	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/internal/testutil"
	"github.com/keyward/keyward/internal/tezostest"
	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/local"
)

// opsKey writes an unencrypted secp256k1 key file into dir and returns its
// path, tz address and 0x address.
func opsKey(t *testing.T, dir, name string) (path, pkh, eth string) {
	t.Helper()
	k, err := local.Generate(signer.Secp256k1)
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, name+".json")
	if err := local.WriteKeyFile(context.Background(), path, k, local.WriteOptions{Plaintext: true}); err != nil {
		t.Fatal(err)
	}
	if pkh, err = tezos.PublicKeyHash(k.PublicKey()); err != nil {
		t.Fatal(err)
	}
	a, err := ethereum.Address(k.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	return path, pkh, a.Hex()
}

func sign(t *testing.T, base, pkh string, payload []byte) int {
	t.Helper()
	resp, err := http.Post(base+"/keys/"+pkh, "application/json", bytes.NewReader(tezostest.HexBody(payload)))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// keywardErr is the one error line keyward prints when a command fails.
func keywardErr(t *testing.T, out string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "keyward: ") {
			return strings.TrimPrefix(l, "keyward: ")
		}
	}
	t.Fatalf("no error line in:\n%s", out)
	return ""
}

// Finding 1 of issue 14: config check, watermark show and export failed
// beside a running daemon ("watermark directory in use by another
// process"). They now work while it runs; set and import still need it
// stopped, and say so.
func TestOps_ConfigCheckAndWatermarkReadsBesideARunningDaemon(t *testing.T) {
	dir := t.TempDir()
	key, pkh, _ := opsKey(t, dir, "baker")
	addr := testutil.Addr(t)
	cfg := testutil.WriteConfig(t, dir, fmt.Sprintf("tezos:\n  listen: %s\nwatermark: file://%s/wm\naudit: %s/audit.jsonl\nkeys:\n  baker:\n    ref: file://%s\n", addr, dir, dir, key))
	d := testutil.StartKeyward(t, cfg, addr)
	if st := sign(t, d.TezosURL, pkh, tezostest.Attestation(42, 0, 1)); st != 200 {
		t.Fatalf("attestation: %d\n%s", st, d.Output())
	}
	auditBefore, _ := os.ReadFile(filepath.Join(dir, "audit.jsonl"))
	for _, args := range [][]string{
		{"config", "check", "--config", cfg},
		{"watermark", "show", "--config", cfg},
		{"watermark", "export", "--config", cfg},
	} {
		out, err := testutil.Run(t, nil, args...)
		if err != nil {
			t.Fatalf("keyward %s beside the daemon: %v\n%s", strings.Join(args, " "), err, out)
		}
		if args[0] == "watermark" && (!strings.Contains(out, pkh) || !strings.Contains(out, "42") || !strings.Contains(out, "attestation")) {
			t.Errorf("%s lacks the mark:\n%s", args[1], out)
		}
	}
	out, err := testutil.Run(t, nil, "watermark", "set", "--config", cfg, "--key", pkh, "--chain", "NetXdQprcVkpaWU", "--kind", "attestation", "--level", "50", "--force")
	if err == nil || !strings.Contains(out, "stop keyward first") {
		t.Fatalf("watermark set beside the daemon: %v\n%s", err, out)
	}
	// The daemon still holds its locks and signs; nothing it wrote changed.
	if st := sign(t, d.TezosURL, pkh, tezostest.Attestation(43, 0, 1)); st != 200 {
		t.Fatalf("attestation after the tools ran: %d\n%s", st, d.Output())
	}
	if st := sign(t, d.TezosURL, pkh, tezostest.Attestation(42, 0, 2)); st != 409 {
		t.Fatalf("old level after the tools ran: %d", st)
	}
	auditAfter, _ := os.ReadFile(filepath.Join(dir, "audit.jsonl"))
	if !bytes.HasPrefix(auditAfter, auditBefore) {
		t.Fatal("the audit file changed under the daemon")
	}
}

// Finding 2 of issue 14: config check said OK and serve then refused to
// start. Both run one function now: what serve refuses, config check
// refuses with the same words.
func TestOps_ConfigCheckRefusesWhatServeRefusesInItsWords(t *testing.T) {
	dir := t.TempDir()
	key, _, _ := opsKey(t, dir, "k")
	roDir := filepath.Join(dir, "ro")
	os.Mkdir(roDir, 0o700)
	testutil.ReadOnlyDir(t, roDir)
	shortTokens := filepath.Join(dir, "short-tokens")
	os.WriteFile(shortTokens, []byte("bot short\n"), 0o600)
	addr := testutil.Addr(t)
	for name, tc := range map[string]struct{ extra, want string }{
		"token shorter than 16 characters": {"ethereum:\n  listen: " + testutil.Addr(t) + "\n  tokens_file: " + shortTokens + "\n", "shorter than 16"},
		"missing TLS certificate":          {"tezos:\n  listen: " + addr + "\n  tls: {cert: " + dir + "/none.crt, key: " + dir + "/none.key}\n", "tezos.tls"},
		"audit directory not writable":     {"tezos:\n  listen: " + addr + "\naudit: " + roDir + "/audit.jsonl\n", "not writable"},
		"watermark directory not writable": {"tezos:\n  listen: " + addr + "\n", "not writable"},
		"listener host unknown":            {"tezos:\n  listen: no-such-host.invalid:6732\n  allow_non_loopback: true\n", "tezos.listen"},
		"bad authorized key":               {"tezos:\n  listen: " + addr + "\n  authorized_keys: [edpkNOPE]\n", "tezos.authorized_keys"},
		"two listeners on one address":     {"tezos:\n  listen: " + addr + "\nserver:\n  metrics_listen: " + addr + "\n", "server.metrics_listen"},
	} {
		t.Run(name, func(t *testing.T) {
			wm := filepath.Join(dir, "wm-"+strings.ReplaceAll(name, " ", "-"))
			if name == "watermark directory not writable" {
				wm = filepath.Join(roDir, "wm")
			}
			cfg := testutil.WriteConfig(t, t.TempDir(), tc.extra+"watermark: file://"+wm+"\nkeys:\n  k:\n    ref: file://"+key+"\n")
			out, err := testutil.Run(t, nil, "config", "check", "--config", cfg)
			if err == nil {
				t.Fatalf("config check accepted it:\n%s", out)
			}
			checkErr := keywardErr(t, out)
			if !strings.Contains(checkErr, tc.want) {
				t.Errorf("config check: %q does not say %q", checkErr, tc.want)
			}
			d, err := testutil.TryStartKeyward(t, cfg, addr)
			if err == nil {
				d.Stop()
				t.Fatal("serve started")
			}
			if serveErr := keywardErr(t, strings.TrimPrefix(err.Error(), "keyward exited during start-up: ")); serveErr != checkErr {
				t.Errorf("different words:\n config check: %s\n serve:        %s", checkErr, serveErr)
			}
		})
	}
}

func ethCall(t *testing.T, c *http.Client, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"eth_accounts","params":[]}`))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func tlsClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	data, err := os.ReadFile(caFile)
	if err != nil || !pool.AppendCertsFromPEM(data) {
		t.Fatalf("CA %s: %v", caFile, err)
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
}

// waitLog waits for the daemon to log want (after the first n bytes).
func waitLog(t *testing.T, d *testutil.Daemon, from int, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := d.Output()
		if i := strings.Index(out[from:], want); i >= 0 {
			return out[from:]
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not log %q:\n%s", want, out[from:])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Finding 3 of issue 14: SIGHUP logged "configuration reloaded" and kept
// the old Ethereum tokens (a revoked token still got 200, the new one 401)
// and the old TLS certificate. Now both are reloaded; a reload that fails
// keeps everything as it was and says why.
func TestOps_SIGHUPReloadsTokensAndTLSOrKeepsTheOldState(t *testing.T) {
	dir := t.TempDir()
	key, _, _ := opsKey(t, dir, "poster")
	tokens := filepath.Join(dir, "tokens")
	os.WriteFile(tokens, []byte("bot old-token-0123456789\n"), 0o600)
	certA, certB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.Mkdir(certA, 0o700)
	os.Mkdir(certB, 0o700)
	testutil.TLSFiles(t, certA)
	testutil.TLSFiles(t, certB)
	live := filepath.Join(dir, "live")
	os.Mkdir(live, 0o700)
	use := func(from string) {
		for _, f := range []string{"server.crt", "server.key"} {
			data, _ := os.ReadFile(filepath.Join(from, f))
			os.WriteFile(filepath.Join(live, f), data, 0o600)
		}
	}
	use(certA)
	tezosAddr, ethAddr := testutil.Addr(t), testutil.Addr(t)
	cfgText := func(tokensFile string) string {
		return fmt.Sprintf("tezos:\n  listen: %s\nethereum:\n  listen: %s\n  tokens_file: %s\n  tls: {cert: %s/server.crt, key: %s/server.key}\nwatermark: file://%s/wm\nkeys:\n  poster:\n    ref: file://%s\n    ethereum: {}\n",
			tezosAddr, ethAddr, tokensFile, live, live, dir, key)
	}
	cfg := testutil.WriteConfig(t, dir, cfgText(tokens))
	d := testutil.StartKeyward(t, cfg, tezosAddr)
	url := "https://" + ethAddr
	trustA, trustB := tlsClient(t, filepath.Join(certA, "ca.crt")), tlsClient(t, filepath.Join(certB, "ca.crt"))
	if ethCall(t, trustA, url, "old-token-0123456789") != 200 || ethCall(t, trustA, url, "new-token-0123456789") != 401 {
		t.Fatalf("before the reload\n%s", d.Output())
	}

	// Revoke the old token, add a new one, renew the certificate.
	os.WriteFile(tokens, []byte("bot new-token-0123456789\n"), 0o600)
	use(certB)
	mark := len(d.Output())
	d.Cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, d, mark, "configuration reloaded")
	if got := ethCall(t, trustB, url, "old-token-0123456789"); got != 401 {
		t.Errorf("revoked token after SIGHUP: HTTP %d, want 401", got)
	}
	if got := ethCall(t, trustB, url, "new-token-0123456789"); got != 200 {
		t.Errorf("new token after SIGHUP: HTTP %d, want 200", got)
	}
	if got := ethCall(t, trustA, url, "new-token-0123456789"); got != 0 {
		t.Errorf("the old certificate is still served (HTTP %d)", got)
	}

	// A broken tokens file, a missing certificate, a change that needs a
	// restart: each reload fails, says why, and changes nothing.
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("bot short\n"), 0o600)
	for _, tc := range []struct {
		name, cfg, want string
		prep            func()
	}{
		{"short token", cfgText(short), "shorter than 16", nil},
		{"certificate gone", cfgText(tokens), "ethereum.tls", func() { os.Remove(filepath.Join(live, "server.key")) }},
		{"restart-only change", strings.Replace(cfgText(tokens), "watermark: file://"+dir+"/wm", "watermark: file://"+dir+"/wm2", 1), "watermark changed", func() { use(certB) }},
	} {
		if tc.prep != nil {
			tc.prep()
		}
		testutil.WriteConfig(t, dir, tc.cfg)
		mark := len(d.Output())
		d.Cmd.Process.Signal(syscall.SIGHUP)
		out := waitLog(t, d, mark, "reload failed")
		if !strings.Contains(out, tc.want) {
			t.Errorf("%s: the failed reload does not say %q:\n%s", tc.name, tc.want, out)
		}
		if ethCall(t, trustB, url, "new-token-0123456789") != 200 || ethCall(t, trustB, url, "old-token-0123456789") != 401 {
			t.Errorf("%s: the failed reload changed the running state", tc.name)
		}
	}
}

func metric(t *testing.T, url, name string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			return f[1]
		}
	}
	return ""
}

// Finding 4 of issue 14: deleting the last line of the audit log left
// audit verify saying "chain intact", and the daemon started on the broken
// chain without a word. Now verify reports the missing tail, and the
// daemon logs an error, writes a chain-break record linking the old head,
// counts it in keyward_audit_chain_breaks_total, and keeps signing.
func TestOps_TruncatedAuditTailIsReportedAndRecorded(t *testing.T) {
	dir := t.TempDir()
	key, pkh, _ := opsKey(t, dir, "baker")
	addr, maddr := testutil.Addr(t), testutil.Addr(t)
	ap := filepath.Join(dir, "log", "audit.jsonl") // a missing audit directory is created
	cfg := testutil.WriteConfig(t, dir, fmt.Sprintf("tezos:\n  listen: %s\nserver:\n  metrics_listen: %s\nwatermark: file://%s/wm\naudit: %s\nkeys:\n  baker:\n    ref: file://%s\n", addr, maddr, dir, ap, key))
	d := testutil.StartKeyward(t, cfg, addr)
	for lvl := int32(1); lvl <= 3; lvl++ {
		if st := sign(t, d.TezosURL, pkh, tezostest.Attestation(lvl, 0, 1)); st != 200 {
			t.Fatalf("attestation %d: %d", lvl, st)
		}
	}
	d.Stop()
	if out, err := testutil.Run(t, nil, "audit", "verify", ap); err != nil || !strings.Contains(out, "3 lines, chain intact, tail matches the anchor at line 3") {
		t.Fatalf("verify of the intact log: %v\n%s", err, out)
	}
	data, _ := os.ReadFile(ap)
	lines := bytes.SplitAfter(data, []byte("\n"))
	os.WriteFile(ap, bytes.Join(lines[:2], nil), 0o600) // the last line deleted

	out, err := testutil.Run(t, nil, "audit", "verify", ap)
	if err == nil || !strings.Contains(out, "the anchor records 3 lines, the file holds 2") {
		t.Fatalf("verify of the truncated log: %v\n%s", err, out)
	}
	if out, err := testutil.Run(t, nil, "config", "check", "--config", cfg); err != nil || !strings.Contains(out, "warning: audit") {
		t.Errorf("config check does not warn of the break: %v\n%s", err, out)
	}
	d = testutil.StartKeyward(t, cfg, addr)
	if !strings.Contains(d.Output(), "level=ERROR") || !strings.Contains(d.Output(), "audit log tail missing or edited") {
		t.Errorf("the daemon started on a broken chain without an error:\n%s", d.Output())
	}
	if v := metric(t, "http://"+maddr+"/metrics", "keyward_audit_chain_breaks_total"); v != "1" {
		t.Errorf("keyward_audit_chain_breaks_total = %q, want 1", v)
	}
	if st := sign(t, d.TezosURL, pkh, tezostest.Attestation(4, 0, 1)); st != 200 {
		t.Fatalf("signing after the break: %d", st)
	}
	d.Stop()
	out, err = testutil.Run(t, nil, "audit", "verify", ap)
	if err == nil || !strings.Contains(out, "recorded 1 chain break") || !strings.Contains(out, "line 3: the file holds 2 lines where the anchor recorded 3") {
		t.Fatalf("verify after the recorded break: %v\n%s", err, out)
	}
}

// The Tezos listener beyond loopback without authentication is refused,
// as on the Ethereum side, unless allow_non_loopback: true (then warned).
func TestOps_TezosBeyondLoopbackNeedsAuthentication(t *testing.T) {
	dir := t.TempDir()
	key, _, _ := opsKey(t, dir, "baker")
	port := testutil.FreePort(t)
	base := fmt.Sprintf("watermark: file://%s/wm\nkeys:\n  baker:\n    ref: file://%s\ntezos:\n  listen: 0.0.0.0:%d\n", dir, key, port)
	cfg := testutil.WriteConfig(t, dir, base)
	if out, err := testutil.Run(t, nil, "config", "check", "--config", cfg); err == nil || !strings.Contains(out, "allow_non_loopback") {
		t.Fatalf("config check: %v\n%s", err, out)
	}
	cfg = testutil.WriteConfig(t, dir, base+"  allow_non_loopback: true\n")
	d := testutil.StartKeyward(t, cfg, net.JoinHostPort("127.0.0.1", fmt.Sprint(port)))
	if !strings.Contains(d.Output(), "tezos listener 0.0.0.0") || !strings.Contains(d.Output(), "level=WARN") {
		t.Errorf("no warning for an open Tezos listener:\n%s", d.Output())
	}
}
