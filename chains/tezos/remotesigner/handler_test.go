package remotesigner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/config"
	"github.com/keyward/keyward/internal/tezostest"
	"github.com/keyward/keyward/keyring"
	limitsfile "github.com/keyward/keyward/limits/file"
	"github.com/keyward/keyward/pipeline"
	"github.com/keyward/keyward/pipeline/pipelinetest"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/local"
	"github.com/keyward/keyward/watermark"
	wmfile "github.com/keyward/keyward/watermark/file"
)

var (
	blockPayload     = tezostest.Block
	consensusPayload = tezostest.Consensus
)

type fixture struct {
	t       testing.TB
	srv     *httptest.Server
	store   watermark.Store
	wmDir   string
	auditP  string
	audit   *failableAudit
	obs     *pipelinetest.Recorder
	logs    *lockedBuffer
	p       *pipeline.Pipeline
	keys    map[signer.Curve]*keyring.Key
	backend *pipelinetest.FailingKey // the tz2 key's backend
	auth    *Authorizer
	origins []string
	listing bool // tezos.list_known_keys
	limDir  string
}

// failableAudit is the real audit file, made to fail on demand.
type failableAudit struct {
	*audit.File
	mu   sync.Mutex
	fail bool
}

func (f *failableAudit) Log(ctx context.Context, r *audit.Record) error {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail {
		return audit.ErrUnavailable
	}
	return f.File.Log(ctx, r)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Len() int { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Len() }

// newFixture serves one key per curve; rules, when given, adjust each
// key's Tezos rules.
func newFixture(t testing.TB, authorized []string, rules ...func(signer.Curve, *policy.TezosRules)) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{t: t, wmDir: filepath.Join(dir, "wm"), auditP: filepath.Join(dir, "audit.jsonl"), keys: map[signer.Curve]*keyring.Key{},
		obs: &pipelinetest.Recorder{}, logs: &lockedBuffer{}}
	st, err := wmfile.Open(f.wmDir)
	if err != nil {
		t.Fatal(err)
	}
	f.store = st
	al, err := audit.OpenFile(f.auditP)
	if err != nil {
		t.Fatal(err)
	}
	f.audit = &failableAudit{File: al}
	var keys []*keyring.Key
	for _, c := range []signer.Curve{signer.Ed25519, signer.Secp256k1, signer.P256, signer.BLS12381} {
		pk, err := local.Generate(c)
		if err != nil {
			t.Fatal(err)
		}
		var sk signer.Key = pk
		if c == signer.Secp256k1 {
			f.backend = &pipelinetest.FailingKey{Key: pk}
			sk = f.backend
		}
		u, _ := signer.ParseURI("file:///test/" + c.String())
		tr := &policy.TezosRules{Allow: []string{"block", "preattestation", "attestation", "generic", "michelson_data"}, Operations: []string{"transaction"}}
		for _, m := range rules {
			m(c, tr)
		}
		k, err := keyring.NewKey(c.String(), u, sk, config.KeyConfig{Tezos: tr})
		if err != nil {
			t.Fatal(err)
		}
		f.keys[c] = k
		keys = append(keys, k)
	}
	ring, err := keyring.New(keys)
	if err != nil {
		t.Fatal(err)
	}
	f.auth, err = NewAuthorizer(authorized)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	f.limDir = filepath.Join(dir, "limits")
	budgets, err := limitsfile.Open(f.limDir)
	if err != nil {
		t.Fatal(err)
	}
	f.p = pipeline.New(pipeline.Options{Store: st, Budgets: budgets, Audit: f.audit, Log: log, Observer: f.obs, Codes: Codes(), SummaryInterval: time.Hour})
	h := New(Options{Ring: func() *keyring.Ring { return ring }, Auth: func() *Authorizer { return f.auth }, Pipeline: f.p, Log: log,
		AllowedOrigins: func() []string { return f.origins }, ListKnownKeys: func() bool { return f.listing }})
	f.srv = httptest.NewServer(h)
	t.Cleanup(func() { f.srv.Close(); f.p.Close(); st.Close(); budgets.Close(); al.Close() })
	return f
}

