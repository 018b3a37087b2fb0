package remotesigner

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/config"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/local"
	"github.com/keyward/keyward/watermark"
	wmfile "github.com/keyward/keyward/watermark/file"
)

var chainID = []byte{0x7a, 0x06, 0xa7, 0x70} // NetXdQprcVkpaWU (mainnet)

// blockPayload builds a 0x11 Tallinn block header request.
func blockPayload(level, fitnessRound, payloadRound int32, salt byte) []byte {
	b := []byte{0x11}
	b = append(b, chainID...)
	b = binary.BigEndian.AppendUint32(b, uint32(level))
	b = append(b, 2)                              // proto
	b = append(b, bytes.Repeat([]byte{1}, 32)...) // predecessor
	b = binary.BigEndian.AppendUint64(b, 1700000000)
	b = append(b, 4)                              // validation passes
	b = append(b, bytes.Repeat([]byte{2}, 32)...) // operations hash
	var fit []byte
	elem := func(e []byte) { fit = binary.BigEndian.AppendUint32(fit, uint32(len(e))); fit = append(fit, e...) }
	elem([]byte{2})
	elem(binary.BigEndian.AppendUint32(nil, uint32(level)))
	elem(nil)
	elem(binary.BigEndian.AppendUint32(nil, 0xffffffff))
	elem(binary.BigEndian.AppendUint32(nil, uint32(fitnessRound)))
	b = binary.BigEndian.AppendUint32(b, uint32(len(fit)))
	b = append(b, fit...)
	b = append(b, bytes.Repeat([]byte{3}, 32)...)    // context
	b = append(b, bytes.Repeat([]byte{salt}, 32)...) // payload hash
	b = binary.BigEndian.AppendUint32(b, uint32(payloadRound))
	b = append(b, make([]byte, 8)...) // pow nonce
	b = append(b, 0)                  // no seed nonce hash
	b = append(b, 0)                  // votes
	return b
}

// consensusPayload builds a 0x12 preattestation or 0x13 attestation request.
func consensusPayload(magic byte, level, round int32, salt uint16) []byte {
	tag := byte(20)
	if magic == 0x13 {
		tag = 21
	}
	b := []byte{magic}
	b = append(b, chainID...)
	b = append(b, bytes.Repeat([]byte{9}, 32)...) // branch
	b = append(b, tag)
	b = binary.BigEndian.AppendUint16(b, salt) // slot
	b = binary.BigEndian.AppendUint32(b, uint32(level))
	b = binary.BigEndian.AppendUint32(b, uint32(round))
	b = append(b, bytes.Repeat([]byte{7}, 32)...)
	return b
}

type fixture struct {
	t      testing.TB
	srv    *httptest.Server
	store  watermark.Store
	wmDir  string
	auditP string
	keys   map[signer.Curve]*keyring.Key
	auth   *Authorizer
}

func newFixture(t testing.TB, authorized []string) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{t: t, wmDir: filepath.Join(dir, "wm"), auditP: filepath.Join(dir, "audit.jsonl"), keys: map[signer.Curve]*keyring.Key{}}
	st, err := wmfile.Open(f.wmDir)
	if err != nil {
		t.Fatal(err)
	}
	f.store = st
	al, err := audit.OpenFile(f.auditP)
	if err != nil {
		t.Fatal(err)
	}
	var keys []*keyring.Key
	for _, c := range []signer.Curve{signer.Ed25519, signer.Secp256k1, signer.P256} {
		pk, err := local.Generate(c)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := signer.ParseURI("file:///test/" + c.String())
		k, err := keyring.NewKey(c.String(), u, pk, config.KeyConfig{Tezos: &policy.TezosRules{
			Allow: []string{"block", "preattestation", "attestation", "generic", "michelson_data"}, Operations: []string{"transaction"},
		}})
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
	h := New(Options{Ring: func() *keyring.Ring { return ring }, Auth: func() *Authorizer { return f.auth }, Store: st, Audit: al})
	f.srv = httptest.NewServer(h)
	t.Cleanup(func() { f.srv.Close(); st.Close(); al.Close() })
	return f
}

func (f *fixture) post(pkh string, payload []byte, query string) (int, string) {
	f.t.Helper()
	u := f.srv.URL + "/keys/" + pkh
	if query != "" {
		u += "?" + query
	}
	resp, err := http.Post(u, "application/json", bytes.NewReader([]byte(fmt.Sprintf("%q", hex.EncodeToString(payload)))))
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return resp.StatusCode, string(body)
	}
	var v struct{ Signature string }
	if err := json.Unmarshal(body, &v); err != nil {
		f.t.Fatal(err)
	}
	return 200, v.Signature
}

func (f *fixture) tz2() *keyring.Key { return f.keys[signer.Secp256k1] }

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
	// The mark did not move.
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

