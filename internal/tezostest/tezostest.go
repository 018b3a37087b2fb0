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

// MainnetChainID is the chain id bytes of mainnet (NetXdQprcVkpaWU).
var MainnetChainID = []byte{0x7a, 0x06, 0xa7, 0x70}

// Consensus is a 0x12 preattestation or 0x13 attestation request (Tallinn
// tags 20/21, with a slot) on mainnet at (level, round); slot varies the
// payload at a fixed level.
func Consensus(magic byte, level, round int32, slot uint16) []byte {
	tag := byte(20)
	if magic == tezos.MagicAttestation {
		tag = 21
	}
	b := append([]byte{magic}, MainnetChainID...)
	b = append(b, bytes.Repeat([]byte{9}, 32)...) // branch
	b = append(b, tag)
	b = binary.BigEndian.AppendUint16(b, slot)
	b = binary.BigEndian.AppendUint32(b, uint32(level))
	b = binary.BigEndian.AppendUint32(b, uint32(round))
	return append(b, bytes.Repeat([]byte{7}, 32)...) // block payload hash
}

// BLSConsensus is a tz4 0x12 preattestation or 0x13 attestation request
// (tags 40/41, no slot) on mainnet at (level, round); salt varies the
// block payload hash.
func BLSConsensus(magic byte, level, round int32, salt byte) []byte {
	tag := byte(40)
	if magic == tezos.MagicAttestation {
		tag = 41
	}
	b := append([]byte{magic}, MainnetChainID...)
	b = append(b, bytes.Repeat([]byte{9}, 32)...) // branch
	b = append(b, tag)
	b = binary.BigEndian.AppendUint32(b, uint32(level))
	b = binary.BigEndian.AppendUint32(b, uint32(round))
	return append(b, bytes.Repeat([]byte{salt}, 32)...) // block payload hash
}

// Attestation is Consensus(0x13, level, round, slot).
func Attestation(level, round int32, slot uint16) []byte {
	return Consensus(tezos.MagicAttestation, level, round, slot)
}

// Block is a 0x11 block header request on mainnet at level with the given
// fitness round (the one watermarks use) and payload round; salt varies
// the payload hash.
func Block(level, fitnessRound, payloadRound int32, salt byte) []byte {
	b := append([]byte{tezos.MagicBlock}, MainnetChainID...)
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

// Transfer is a 0x03 request with one transaction of amount mutez, fee 1000
// mutez, from pkh to itself.
func Transfer(t testing.TB, pkh string, amount uint64) []byte {
	t.Helper()
	_, src, err := tezos.BinaryPKH(pkh)
	if err != nil {
		t.Fatal(err)
	}
	b := append([]byte{tezos.MagicGeneric}, bytes.Repeat([]byte{5}, 32)...) // branch
	b = append(b, 108)
	b = append(b, src...)
	b = append(b, 0xe8, 0x07, 0x01, 0xa0, 0x0b, 0x00) // fee 1000, counter 1, gas 1440, storage 0
	b = binary.AppendUvarint(b, amount)
	b = append(b, 0x00) // implicit destination
	b = append(b, src...)
	return append(b, 0x00) // no parameters
}

// DALEntrapmentEvidence is a 0x03 request holding one Ushuaia
// dal_entrapment_evidence (tag 24): an inlined attestation, its consensus
// slot, slot_index 1, the optional lag_index (withLag: lag_index 2), and a
// shard with its 48-byte proof.
func DALEntrapmentEvidence(withLag bool) []byte {
	att := append(bytes.Repeat([]byte{9}, 32), 21) // branch, attestation
	att = binary.BigEndian.AppendUint16(att, 1)
	att = binary.BigEndian.AppendUint32(att, 100)
	att = binary.BigEndian.AppendUint32(att, 0)
	att = append(att, make([]byte, 32+64)...) // block payload hash, signature
	b := append([]byte{tezos.MagicGeneric}, bytes.Repeat([]byte{5}, 32)...)
	b = append(b, 24)
	b = binary.BigEndian.AppendUint32(b, uint32(len(att)))
	b = append(b, att...)
	b = binary.BigEndian.AppendUint16(b, 2) // consensus slot
	b = append(b, 1)                        // slot_index
	if withLag {
		b = append(b, 0xff, 2) // lag_index present: 2
	} else {
		b = append(b, 0x00) // lag_index absent
	}
	b = binary.BigEndian.AppendUint32(b, 9) // shard index
	b = binary.BigEndian.AppendUint32(b, 3)
	b = append(b, 1, 2, 3)                // shard
	return append(b, make([]byte, 48)...) // proof
}

// MichelsonString packs a Michelson string as a 0x05 request.
func MichelsonString(s string) []byte {
	b := []byte{tezos.MagicMichelson, 0x01}
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// HexBody is payload as a remote-signer request body: a JSON string of hex.
func HexBody(payload []byte) []byte {
	return []byte(`"` + hex.EncodeToString(payload) + `"`)
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