// send posts a raw body with headers ("Name: value") and returns the status
// and the signature (200) or the error body.
func (f *fixture) send(pkh, query string, body []byte, headers ...string) (int, string) {
	f.t.Helper()
	u := f.srv.URL + "/keys/" + pkh
	if query != "" {
		u += "?" + query
	}
	req, _ := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Add(name, strings.TrimSpace(value))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return resp.StatusCode, string(b)
	}
	var v struct{ Signature string }
	if err := json.Unmarshal(b, &v); err != nil {
		f.t.Fatal(err)
	}
	return 200, v.Signature
}

func (f *fixture) post(pkh string, payload []byte, query string) (int, string) {
	f.t.Helper()
	return f.send(pkh, query, tezostest.HexBody(payload))
}

func (f *fixture) tz2() *keyring.Key { return f.keys[signer.Secp256k1] }
func (f *fixture) tz4() *keyring.Key { return f.keys[signer.BLS12381] }

func (f *fixture) records() []audit.Record {
	f.t.Helper()
	data, err := os.ReadFile(f.auditP)
	if err != nil {
		f.t.Fatal(err)
	}
	if n, err := audit.Verify(bytes.NewReader(data)); err != nil {
		f.t.Fatalf("audit chain broken after %d lines: %v", n, err)
	}
	var out []audit.Record
	for _, l := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var r audit.Record
		if err := json.Unmarshal(l, &r); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func TestWatermark_BlockSequence(t *testing.T) {
	f := newFixture(t, nil)
	pkh := f.tz2().PKH
	steps := []struct {
		name    string
		payload []byte
		want    int
	}{
		{"first block", blockPayload(100, 0, 0, 1), 200},
		{"same level and round, different payload", blockPayload(100, 0, 0, 2), 409},
		{"identical payload again", blockPayload(100, 0, 0, 1), 200},
		{"same level, higher fitness round, same payload round", blockPayload(100, 1, 0, 1), 200},
		{"lower round at same level", blockPayload(100, 0, 0, 5), 409},
		{"lower level", blockPayload(99, 5, 0, 1), 409},
		{"preattestation mark independent of block mark", consensusPayload(0x12, 100, 0, 1), 200},
		{"attestation mark independent of block and preattestation", consensusPayload(0x13, 100, 0, 1), 200},
		{"attestation, same level and round, different payload", consensusPayload(0x13, 100, 0, 2), 409},
		{"higher level", blockPayload(101, 0, 0, 1), 200},
	}
	var first string
	for i, s := range steps {
		code, body := f.post(pkh, s.payload, "")
		if code != s.want {
			t.Fatalf("step %d %s: status %d, want %d: %s", i, s.name, code, s.want, body)
		}
		if i == 0 {
			first = body
		}
		if i == 2 && body != first {
			t.Fatalf("identical retry returned a different signature: %s vs %s", body, first)
		}
	}
}

func TestWatermark_RaceOneSignatureAmong200(t *testing.T) {
	f := newFixture(t, nil)
	pkh := f.tz2().PKH
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			code, _ := f.post(pkh, consensusPayload(0x13, 500, 0, uint16(i)), "")
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	if codes[200] != 1 || codes[409] != 199 {
		t.Fatalf("want exactly 1 signature and 199 refusals, got %v", codes)
	}
}

func TestWatermark_UnwritableStoreRefuses503(t *testing.T) {
	f := newFixture(t, nil)
	pkh := f.tz2().PKH
	if code, body := f.post(pkh, consensusPayload(0x13, 10, 0, 1), ""); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	// Replace the watermark directory by a file: every write fails, even as root.
	if err := os.RemoveAll(f.wmDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.wmDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, body := f.post(pkh, consensusPayload(0x13, 11, 0, 1), "")
	if code != 503 {
		t.Fatalf("status %d, want 503: %s", code, body)
	}
	marks, err := f.store.Marks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range marks {
		if m.ID.Kind == 0x13 && m.Mark.Level != 10 {
			t.Fatalf("mark moved to %d", m.Mark.Level)
		}
	}
	// Generic operations (no watermark) still sign.
	if code, _ := f.post(pkh, []byte{0x05, 0x00, 0x05}, ""); code != 200 {
		t.Fatalf("michelson data refused with a broken store: %d", code)
	}
}

// TestOutcomes_StatusAuditMetric runs every outcome class of the pipeline
// through the Tezos transport: each answers its status, writes its audit
// line with the rule, and is counted under that rule.
func TestOutcomes_StatusAuditMetric(t *testing.T) {
	cases := []struct {
		name    string
		setup   func(f *fixture)
		payload func(f *fixture) []byte
		status  int
		class   pipeline.Class
		rule    pipeline.Rule
		audited bool
	}{
		{"signed", nil, func(*fixture) []byte { return consensusPayload(0x13, 20, 0, 1) }, 200, pipeline.Signed, "", true},
		{"identical retry", func(f *fixture) { f.post(f.tz2().PKH, consensusPayload(0x13, 20, 0, 1), "") },
			func(*fixture) []byte { return consensusPayload(0x13, 20, 0, 1) }, 200, pipeline.Signed, "", true},
		{"policy refusal", nil, func(*fixture) []byte { return []byte{0x01, 0, 0} }, 403, pipeline.Refused, "tezos.magic", true},
		{"operation kind not allowed", nil, func(f *fixture) []byte { return delegation(t, f.tz2().PKH) }, 403, pipeline.Refused, "tezos.operations", true},
		{"watermark refusal", func(f *fixture) { f.post(f.tz2().PKH, consensusPayload(0x13, 20, 0, 1), "") },
			func(*fixture) []byte { return consensusPayload(0x13, 20, 0, 2) }, 409, pipeline.Conflict, pipeline.RuleWatermark, true},
		{"undecodable payload", nil, func(*fixture) []byte { return []byte{0x03} }, 400, pipeline.Malformed, pipeline.RuleDecode, true},
		{"store down", func(f *fixture) {
			os.RemoveAll(f.wmDir)
			os.WriteFile(f.wmDir, []byte("x"), 0o600)
		}, func(*fixture) []byte { return consensusPayload(0x13, 20, 0, 1) }, 503, pipeline.Unavailable, pipeline.RuleWatermark, true},
		{"backend down", func(f *fixture) {
			f.post(f.tz2().PKH, consensusPayload(0x13, 19, 0, 1), "")
			f.backend.SetErr(signer.ErrUnavailable)
		}, func(*fixture) []byte { return consensusPayload(0x13, 20, 0, 1) }, 503, pipeline.Unavailable, pipeline.RuleBackend, true},
		{"backend error", func(f *fixture) { f.backend.SetErr(errors.New("pkcs11 token \"advtok\": CKR_DEVICE_ERROR")) },
			func(*fixture) []byte { return tezostest.MichelsonString("x") }, 502, pipeline.BackendFailed, pipeline.RuleBackend, true},
		{"audit down", func(f *fixture) { f.audit.mu.Lock(); f.audit.fail = true; f.audit.mu.Unlock() },
			func(*fixture) []byte { return consensusPayload(0x13, 20, 0, 1) }, 503, pipeline.Unavailable, pipeline.RuleAudit, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			if tc.setup != nil {
				tc.setup(f)
			}
			before := len(f.records())
			f.obs.Reset()
			code, body := f.post(f.tz2().PKH, tc.payload(f), "")
			if code != tc.status {
				t.Fatalf("status %d, want %d: %s", code, tc.status, body)
			}
			if code != 200 && (strings.Contains(body, "CKR") || strings.Contains(body, "advtok") || strings.Contains(body, f.wmDir)) {
				t.Fatalf("backend or store details reached the client: %s", body)
			}
			d := f.obs.Last()
			if d.Class != tc.class || d.Rule != tc.rule || !d.Identified {
				t.Errorf("metric %+v, want class %v rule %q", d, tc.class, tc.rule)
			}
			recs := f.records()
			if !tc.audited {
				if len(recs) != before {
					t.Fatalf("%d new audit lines, want none", len(recs)-before)
				}
				return
			}
			if len(recs) != before+1 {
				t.Fatalf("%d new audit lines, want 1", len(recs)-before)
			}
			r := recs[len(recs)-1]
			if r.Outcome != tc.class.AuditOutcome() || r.Rule != string(tc.rule) || r.Status != tc.status || r.Key != "secp256k1" {
				t.Errorf("audit line %+v, want outcome %s rule %q status %d", r, tc.class.AuditOutcome(), tc.rule, tc.status)
			}
		})
	}
}

// delegation is a 0x03 request with one delegation (withdrawal) by pkh.
func delegation(t *testing.T, pkh string) []byte {
	_, src, err := tezos.BinaryPKH(pkh)
	if err != nil {
		t.Fatal(err)
	}
	b := append([]byte{0x03}, bytes.Repeat([]byte{5}, 32)...)
	b = append(b, 110)
	b = append(b, src...)
	return append(b, 0xe8, 0x07, 0x01, 0xa0, 0x0b, 0x00, 0x00)
}

// authSig signs 0x04 ‖ 0x01 ‖ pkh21 ‖ payload with k for target.
func authSig(t *testing.T, k signer.Key, target *keyring.Key, payload []byte) string {
	t.Helper()
	return authSigBytes(t, k, target.PKHBytes, payload)
}

func TestAuthentication(t *testing.T) {
	var clients []*local.PrivateKey
	var entries []string
	for i, c := range []signer.Curve{signer.Ed25519, signer.Secp256k1, signer.P256} {
		k, _ := local.Generate(c)
		clients = append(clients, k)
		// tz1 by public key; tz2 by hash (recovered); tz3 by public key.
		if i == 1 {
			pkh, _ := tezos.PublicKeyHash(k.PublicKey())
			entries = append(entries, pkh)
		} else {
			pk, _ := tezos.EncodePublicKey(k.PublicKey())
			entries = append(entries, pk)
		}
	}
	tz3hash, _ := tezos.PublicKeyHash(clients[2].PublicKey())
	entries = append(entries, tz3hash) // a tz3 hash too
	f := newFixture(t, entries)
	target := f.tz2()
	payload := []byte{0x05, 0x01, 0, 0, 0, 2, 'h', 'i'}

	resp, _ := http.Get(f.srv.URL + "/authorized_keys")
	var ak struct {
		AuthorizedKeys []string `json:"authorized_keys"`
	}
	json.NewDecoder(resp.Body).Decode(&ak)
	resp.Body.Close()
	if len(ak.AuthorizedKeys) != 4 {
		t.Fatalf("authorized_keys = %v", ak.AuthorizedKeys)
	}

	stranger, _ := local.Generate(signer.Secp256k1)
	cases := []struct {
		name  string
		query string
		want  int
	}{
		{"no authentication", "", 401},
		{"signed by an unlisted key", "authentication=" + url.QueryEscape(authSig(t, stranger, target, payload)), 403},
		{"not a signature", "authentication=garbage", 403},
		{"signature over another payload", "authentication=" + url.QueryEscape(authSig(t, clients[0], target, []byte{5, 0, 1})), 403},
		{"tz1 authorized by public key", "authentication=" + url.QueryEscape(authSig(t, clients[0], target, payload)), 200},
		{"tz2 authorized by hash", "authentication=" + url.QueryEscape(authSig(t, clients[1], target, payload)), 200},
		{"tz3 authorized by public key and hash", "authentication=" + url.QueryEscape(authSig(t, clients[2], target, payload)), 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.post(target.PKH, payload, tc.query)
			if code != tc.want {
				t.Fatalf("status %d, want %d: %s", code, tc.want, body)
			}
		})
	}
	// Only the authenticated requests got audit lines, naming the client.
	for _, r := range f.records() {
		if r.Count == 0 && (r.Outcome != audit.Signed || !strings.HasPrefix(r.Auth, "tz")) {
			t.Errorf("audit line for an unauthenticated request: %+v", r)
		}
	}
}