// authSig signs 0x04 ‖ 0x01 ‖ pkh21 ‖ payload with k.
func authSig(t *testing.T, k signer.Key, target *keyring.Key, payload []byte) string {
	t.Helper()
	pkhb, err := tezos.PKHBytes(target.Pub)
	if err != nil {
		t.Fatal(err)
	}
	msg := append(append([]byte{4, 1}, pkhb...), payload...)
	d := tezos.Digest(msg)
	sig, err := signer.SignDigest(context.Background(), k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	s, err := tezos.EncodeSignature(k.PublicKey().Curve, sig)
	if err != nil {
		t.Fatal(err)
	}
	return s
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
	p3hash, _ := tezos.PublicKeyHash(clients[2].PublicKey())
	entries = append(entries, p3hash) // a tz3 hash too
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

	if code, _ := f.post(target.PKH, payload, ""); code != 401 {
		t.Fatalf("unsigned: %d, want 401", code)
	}
	stranger, _ := local.Generate(signer.Secp256k1)
	if code, _ := f.post(target.PKH, payload, "authentication="+url.QueryEscape(authSig(t, stranger, target, payload))); code != 403 {
		t.Fatalf("signed by an unlisted key: %d, want 403", code)
	}
	if code, _ := f.post(target.PKH, payload, "authentication=garbage"); code != 403 {
		t.Fatalf("garbage authentication: %d, want 403", code)
	}
	// Signed over another payload → 403.
	if code, _ := f.post(target.PKH, payload, "authentication="+url.QueryEscape(authSig(t, clients[0], target, []byte{5, 0, 1}))); code != 403 {
		t.Fatalf("signature over another payload: %d, want 403", code)
	}
	for _, c := range clients {
		code, body := f.post(target.PKH, payload, "authentication="+url.QueryEscape(authSig(t, c, target, payload)))
		if code != 200 {
			t.Fatalf("%v authorized key: %d %s", c.Curve(), code, body)
		}
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

func TestAudit_OneLinePerRequestWithRule(t *testing.T) {
	f := newFixture(t, nil)
	pkh := f.tz2().PKH
	reqs := []struct {
		payload []byte
		rule    string
	}{
		{consensusPayload(0x13, 7, 0, 1), ""},
		{consensusPayload(0x13, 7, 0, 2), "watermark"},
		{[]byte{0x03}, "decode"},
		{[]byte{0x01, 0, 0}, "tezos.magic"},
	}
	for _, r := range reqs {
		f.post(pkh, r.payload, "")
	}
	data, err := os.ReadFile(f.auditP)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	if len(lines) != len(reqs) {
		t.Fatalf("%d audit lines for %d requests", len(lines), len(reqs))
	}
	for i, l := range lines {
		var rec audit.Record
		if err := json.Unmarshal(l, &rec); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if rec.Rule != reqs[i].rule {
			t.Errorf("line %d: rule %q, want %q", i, rec.Rule, reqs[i].rule)
		}
		if rec.Address != pkh || rec.Digest == "" {
			t.Errorf("line %d lacks address or digest: %s", i, l)
		}
		if i == 0 && (rec.Outcome != audit.Signed || rec.Level == nil || *rec.Level != 7 || rec.ChainID != "NetXdQprcVkpaWU") {
			t.Errorf("line 0: %s", l)
		}
	}
	if n, err := audit.Verify(bytes.NewReader(data)); err != nil || n != len(reqs) {
		t.Fatalf("audit chain: %d lines, %v", n, err)
	}
}

type failingAudit struct{}

func (failingAudit) Log(context.Context, *audit.Record) error { return audit.ErrUnavailable }
func (failingAudit) Close() error                             { return nil }

func TestAudit_WriteFailureWithholdsSignature(t *testing.T) {
	f := newFixture(t, nil)
	k := f.tz2()
	ring, _ := keyring.New([]*keyring.Key{k})
	h := New(Options{Ring: func() *keyring.Ring { return ring }, Store: f.store, Audit: failingAudit{}})
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/keys/"+k.PKH, "application/json", bytes.NewReader([]byte(`"050005"`)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || bytes.Contains(body, []byte("signature\"")) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

// TestBrowserOrigin_RefusedUnlessAllowed: a cross-site POST from a web page
// (it carries an Origin header) never gets a signature or moves a mark.
func TestBrowserOrigin_RefusedUnlessAllowed(t *testing.T) {
	f := newFixture(t, nil)
	k := f.tz2()
	post := func(origin string, payload []byte) int {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/keys/"+k.PKH, bytes.NewReader([]byte(fmt.Sprintf("%q", hex.EncodeToString(payload)))))
		req.Header.Set("Content-Type", "text/plain")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("https://evil.example", consensusPayload(0x13, 1_000_000, 0, 1)); code != 403 {
		t.Fatalf("browser POST: %d, want 403", code)
	}
	if marks, _ := f.store.Marks(context.Background()); len(marks) != 0 {
		t.Fatalf("a refused browser request moved a mark: %v", marks)
	}
	if code := post("", consensusPayload(0x13, 5, 0, 1)); code != 200 {
		t.Fatalf("POST without Origin: %d", code)
	}
}

func TestBrowserOrigin_AllowedOriginSigns(t *testing.T) {
	f := newFixture(t, nil)
	k := f.tz2()
	ring, _ := keyring.New([]*keyring.Key{k})
	h := New(Options{Ring: func() *keyring.Ring { return ring }, Store: f.store,
		AllowedOrigins: func() []string { return []string{"https://wallet.example"} }})
	for origin, want := range map[string]int{"https://wallet.example": 200, "https://other.example": 403} {
		req := httptest.NewRequest(http.MethodPost, "/keys/"+k.PKH, bytes.NewReader([]byte(`"050005"`)))
		req.Header.Set("Origin", origin)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != want {
			t.Fatalf("%s: %d, want %d: %s", origin, w.Code, want, w.Body)
		}
	}
}
