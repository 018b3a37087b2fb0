package e2e

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/internal/testutil"
	"github.com/keyward/keyward/internal/tezostest"
	"github.com/keyward/keyward/signer"
)

func genericRules() string {
	return "tezos:\n  allow: [generic, michelson_data]\n  operations: [transaction, reveal]"
}

// TestTaquito_RemoteSignerSignsForTz1Tz2Tz3 has Taquito's RemoteSigner sign a
// forged transaction through keyward for keys on all three curves; Taquito
// verifies every signature against GET /keys/<pkh>, and so do we.
func TestTaquito_RemoteSignerSignsForTz1Tz2Tz3(t *testing.T) {
	dir := t.TempDir()
	var keys []keySpec
	var pkhs []string
	for _, typ := range []string{"ed25519", "secp256k1", "p256"} {
		p, pkh := genKey(t, dir, typ)
		keys = append(keys, keySpec{typ, p, genericRules()})
		pkhs = append(pkhs, pkh)
	}
	addr := testutil.Addr(t)
	cfg := tezosConfig(t, dir, addr, "", keys...)
	d := testutil.StartKeyward(t, cfg, addr, passEnv...)
	tezostest.TaquitoSigns(t, d.TezosURL, pkhs...)
}

// TestDaemon_EveryECDSASignatureIsLowS signs many payloads with tz2 and tz3
// keys and checks each signature verifies and is low-S.
func TestDaemon_EveryECDSASignatureIsLowS(t *testing.T) {
	dir := t.TempDir()
	p2, tz2 := genKey(t, dir, "secp256k1")
	p3, tz3 := genKey(t, dir, "p256")
	addr := testutil.Addr(t)
	cfg := tezosConfig(t, dir, addr, "", keySpec{"a", p2, genericRules()}, keySpec{"b", p3, genericRules()})
	d := testutil.StartKeyward(t, cfg, addr, passEnv...)
	for _, pkh := range []string{tz2, tz3} {
		pub := getPub(t, d.TezosURL, pkh)
		for i := 0; i < 100; i++ {
			payload := append([]byte{0x05, 0x01, 0, 0, 0, 4}, []byte(fmt.Sprintf("%04d", i))...)
			r := postSign(t, d.TezosURL, pkh, hexBody(payload), "")
			if r.status != 200 {
				t.Fatalf("%s: %d %s", pkh, r.status, r.body)
			}
			_, sig, err := tezos.DecodeSignature(r.sig)
			if err != nil {
				t.Fatal(err)
			}
			dg := tezos.Digest(payload)
			if !signer.Verify(pub, dg[:], sig) || !signer.IsLowS(pub.Curve, sig) {
				t.Fatalf("%s: signature %d invalid or high-S", pkh, i)
			}
		}
	}
}

func getPub(t *testing.T, base, pkh string) signer.PublicKey {
	t.Helper()
	resp, err := http.Get(base + "/keys/" + pkh)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		PublicKey string `json:"public_key"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	pub, err := tezos.ParsePublicKey(v.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// TestDaemon_BadInputGets4xxAndNoSignature sends malformed requests; each gets
// a 4xx Octez-style error with a reason, no signature, and the daemon keeps
// serving.
func TestDaemon_BadInputGets4xxAndNoSignature(t *testing.T) {
	dir := t.TempDir()
	p2, tz2 := genKey(t, dir, "secp256k1")
	addr := testutil.Addr(t)
	cfg := tezosConfig(t, dir, addr, "", keySpec{"a", p2, "tezos:\n  allow: [block, preattestation, attestation, generic, michelson_data]\n  operations: [transaction]"})
	d := testutil.StartKeyward(t, cfg, addr, passEnv...)
	// An attestation-like payload truncated, and a valid transaction with extra bytes.
	tx, _ := hex.DecodeString(benchTx(t, tz2))
	cases := []struct {
		name string
		pkh  string
		body []byte
		want int
	}{
		{"non-hex", tz2, []byte(`"zz"`), 400},
		{"odd length", tz2, []byte(`"050"`), 400},
		{"empty string", tz2, []byte(`""`), 400},
		{"empty body", tz2, []byte(``), 400},
		{"not a string", tz2, []byte(`{"payload":"05"}`), 400},
		{"number", tz2, []byte(`5`), 400},
		{"over the cap", tz2, []byte(`"` + strings.Repeat("00", 40<<10) + `"`), 413},
		{"truncated attestation", tz2, []byte(`"137a06a770"`), 400},
		{"truncated block", tz2, []byte(`"117a06a77000000001"`), 400},
		{"trailing bytes", tz2, hexBody(append(append([]byte{}, tx...), 0x00, 0x01)), 400},
		{"unknown operation tag", tz2, hexBody(append(append([]byte{}, tx[:33]...), 0x63, 0x00)), 400},
		{"unknown magic", tz2, []byte(`"ff00"`), 400},
		{"legacy block magic", tz2, []byte(`"01000000"`), 403},
		{"invalid pkh", "tz2notanaddress", []byte(`"05"`), 400},
		{"unknown key", "tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx", []byte(`"050005"`), 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := postSign(t, d.TezosURL, c.pkh, c.body, "")
			if r.status != c.want {
				t.Fatalf("status %d, want %d: %s", r.status, c.want, r.body)
			}
			var trace []struct{ Kind, ID, Msg string }
			if err := json.Unmarshal([]byte(r.body), &trace); err != nil || len(trace) != 1 || trace[0].Msg == "" {
				t.Fatalf("error body %q is not an Octez error trace with a message", r.body)
			}
			if strings.Contains(r.body, "sig") && strings.Contains(r.body, "signature\":") {
				t.Fatalf("body carries a signature: %s", r.body)
			}
		})
	}
	// Still serving, and the valid transaction signs.
	if r := postSign(t, d.TezosURL, tz2, hexBody(tx), ""); r.status != 200 {
		t.Fatalf("daemon no longer signs valid input: %d %s", r.status, r.body)
	}
	for _, l := range auditLines(t, filepath.Join(dir, "audit.jsonl")) {
		if l["outcome"] == "signed" && l["kind"] != "generic" {
			t.Errorf("audit shows a signature for bad input: %v", l)
		}
	}
}

// benchTx returns the hex of a generic operation with one transaction from pkh.
func benchTx(t *testing.T, pkh string) string {
	t.Helper()
	curve, hash, err := tezos.ParsePublicKeyHash(pkh)
	if err != nil {
		t.Fatal(err)
	}
	tag := map[signer.Curve]byte{signer.Ed25519: 0, signer.Secp256k1: 1, signer.P256: 2}[curve]
	b := []byte{0x03}
	b = append(b, make([]byte, 32)...)
	b = append(b, 108, tag)
	b = append(b, hash...)
	b = append(b, 0xe8, 0x07, 0x01, 0xa0, 0x0b, 0x00, 0x01, 0x00, tag)
	b = append(b, hash...)
	b = append(b, 0x00)
	return hex.EncodeToString(b)
}