// TestRejected_StrangersCannotFillTheDisk: with authorized_keys set, 2,000
// unauthenticated POSTs cost metrics and one summary, not 2,000 audit and
// log lines.
func TestRejected_StrangersCannotFillTheDisk(t *testing.T) {
	k, _ := local.Generate(signer.Ed25519)
	edpk, _ := tezos.EncodePublicKey(k.PublicKey())
	f := newFixture(t, []string{edpk})
	for i := 0; i < 2000; i++ {
		if code, _ := f.post(f.tz2().PKH, tezostest.MichelsonString("x"), ""); code != 401 {
			t.Fatalf("status %d, want 401", code)
		}
	}
	if n := len(f.obs.All()); n != 2000 {
		t.Fatalf("%d rejections counted, want 2000", n)
	}
	recs := f.records()
	if len(recs) != 1 || recs[0].Count != 1 || recs[0].Rule != "tezos.authorized_keys" || recs[0].Status != 401 {
		t.Fatalf("audit lines after 2000 unauthenticated requests: %+v", recs)
	}
	if n := f.logs.Len(); n > 1024 {
		t.Fatalf("%d bytes of log for 2000 unauthenticated requests", n)
	}
	f.p.Close()
	if recs := f.records(); len(recs) != 2 || recs[1].Count != 1999 {
		t.Fatalf("after the interval: %+v", recs)
	}
}

