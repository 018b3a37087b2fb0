package e2e

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testutil"
	"github.com/keyward/keyward/internal/tezostest"
)

// metricValue reads one sample from a Prometheus text exposition.
func metricValue(t *testing.T, url, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(line, l) {
				ok = false
			}
		}
		if ok {
			var v float64
			fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v)
			return v
		}
	}
	return 0
}

func TestOps_MetricsCountRequestsAndHealth(t *testing.T) {
	dir := t.TempDir()
	p, pkh := genKey(t, dir, "secp256k1")
	addr, maddr := testutil.Addr(t), testutil.Addr(t)
	cfg := tezosConfig(t, dir, addr, "server:\n  metrics_listen: "+maddr+"\n", keySpec{"baker", p, "tezos:\n  allow: [attestation]"})
	d := testutil.StartKeyward(t, cfg, addr, passEnv...)
	for i := int32(1); i <= 5; i++ {
		if r := postSign(t, d.TezosURL, pkh, hexBody(tezostest.Attestation(i, 0, 1)), ""); r.status != 200 {
			t.Fatal(r.body)
		}
	}
	for i := 0; i < 3; i++ {
		if r := postSign(t, d.TezosURL, pkh, hexBody(tezostest.Attestation(2, 0, 9)), ""); r.status != 409 {
			t.Fatal(r.body)
		}
	}
	if r := postSign(t, d.TezosURL, pkh, []byte(`"05010000000161"`), ""); r.status != 403 {
		t.Fatalf("michelson data for a baker key: %d %s", r.status, r.body)
	}
	m := "http://" + maddr + "/metrics"
	if v := metricValue(t, m, "keyward_sign_requests_total", `key="baker"`, `kind="attestation"`, `outcome="signed"`); v != 5 {
		t.Errorf("signed attestations = %v, want 5", v)
	}
	if v := metricValue(t, m, "keyward_sign_requests_total", `key="baker"`, `kind="attestation"`, `outcome="refused"`); v != 3 {
		t.Errorf("refused attestations = %v, want 3", v)
	}
	if v := metricValue(t, m, "keyward_refusals_total", `rule="watermark"`); v != 3 {
		t.Errorf("watermark refusals = %v, want 3", v)
	}
	if v := metricValue(t, m, "keyward_refusals_total", `rule="tezos.allow"`); v != 1 {
		t.Errorf("tezos.allow refusals = %v, want 1", v)
	}
	if v := metricValue(t, m, "keyward_build_info"); v != 1 {
		t.Errorf("build info = %v", v)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + maddr + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", path, err, resp)
		}
		resp.Body.Close()
	}
	// The watermark directory replaced by a file: /readyz turns false.
	wm := filepath.Join(dir, "wm")
	os.RemoveAll(wm)
	os.WriteFile(wm, nil, 0o600)
	resp, err := http.Get("http://" + maddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("/readyz with a broken watermark store: %d", resp.StatusCode)
	}
}

func TestOps_AuditVerifyDetectsEdits(t *testing.T) {
	dir := t.TempDir()
	p, pkh := genKey(t, dir, "secp256k1")
	addr := testutil.Addr(t)
	cfg := tezosConfig(t, dir, addr, "", keySpec{"baker", p, "tezos:\n  allow: [attestation]"})
	d := testutil.StartKeyward(t, cfg, addr, passEnv...)
	for i := int32(1); i <= 4; i++ {
		postSign(t, d.TezosURL, pkh, hexBody(tezostest.Attestation(i, 0, 1)), "")
	}
	postSign(t, d.TezosURL, pkh, hexBody(tezostest.Attestation(1, 0, 2)), "")
	d.Stop()
	ap := filepath.Join(dir, "audit.jsonl")
	if out, err := testutil.Run(t, nil, "audit", "verify", ap); err != nil {
		t.Fatalf("intact log fails verify: %v %s", err, out)
	}
	lines := auditLines(t, ap)
	if len(lines) != 5 || lines[4]["rule"] != "watermark" || lines[4]["outcome"] != "refused" {
		t.Fatalf("audit lines: %v", lines)
	}
	data, _ := os.ReadFile(ap)
	edited := strings.Replace(string(data), `"level":3`, `"level":30`, 1)
	os.WriteFile(ap, []byte(edited), 0o600)
	out, err := testutil.Run(t, nil, "audit", "verify", ap)
	if err == nil || !strings.Contains(out, "line 4") {
		t.Fatalf("edited log: err=%v out=%s (want a broken link at line 4)", err, out)
	}
	// A removed line is caught too.
	parts := strings.SplitAfter(string(data), "\n")
	os.WriteFile(ap, []byte(strings.Join(append(parts[:1], parts[2:]...), "")), 0o600)
	if out, err := testutil.Run(t, nil, "audit", "verify", ap); err == nil || !strings.Contains(out, "line 2") {
		t.Fatalf("log with a removed line: err=%v out=%s", err, out)
	}
}

