package awskms

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/internal/testutil"
	"github.com/keyward/keyward/internal/tezostest"
	"github.com/keyward/keyward/signer"
)

var cliTz4Re = regexp.MustCompile(`(?m)^tz address:\s+(tz4\S+)$`)

// TestDaemon_Tz4BakerInAKMSSealedKeyFile: a tz4 (BLS12-381) baker key,
// kept in a key file sealed by a KMS key, signs a block, a preattestation
// and an attestation at rising levels through the built daemon, before and
// after a restart, under the watermarks; an Ushuaia dal_entrapment_evidence
// decodes with and without its lag_index.
func TestDaemon_Tz4BakerInAKMSSealedKeyFile(t *testing.T) {
	e := startEmulator(t)
	ctx := testCtx(t)
	keysBefore, err := e.client().ListKeys(ctx, &kms.ListKeysInput{})
	if err != nil {
		t.Fatal(err)
	}
	// The sealing key, made by keyward itself.
	created, err := testutil.Run(t, nil, "keys", "create-kms", "--purpose", "seal", "--alias", "alias/tz4-seal", "--endpoint", e.addr(), "--region", emulatorRegion)
	sealRef := cliRefRe.FindStringSubmatch(created)
	if err != nil || sealRef == nil {
		t.Fatalf("keys create-kms --purpose seal: %v\n%s", err, created)
	}
	// An alias in use: nothing is created, for either purpose.
	for _, purpose := range []string{"seal", "sign"} {
		out, err := testutil.Run(t, nil, "keys", "create-kms", "--purpose", purpose, "--alias", "alias/tz4-seal", "--endpoint", e.addr(), "--region", emulatorRegion)
		if err == nil || !strings.Contains(out, "alias already exists") {
			t.Fatalf("create-kms --purpose %s on an alias in use: %v\n%s", purpose, err, out)
		}
	}
	keysAfter, err := e.client().ListKeys(ctx, &kms.ListKeysInput{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(keysAfter.Keys) - len(keysBefore.Keys); n != 1 {
		t.Fatalf("%d KMS keys created, want 1 (the refused creations must create nothing)", n)
	}
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "tz4.json")
	gen, err := testutil.Run(t, nil, "keys", "generate", "--type", "bls", "--out", keyPath, "--seal-with", sealRef[1])
	m := cliTz4Re.FindStringSubmatch(gen)
	if err != nil || m == nil || !strings.Contains(gen, "BLpk") {
		t.Fatalf("keys generate --type bls --seal-with: %v\n%s", err, gen)
	}
	pkh := m[1]
	addr := testutil.Addr(t)
	cfg := testutil.WriteConfig(t, dir, fmt.Sprintf(`tezos:
  listen: %s
watermark: file://%s
audit: %s
keys:
  baker:
    ref: 'file://%s'
    tezos:
      allow: [block, preattestation, attestation, generic]
      operations: [dal_entrapment_evidence]
`, addr, filepath.Join(dir, "wm"), filepath.Join(dir, "audit.jsonl"), keyPath))
	d := testutil.StartKeyward(t, cfg, addr)
	client := &tezosClient{t: t, base: d.TezosURL, pubs: map[string]signer.PublicKey{}}
	pub := client.publicKey(pkh)
	post := func(payload []byte, query string) (int, string) {
		t.Helper()
		r, err := http.Post(d.TezosURL+"/keys/"+pkh+query, "application/json", strings.NewReader(string(tezostest.HexBody(payload))))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(b)
	}
	signs := func(payload []byte) string {
		t.Helper()
		code, body := post(payload, "?version=3")
		if code != 200 {
			t.Fatalf("status %d: %s\n%s", code, body, d.Output())
		}
		var v struct{ Signature string }
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatal(err)
		}
		sig := v.Signature
		curve, raw, err := tezos.DecodeSignature(sig)
		if err != nil || curve != signer.BLS12381 || !signer.VerifyBLS(pub, signer.BLSProofOfPossession, payload, raw) {
			t.Fatalf("BLsig %q does not verify over the whole message: %v", sig, err)
		}
		return sig
	}
	for level := int32(500); level < 503; level++ {
		signs(tezostest.Block(level, 0, 0, 1))
		signs(tezostest.BLSConsensus(0x12, level, 0, 1))
		signs(tezostest.BLSConsensus(0x13, level, 0, 1))
	}
	att := signs(tezostest.BLSConsensus(0x13, 503, 0, 1))
	if code, body := post(tezostest.BLSConsensus(0x13, 503, 0, 2), ""); code != 409 {
		t.Fatalf("another attestation at level 503: %d %s", code, body)
	}
	if code, body := post(tezostest.BLSConsensus(0x13, 504, 0, 1), "?version=0"); code != 400 {
		t.Fatalf("version=0: %d %s", code, body)
	}
	for _, lag := range []bool{true, false} {
		signs(tezostest.DALEntrapmentEvidence(lag))
	}

	// Restarted, the sealed key opens again through KMS and the marks hold.
	d.Stop()
	d = testutil.StartKeyward(t, cfg, addr)
	if again := signs(tezostest.BLSConsensus(0x13, 503, 0, 1)); again != att {
		t.Fatalf("identical retry after the restart got a new signature")
	}
	if code, _ := post(tezostest.BLSConsensus(0x13, 503, 0, 3), ""); code != 409 {
		t.Fatalf("after the restart, another payload at 503 got %d", code)
	}
	signs(tezostest.BLSConsensus(0x13, 504, 0, 1))
}