func TestAuthorizedKeys_EmptyWhenUnset(t *testing.T) {
	f := newFixture(t, nil)
	resp, err := http.Get(f.srv.URL + "/authorized_keys")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(bytes.TrimSpace(b)) != "{}" {
		t.Fatalf("got %s, want {}", b)
	}
}

// TestBrowserOrigin_RefusedUnlessEveryOriginAllowed: a cross-site POST from
// a web page carries an Origin header; any Origin header at all, empty or
// repeated, is a browser request, refused unless every value is allowed,
// and never gets a signature or moves a mark.
func TestBrowserOrigin_RefusedUnlessEveryOriginAllowed(t *testing.T) {
	f := newFixture(t, nil)
	f.origins = []string{"https://wallet.example"}
	pkh := f.tz2().PKH
	cases := []struct {
		name    string
		headers []string
		want    int
	}{
		{"foreign origin", []string{"Origin: https://evil.example"}, 403},
		{"empty origin", []string{"Origin:"}, 403},
		{"empty then foreign", []string{"Origin:", "Origin: https://evil.example"}, 403},
		{"allowed then foreign", []string{"Origin: https://wallet.example", "Origin: https://evil.example"}, 403},
		{"allowed origin", []string{"Origin: https://wallet.example"}, 200},
		{"no origin", nil, 200},
	}
	level := int32(1000)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			level++
			code, body := f.send(pkh, "", tezostest.HexBody(consensusPayload(0x13, level, 0, 1)), tc.headers...)
			if code != tc.want {
				t.Fatalf("status %d, want %d: %s", code, tc.want, body)
			}
			marks, _ := f.store.Marks(context.Background())
			if tc.want != 200 {
				for _, m := range marks {
					if m.Mark.Level == int64(level) {
						t.Fatalf("a refused browser request moved the mark to %d", level)
					}
				}
			}
		})
	}
}