func TestOps_SIGHUPReloadsPolicy(t *testing.T) {
	dir := t.TempDir()
	p, pkh := genKey(t, dir, "secp256k1")
	addr := testutil.Addr(t)
	cfg := tezosConfig(t, dir, addr, "", keySpec{"k", p, "tezos:\n  allow: [michelson_data]"})
	d := testutil.StartKeyward(t, cfg, addr, passEnv...)
	if r := postSign(t, d.TezosURL, pkh, []byte(`"050005"`), ""); r.status != 200 {
		t.Fatal(r.body)
	}
	tezosConfig(t, dir, addr, "", keySpec{"k", p, "tezos:\n  allow: [attestation]"})
	d.Cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := postSign(t, d.TezosURL, pkh, []byte(`"050005"`), "")
		if r.status == 403 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("policy not reloaded: %d\n%s", r.status, d.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestOps_SIGTERMLosesNoInFlightAnswer(t *testing.T) {
	dir := t.TempDir()
	p, pkh := genKey(t, dir, "secp256k1")
	addr := testutil.Addr(t)
	cfg := tezosConfig(t, dir, addr, "", keySpec{"k", p, "tezos:\n  allow: [michelson_data]"})
	d := testutil.StartKeyward(t, cfg, addr, passEnv...)
	var ok, refused, broken atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for c := 0; c < 16; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One connection per request, so a request either reaches a live
			// listener or is refused at connect.
			tr := &http.Transport{DisableKeepAlives: true}
			cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := cl.Post(d.TezosURL+"/keys/"+pkh, "application/json", strings.NewReader(`"050005"`))
				if err != nil {
					var op *net.OpError
					if errors.As(err, &op) && op.Op == "dial" {
						refused.Add(1)
						time.Sleep(5 * time.Millisecond)
						continue
					}
					// Refused at connect, or reset while still in the kernel's
					// accept queue: keyward never saw it. Whether anything was
					// signed without an answer is checked against the audit log.
					refused.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 && strings.Contains(string(b), "spsig1") {
					ok.Add(1)
				} else {
					broken.Add(1)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	d.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("keyward did not stop after SIGTERM")
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if ok.Load() == 0 {
		t.Fatal("no request succeeded before shutdown")
	}
	if broken.Load() != 0 {
		t.Fatalf("%d requests got a broken answer during shutdown", broken.Load())
	}
	signed := 0
	for _, l := range auditLines(t, filepath.Join(dir, "audit.jsonl")) {
		if l["outcome"] == "signed" {
			signed++
		}
	}
	if int64(signed) != ok.Load() {
		t.Fatalf("keyward signed %d requests but clients received %d signatures: %d answers lost in shutdown", signed, ok.Load(), int64(signed)-ok.Load())
	}
	t.Logf("%d answered, %d refused or reset before keyward accepted them", ok.Load(), refused.Load())
	if !strings.Contains(d.Output(), "stopped") {
		t.Fatalf("no clean stop in the log:\n%s", d.Output())
	}
}

func TestOps_MutualTLS(t *testing.T) {
	dir := t.TempDir()
	p, pkh := genKey(t, dir, "secp256k1")
	ca, sc, sk, cc, ck := testutil.TLSFiles(t, dir)
	addr := testutil.Addr(t)
	extra := ""
	cfgText := func() string {
		return fmt.Sprintf("  tls:\n    cert: %s\n    key: %s\n    client_ca: %s\n", sc, sk, ca)
	}
	_ = extra
	var b strings.Builder
	fmt.Fprintf(&b, "tezos:\n  listen: %s\n%swatermark: file://%s\naudit: %s\nkeys:\n  k:\n    ref: file://%s\n    tezos:\n      allow: [michelson_data]\n", addr, cfgText(), filepath.Join(dir, "wm"), filepath.Join(dir, "audit.jsonl"), p)
	cfg := testutil.WriteConfig(t, dir, b.String())

	bin := testutil.Keyward(t)
	_ = bin
	pool := x509.NewCertPool()
	caData, _ := os.ReadFile(ca)
	pool.AppendCertsFromPEM(caData)
	d := startTLSKeyward(t, cfg, addr, pool)

	noCert := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if _, err := noCert.Get("https://" + addr + "/keys/" + pkh); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	cert, err := tls.LoadX509KeyPair(cc, ck)
	if err != nil {
		t.Fatal(err)
	}
	withCert := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
	resp, err := withCert.Post("https://"+addr+"/keys/"+pkh, "application/json", strings.NewReader(`"050005"`))
	if err != nil {
		t.Fatalf("client with certificate: %v\n%s", err, d.Output())
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	d.Stop()
	lines := auditLines(t, filepath.Join(dir, "audit.jsonl"))
	if len(lines) == 0 || !strings.Contains(fmt.Sprint(lines[len(lines)-1]["auth"]), "CN=baker-client") {
		t.Fatalf("audit line lacks the client certificate subject: %v", lines)
	}
}

// startTLSKeyward starts keyward and waits for its TLS listener.
func startTLSKeyward(t *testing.T, cfg, addr string, pool *x509.CertPool) *testutil.Daemon {
	t.Helper()
	d := &testutil.Daemon{}
	_ = d
	// The generic helper polls over plain HTTP; poll the TCP port instead.
	dm, err := testutil.StartKeywardWait(t, cfg, func() bool {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}, passEnv...)
	if err != nil {
		t.Fatal(err)
	}
	return dm
}
