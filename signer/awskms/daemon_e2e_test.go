package awskms

import (
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/accounts/external"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/internal/testutil"
	"github.com/keyward/keyward/internal/tezostest"
	"github.com/keyward/keyward/signer"
)

var (
	cliRefRe = regexp.MustCompile(`(?m)^ref:\s+(\S+)$`)
	cliTzRe  = regexp.MustCompile(`(?m)^tz address:\s+(tz[23]\S+)$`)
	cli0xRe  = regexp.MustCompile(`(?m)^0x address:\s+(0x[0-9a-fA-F]{40})$`)
)

// createKMSKeyCLI runs `keyward keys create-kms` against the emulator and
// returns the printed ref and tz address.
func createKMSKeyCLI(t *testing.T, e *emulator, typ, alias string) (ref, pkh, eth string) {
	t.Helper()
	out, err := testutil.Run(t, nil, "keys", "create-kms", "--type", typ, "--alias", alias,
		"--endpoint", e.addr(), "--region", emulatorRegion, "--description", "keyward e2e "+typ)
	if err != nil {
		t.Fatalf("keys create-kms: %v\n%s", err, out)
	}
	r, tz := cliRefRe.FindStringSubmatch(out), cliTzRe.FindStringSubmatch(out)
	if r == nil || tz == nil {
		t.Fatalf("no ref or tz address in:\n%s", out)
	}
	m := cli0xRe.FindStringSubmatch(out)
	if (m != nil) != (typ == "secp256k1") {
		t.Errorf("0x address printed: %v, want it for secp256k1 only:\n%s", m != nil, out)
	}
	if m != nil {
		eth = m[1]
	}
	show, err := testutil.Run(t, nil, "keys", "show", r[1])
	if err != nil || !strings.Contains(show, tz[1]) {
		t.Fatalf("keys show %s: %v\n%s", r[1], err, show)
	}
	return r[1], tz[1], eth
}

type tezosClient struct {
	t    *testing.T
	base string
	pubs map[string]signer.PublicKey
}

func (c *tezosClient) publicKey(pkh string) signer.PublicKey {
	c.t.Helper()
	if p, ok := c.pubs[pkh]; ok {
		return p
	}
	resp, err := http.Get(c.base + "/keys/" + pkh)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		PublicKey string `json:"public_key"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != 200 {
		c.t.Fatalf("GET /keys/%s: %d %v", pkh, resp.StatusCode, err)
	}
	p, err := tezos.ParsePublicKey(v.PublicKey)
	if err != nil {
		c.t.Fatal(err)
	}
	if got, _ := tezos.PublicKeyHash(p); got != pkh {
		c.t.Fatalf("GET /keys/%s returned the key of %s", pkh, got)
	}
	c.pubs[pkh] = p
	return p
}

// sign POSTs payload and returns the status; on 200 it checks the spsig1/p2sig
// signature against the key's public key, independently of keyward.
func (c *tezosClient) sign(pkh string, payload []byte) (int, string) {
	c.t.Helper()
	body := fmt.Sprintf("%q", fmt.Sprintf("%x", payload))
	resp, err := http.Post(c.base+"/keys/"+pkh, "application/json", strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return resp.StatusCode, string(b)
	}
	var v struct {
		Signature string `json:"signature"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		c.t.Fatalf("200 with body %q: %v", b, err)
	}
	pub := c.publicKey(pkh)
	want := map[signer.Curve]string{signer.Secp256k1: "spsig1", signer.P256: "p2sig"}[pub.Curve]
	if !strings.HasPrefix(v.Signature, want) {
		c.t.Errorf("signature %s for a %v key, want prefix %s", v.Signature, pub.Curve, want)
	}
	curve, sig, err := tezos.DecodeSignature(v.Signature)
	if err != nil {
		c.t.Fatal(err)
	}
	d := tezos.Digest(payload)
	if curve != pub.Curve || !signer.Verify(pub, d[:], sig) || !signer.IsLowS(curve, sig) {
		c.t.Errorf("signature %s does not verify (or is high-S) for %s", v.Signature, pkh)
	}
	return 200, v.Signature
}