func TestRequest_BadInputIs4xxAndSignsNothing(t *testing.T) {
	f := newFixture(t, nil)
	pkh := f.tz2().PKH
	cases := []struct {
		name  string
		pkh   string
		query string
		body  string
		want  int
	}{
		{"not hex", pkh, "", `"zz"`, 400},
		{"odd length", pkh, "", `"050"`, 400},
		{"empty body", pkh, "", ``, 400},
		{"empty string", pkh, "", `""`, 400},
		{"not a string", pkh, "", `{"a":1}`, 400},
		{"escaped string", pkh, "", `"\u0030\u0035000500"`, 400},
		{"bad version", pkh, "version=x", `"050005"`, 400},
		{"bad pkh", "tz9abc", "", `"050005"`, 400},
		{"unknown key", "tz1burnburnburnburnburnburnburjAYjjX", "", `"050005"`, 404},
		{"over the cap", pkh, "", `"` + strings.Repeat("00", DefaultMaxBody) + `"`, 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.send(tc.pkh, tc.query, []byte(tc.body))
			if code != tc.want {
				t.Fatalf("status %d, want %d: %s", code, tc.want, body)
			}
		})
	}
	if recs := f.records(); len(recs) > len(cases) {
		t.Fatalf("%d audit lines", len(recs))
	}
	for _, r := range f.records() {
		if r.Outcome == audit.Signed {
			t.Fatalf("bad input signed: %+v", r)
		}
	}
}

