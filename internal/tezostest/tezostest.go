// Package tezostest builds Tezos signing requests for tests and drives Taquito's RemoteSigner against a running keyward, checking every signature it returns.
package tezostest

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/internal/testutil"
	"github.com/keyward/keyward/signer"
)

// Attestation is a 0x13 attestation request on mainnet's chain id at
// (level, round); slot varies the payload at a fixed level.
func Attestation(level, round int32, slot uint16) []byte {
	b := []byte{0x13, 0x7a, 0x06, 0xa7, 0x70}
	b = append(b, bytes.Repeat([]byte{9}, 32)...) // branch
	b = append(b, 21)                             // attestation
	b = binary.BigEndian.AppendUint16(b, slot)
	b = binary.BigEndian.AppendUint32(b, uint32(level))
	b = binary.BigEndian.AppendUint32(b, uint32(round))
	return append(b, bytes.Repeat([]byte{7}, 32)...) // block payload hash
}

// TaquitoSigns has Taquito's RemoteSigner (test/taquito/sign.mjs) sign a
// forged transaction for each pkh through the keyward at url. Taquito
// verifies each signature against GET /keys/<pkh>; TaquitoSigns checks each
// again independently (valid for the public key, low-S for ECDSA) and fails
// the test unless every pkh was signed for. Missing node or npm packages
// skip locally and fail under CI=true.
func TaquitoSigns(t *testing.T, url string, pkhs ...string) {
	t.Helper()
	node := testutil.LookPath(t, "node")
	jsDir := filepath.Join(testutil.RepoRoot(), "test", "taquito")
	_, err := os.Stat(filepath.Join(jsDir, "node_modules", "@taquito", "remote-signer"))
	testutil.Need(t, "npm packages in test/taquito (npm ci)", err)
	cmd := exec.Command(node, append([]string{filepath.Join(jsDir, "sign.mjs"), url}, pkhs...)...)
	cmd.Dir = jsDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("taquito: %v\n%s", err, out)
	}
	seen := map[string]bool{}
	for _, line := range bytes.Split(out, []byte("\n")) {
		var r struct {
			PKH       string `json:"pkh"`
			OK        bool   `json:"ok"`
			Error     string `json:"error"`
			PublicKey string `json:"public_key"`
			Forged    string `json:"forged"`
			Signature string `json:"signature"`
		}
		if json.Unmarshal(line, &r) != nil || r.PKH == "" {
			continue
		}
		if !r.OK {
			t.Errorf("%s: taquito: %s", r.PKH, r.Error)
			continue
		}
		pub, err := tezos.ParsePublicKey(r.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		curve, sig, err := tezos.DecodeSignature(r.Signature)
		if err != nil {
			t.Fatal(err)
		}
		forged, err := hex.DecodeString(r.Forged)
		if err != nil {
			t.Fatal(err)
		}
		d := tezos.Digest(append([]byte{3}, forged...))
		if curve != pub.Curve || !signer.Verify(pub, d[:], sig) {
			t.Errorf("%s: signature %s does not verify", r.PKH, r.Signature)
		}
		if curve != signer.Ed25519 && !signer.IsLowS(curve, sig) {
			t.Errorf("%s: high-S signature", r.PKH)
		}
		seen[r.PKH] = true
	}
	for _, pkh := range pkhs {
		if !seen[pkh] {
			t.Errorf("taquito did not sign for %s:\n%s", pkh, out)
		}
	}
}