func readyz(t *testing.T, addr string) int {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitReadyz(t *testing.T, addr string, want int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for readyz(t, addr) != want {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz did not turn %d", want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestDaemon_TezosAndEthereumRequestsSignedByKMSKeys creates tz2 and tz3 keys
// in the emulator through the CLI, runs keyward on them, signs Michelson data,
// Taquito transactions, attestations and (tz2 key) Ethereum transactions and
// messages through go-ethereum's external signer, each verified here. Then it
// stops KMS: 503 within the deadline, a JSON-RPC error, /readyz false and no
// watermark moved; after KMS is back, /readyz recovers, another payload at
// the failed attestation's level signs, and a failed request signs on retry.
func TestDaemon_TezosAndEthereumRequestsSignedByKMSKeys(t *testing.T) {
	e := startEmulator(t)
	dir := t.TempDir()
	tz2Ref, tz2, ethAddr := createKMSKeyCLI(t, e, "secp256k1", "alias/e2e-tz2")
	tz3Ref, tz3, _ := createKMSKeyCLI(t, e, "p256", "alias/e2e-tz3")
	if !strings.HasPrefix(tz2, "tz2") || !strings.HasPrefix(tz3, "tz3") {
		t.Fatalf("addresses %s %s", tz2, tz3)
	}

	addr, opsAddr, ethListen := testutil.Addr(t), testutil.Addr(t), testutil.Addr(t)
	cfg := testutil.WriteConfig(t, dir, fmt.Sprintf(`tezos:
  listen: %s
ethereum:
  listen: %s
  chain_id: 1337
server:
  metrics_listen: %s
watermark: file://%s
audit: %s
keys:
  kms:
    ref: '%s'
    tezos:
      allow: [generic, michelson_data]
      operations: [transaction]
    ethereum:
      chain_ids: [1337]
      sign_messages: true
  kms3:
    ref: '%s'
    tezos:
      allow: [generic, michelson_data, attestation]
      operations: [transaction]
`, addr, ethListen, opsAddr, filepath.Join(dir, "wm"), filepath.Join(dir, "audit.jsonl"), tz2Ref, tz3Ref))
	d := testutil.StartKeyward(t, cfg, addr)
	c := &tezosClient{t: t, base: d.TezosURL, pubs: map[string]signer.PublicKey{}}

	for i := 0; i < 20; i++ {
		for _, pkh := range []string{tz2, tz3} {
			if st, body := c.sign(pkh, tezostest.MichelsonString(fmt.Sprintf("price %d", i))); st != 200 {
				t.Fatalf("%s: %d %s\n%s", pkh, st, body, d.Output())
			}
		}
	}
	t.Run("taquito RemoteSigner", func(t *testing.T) { tezostest.TaquitoSigns(t, d.TezosURL, tz2, tz3) })
	if st, body := c.sign(tz3, tezostest.Attestation(100, 0, 1)); st != 200 {
		t.Fatalf("attestation 100: %d %s", st, body)
	}
	if st, _ := c.sign(tz2, tezostest.Attestation(100, 0, 1)); st != 403 {
		t.Errorf("attestation on a key allowing only michelson_data/generic: %d, want 403", st)
	}
	waitReadyz(t, opsAddr, 200)

	eth, err := external.NewExternalSigner("http://" + ethListen)
	if err != nil {
		t.Fatal(err)
	}
	from := common.HexToAddress(ethAddr)
	if accs := eth.Accounts(); len(accs) != 1 || accs[0].Address != from {
		t.Fatalf("account_list %v, want [%s]", accs, from.Hex())
	}
	chainID := big.NewInt(1337)
	to := common.HexToAddress("0x000000000000000000000000000000000000dEaD")
	for i := uint64(0); i < 10; i++ {
		tx := types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: i, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2e9), Gas: 21000, To: &to, Value: big.NewInt(7)})
		signed, err := eth.SignTx(accounts.Account{Address: from}, tx, chainID)
		if err != nil {
			t.Fatalf("SignTx: %v\n%s", err, d.Output())
		}
		sender, err := types.Sender(types.LatestSignerForChainID(chainID), signed)
		if err != nil || sender != from {
			t.Fatalf("transaction signed by %s (%v), want %s", sender.Hex(), err, from.Hex())
		}
		if _, _, s := signed.RawSignatureValues(); !signer.IsLowS(signer.Secp256k1, s.FillBytes(make([]byte, 64))) {
			t.Errorf("transaction %d has a high-S signature", i)
		}
	}
	text := []byte("oracle price 42")
	sig, err := eth.SignText(accounts.Account{Address: from}, text)
	if err != nil {
		t.Fatal(err)
	}
	if pub, err := crypto.SigToPub(accounts.TextHash(text), sig); err != nil || crypto.PubkeyToAddress(*pub) != from {
		t.Errorf("personal signature recovers to another address (%v)", err)
	}

	e.stop()
	start := time.Now()
	if st, body := c.sign(tz2, tezostest.MichelsonString("while down")); st != 503 {
		t.Errorf("KMS down: %d %s, want 503", st, body)
	}
	if elapsed := time.Since(start); elapsed > DefaultTimeout {
		t.Errorf("KMS down: answered after %v", elapsed)
	}
	if st, body := c.sign(tz3, tezostest.Attestation(101, 0, 1)); st != 503 {
		t.Errorf("attestation with KMS down: %d %s, want 503", st, body)
	}
	if _, err := eth.SignText(accounts.Account{Address: from}, text); err == nil {
		t.Error("Ethereum signature with KMS down")
	}
	waitReadyz(t, opsAddr, 503)

	e.start()
	waitReadyz(t, opsAddr, 200)
	if st, body := c.sign(tz2, tezostest.MichelsonString("after")); st != 200 {
		t.Fatalf("after KMS restart: %d %s", st, body)
	}
	// The attestation that failed at level 101 moved no mark (the file
	// store gave it back after the signing failure): another payload at 101
	// signs (it would be 409 had the mark moved), and then 101 is taken.
	if st, body := c.sign(tz3, tezostest.Attestation(101, 0, 2)); st != 200 {
		t.Errorf("other payload at level 101 after the failed attestation: %d %s, want 200 (the outage moved the mark?)", st, body)
	}
	if st, _ := c.sign(tz3, tezostest.Attestation(101, 0, 1)); st != 409 {
		t.Errorf("the failed payload once 101 is signed for another: %d, want 409", st)
	}
	if st, body := c.sign(tz3, tezostest.Attestation(101, 0, 2)); st != 200 {
		t.Errorf("identical retry of the level-101 attestation: %d %s, want 200", st, body)
	}
	// A failed attestation retried by the baker with the identical payload
	// once KMS is back signs (DESIGN §6 retry rule).
	e.stop()
	if st, body := c.sign(tz3, tezostest.Attestation(102, 0, 1)); st != 503 {
		t.Errorf("attestation 102 with KMS down: %d %s, want 503", st, body)
	}
	e.start()
	waitReadyz(t, opsAddr, 200)
	if st, body := c.sign(tz3, tezostest.Attestation(102, 0, 1)); st != 200 {
		t.Errorf("retry of the failed level-102 attestation: %d %s, want 200", st, body)
	}
	if st, _ := c.sign(tz3, tezostest.Attestation(102, 0, 3)); st != 409 {
		t.Errorf("second payload at level 102: %d, want 409", st)
	}
}