// TestBLS_ConsensusUnderWatermarks: a tz4 baker key signs blocks,
// preattestations and attestations (tags 40/41) at rising levels with the
// same watermark semantics as the other curves, under the scheme the
// version parameter selects; version 0 has no BLS and is a 400.
func TestBLS_ConsensusUnderWatermarks(t *testing.T) {
	f := newFixture(t, nil)
	k := f.tz4()
	if !strings.HasPrefix(k.PKH, "tz4") {
		t.Fatalf("BLS key address %s", k.PKH)
	}
	steps := []struct {
		name    string
		payload []byte
		version string
		want    int
		scheme  signer.BLSScheme
	}{
		{"block", blockPayload(200, 0, 0, 1), "3", 200, signer.BLSProofOfPossession},
		{"preattestation", tezostest.BLSConsensus(0x12, 200, 0, 1), "3", 200, signer.BLSProofOfPossession},
		{"attestation", tezostest.BLSConsensus(0x13, 200, 0, 1), "3", 200, signer.BLSProofOfPossession},
		{"identical attestation", tezostest.BLSConsensus(0x13, 200, 0, 1), "3", 200, signer.BLSProofOfPossession},
		{"another attestation at the level", tezostest.BLSConsensus(0x13, 200, 0, 2), "3", 409, 0},
		{"next level, no version (latest)", tezostest.BLSConsensus(0x13, 201, 0, 1), "", 200, signer.BLSProofOfPossession},
		{"augmented scheme", tezostest.BLSConsensus(0x13, 202, 0, 1), "1", 200, signer.BLSAugmented},
		{"version 0", tezostest.BLSConsensus(0x13, 203, 0, 1), "0", 400, 0},
		{"version 4", tezostest.BLSConsensus(0x13, 203, 0, 1), "4", 400, 0},
		{"generic", tezostest.Transfer(t, k.PKH, 1), "3", 200, signer.BLSProofOfPossession},
	}
	var first string
	for _, st := range steps {
		q := ""
		if st.version != "" {
			q = "version=" + st.version
		}
		code, body := f.post(k.PKH, st.payload, q)
		if code != st.want {
			t.Fatalf("%s: status %d, want %d: %s", st.name, code, st.want, body)
		}
		if code != 200 {
			continue
		}
		c, sig, err := tezos.DecodeSignature(body)
		if err != nil || c != signer.BLS12381 {
			t.Fatalf("%s: signature %s: %v", st.name, body, err)
		}
		if !signer.VerifyBLS(k.Pub, st.scheme, st.payload, sig) {
			t.Fatalf("%s: signature does not verify under %v over the whole message", st.name, st.scheme)
		}
		if st.name == "attestation" {
			first = body
		}
		if st.name == "identical attestation" && body != first {
			t.Fatal("identical retry got a new signature, not the stored one")
		}
	}
	// Other curves ignore the version, but it must be a valid one.
	if code, _ := f.post(f.tz2().PKH, tezostest.MichelsonString("x"), "version=0"); code != 200 {
		t.Fatalf("tz2 with version=0: %d", code)
	}
	if code, _ := f.post(f.tz2().PKH, tezostest.MichelsonString("x"), "version=9"); code != 400 {
		t.Fatalf("tz2 with version=9: %d", code)
	}
}

func (f *fixture) get(path string) (int, []byte) {
	f.t.Helper()
	resp, err := http.Get(f.srv.URL + path)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestProvePossession_AllowedPerKeyVerifiesAndIsAudited(t *testing.T) {
	other, _ := local.Generate(signer.BLS12381)
	otherPK, _ := tezos.EncodePublicKey(other.PublicKey())
	cases := []struct {
		name  string
		allow bool
		key   func(f *fixture) string
		query string
		want  int
		rule  string
	}{
		{"off by default", false, func(f *fixture) string { return f.tz4().PKH }, "", 403, "tezos.allow_proof_of_possession"},
		{"own key", true, func(f *fixture) string { return f.tz4().PKH }, "", 200, ""},
		{"given bls_pk", true, func(f *fixture) string { return f.tz4().PKH }, "?bls_pk=" + otherPK, 200, ""},
		{"malformed bls_pk", true, func(f *fixture) string { return f.tz4().PKH }, "?bls_pk=BLpk1234", 400, "request"},
		{"not a BLS key", true, func(f *fixture) string { return f.tz2().PKH }, "", 400, "request"},
		{"unknown key", true, func(*fixture) string { return "tz4HVR6aty9KwsQFHh81C1G7gBdhxT8kuytm" }, "", 404, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil, func(c signer.Curve, r *policy.TezosRules) { r.AllowProofOfPossession = tc.allow })
			code, body := f.get("/bls_prove_possession/" + tc.key(f) + tc.query)
			if code != tc.want {
				t.Fatalf("status %d, want %d: %s", code, tc.want, body)
			}
			recs := f.records()
			if code != 200 {
				// An unauthenticated stranger's refusal: counted and summarized.
				if len(recs) != 1 || recs[0].Count != 1 || (tc.rule != "" && recs[0].Rule != tc.rule) {
					t.Fatalf("refusal: %+v, want one summary with rule %q", recs, tc.rule)
				}
				return
			}
			if len(recs) != 1 || recs[0].Kind != "bls_prove_possession" || recs[0].Count != 0 || recs[0].Outcome != audit.Signed {
				t.Fatalf("audit %+v, want one signed bls_prove_possession line", recs)
			}
			var ans struct {
				Proof string `json:"bls_prove_possession"`
			}
			if err := json.Unmarshal(body, &ans); err != nil {
				t.Fatal(err)
			}
			c, proof, err := tezos.DecodeSignature(ans.Proof)
			if err != nil || c != signer.BLS12381 {
				t.Fatalf("proof %q: %v", ans.Proof, err)
			}
			var of []byte
			if tc.query != "" {
				of = other.PublicKey().Bytes
			}
			if !signer.VerifyPossession(f.tz4().Pub, of, proof) {
				t.Fatal("proof does not verify (pop_verify)")
			}
		})
	}
}

func TestKnownKeys_OnlyWhenAllowed(t *testing.T) {
	f := newFixture(t, nil)
	code, body := f.get("/known_keys")
	if code != 403 || !strings.Contains(string(body), "List known keys request not allowed.") {
		t.Fatalf("%d %s", code, body)
	}
	f.listing = true
	code, body = f.get("/known_keys")
	var ans struct {
		Keys []string `json:"known_keys"`
	}
	if err := json.Unmarshal(body, &ans); err != nil || code != 200 || len(ans.Keys) != 4 {
		t.Fatalf("%d %s", code, body)
	}
}

func limited(max uint64) func(signer.Curve, *policy.TezosRules) {
	return func(c signer.Curve, r *policy.TezosRules) {
		if c == signer.Secp256k1 {
			r.Limits = []policy.TezosLimit{{Window: "1h", MaxRequests: &max}}
		}
	}
}

// TestLimits_BudgetRefusesAtTheCapAndCreditsWhatWasNotSigned: within the
// window, max_requests signatures and not one more, the refusal naming the
// limit and when budget frees up; a backend failure, a watermark refusal and
// an identical retry cost nothing; the store down signs nothing.
func TestLimits_BudgetRefusesAtTheCapAndCreditsWhatWasNotSigned(t *testing.T) {
	f := newFixture(t, nil, limited(4))
	pkh := f.tz2().PKH
	sign := func(p []byte) (int, string) { return f.post(pkh, p, "") }
	if code, body := sign(consensusPayload(0x13, 10, 0, 1)); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	// Nothing new signed: not counted.
	if code, _ := sign(consensusPayload(0x13, 10, 0, 1)); code != 200 {
		t.Fatal("identical retry refused")
	}
	if code, _ := sign(consensusPayload(0x13, 10, 0, 2)); code != 409 {
		t.Fatal("watermark did not refuse")
	}
	f.backend.SetErr(signer.ErrUnavailable)
	if code, _ := sign(tezostest.MichelsonString("down")); code != 503 {
		t.Fatal("backend down not 503")
	}
	f.backend.SetErr(nil)
	for i := 0; i < 3; i++ {
		if code, body := sign(tezostest.MichelsonString(fmt.Sprint("price ", i))); code != 200 {
			t.Fatalf("signature %d of 4: %d %s", i+2, code, body)
		}
	}
	code, body := sign(tezostest.MichelsonString("one too many"))
	if code != 403 || !strings.Contains(body, "tezos.limits[0].max_requests") || !strings.Contains(body, "frees up at") {
		t.Fatalf("fifth request: %d %s", code, body)
	}
	if r := f.records(); r[len(r)-1].Rule != "tezos.limits[0].max_requests" || r[len(r)-1].Outcome != audit.Refused {
		t.Fatalf("audit %+v", r[len(r)-1])
	}
	// Other keys have their own budgets (none here).
	if code, _ := f.post(f.keys[signer.P256].PKH, tezostest.MichelsonString("x"), ""); code != 200 {
		t.Fatal("another key refused")
	}
}

func TestLimits_RaceExactlyNOf200(t *testing.T) {
	f := newFixture(t, nil, limited(37))
	pkh := f.tz2().PKH
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			code, _ := f.post(pkh, tezostest.MichelsonString(fmt.Sprint(i)), "")
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	if codes[200] != 37 || codes[403] != 163 {
		t.Fatalf("answers %v, want exactly 37 signed", codes)
	}
}

func TestLimits_StoreDownSignsNothing(t *testing.T) {
	f := newFixture(t, nil, limited(10))
	if err := os.RemoveAll(f.limDir); err != nil {
		t.Fatal(err)
	}
	code, body := f.post(f.tz2().PKH, tezostest.MichelsonString("x"), "")
	if code != 503 || !strings.Contains(body, "limits store unavailable") {
		t.Fatalf("%d %s", code, body)
	}
	if f.obs.Last().Rule != pipeline.RuleLimits {
		t.Fatalf("metric %+v", f.obs.Last())
	}
}

// TestClients_UnlistedCallerGetsTheUnknownKeyAnswer: with keys.<k>.clients
// naming one authorized key, another authorized key gets exactly what a key
// this signer does not have gets, whatever it sends.
func TestClients_UnlistedCallerGetsTheUnknownKeyAnswer(t *testing.T) {
	a, _ := local.Generate(signer.Ed25519)
	b, _ := local.Generate(signer.Ed25519)
	apk, _ := tezos.EncodePublicKey(a.PublicKey())
	bpk, _ := tezos.EncodePublicKey(b.PublicKey())
	apkh, _ := tezos.PublicKeyHash(a.PublicKey())
	f := newFixture(t, []string{apk, bpk})
	k := f.tz2()
	kc := config.KeyConfig{Tezos: &policy.TezosRules{Allow: []string{"michelson_data", "attestation"}}, Clients: []string{apkh}}
	u, _ := signer.ParseURI("file:///test/scoped")
	scoped, err := keyring.NewKey("scoped", u, k.Signer, kc)
	if err != nil {
		t.Fatal(err)
	}
	ring, _ := keyring.New([]*keyring.Key{scoped})
	h := New(Options{Ring: func() *keyring.Ring { return ring }, Auth: func() *Authorizer { return f.auth }, Pipeline: f.p})
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func(signerKey *local.PrivateKey, pkh string, payload []byte) (int, string) {
		_, target, err := tezos.BinaryPKH(pkh)
		if err != nil {
			t.Fatal(err)
		}
		auth := authSigBytes(t, signerKey, target, payload)
		resp, err := http.Post(srv.URL+"/keys/"+pkh+"?authentication="+url.QueryEscape(auth), "application/json", bytes.NewReader(tezostest.HexBody(payload)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := post(a, scoped.PKH, tezostest.MichelsonString("x")); code != 200 {
		t.Fatalf("listed client: %d %s", code, body)
	}
	absent := f.keys[signer.P256].PKH // a key this handler does not have
	for _, p := range [][]byte{tezostest.MichelsonString("x"), {0x03}, consensusPayload(0x13, 5, 0, 1)} {
		code, body := post(b, scoped.PKH, p)
		wantCode, wantBody := post(b, absent, p)
		if code != wantCode || strings.ReplaceAll(body, scoped.PKH, "PKH") != strings.ReplaceAll(wantBody, absent, "PKH") {
			t.Fatalf("unlisted client got %d %s; an unknown key gets %d %s", code, body, wantCode, wantBody)
		}
	}
	last := f.records()
	found := false
	for _, r := range last {
		if r.Key == "scoped" && r.Rule == "clients" && r.Outcome == audit.Refused {
			found = true
		}
	}
	if !found {
		t.Fatal("no audit line names the clients rule")
	}
}

// authSigBytes signs 0x04 ‖ 0x01 ‖ pkh21 ‖ payload with k.
func authSigBytes(t *testing.T, k signer.Key, pkh21, payload []byte) string {
	t.Helper()
	msg := append(append([]byte{4, 1}, pkh21...), payload...)
	d := tezos.Digest(msg)
	sig, err := signer.SignDigest(context.Background(), k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	s, _ := tezos.EncodeSignature(k.PublicKey().Curve, sig)
	return s
}
