//go:build cgo

package pkcs11

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/internal/testutil"
	"github.com/keyward/keyward/internal/tezostest"
	"github.com/keyward/keyward/signer"
)

var (
	cliTzRe  = regexp.MustCompile(`tz address: (tz[123][1-9A-HJ-NP-Za-km-z]+)`)
	cliPkRe  = regexp.MustCompile(`public key: ((?:edpk|sppk|p2pk)[1-9A-HJ-NP-Za-km-z]+)`)
	cliEthRe = regexp.MustCompile(`0x address: (0x[0-9a-fA-F]{40})`)
)

// TestDaemon_SignsWithPKCS11KeysCreatedThroughTheCLI creates one key per
// curve with `keyward keys create-pkcs11` in a fresh SoftHSM token, serves
// them with `keyward serve`, and verifies independently Tezos signatures
// (low-S for ECDSA) against the public keys the daemon publishes, and an
// Ethereum transaction whose sender recovers to the secp256k1 key.
func TestDaemon_SignsWithPKCS11KeysCreatedThroughTheCLI(t *testing.T) {
	token := newToken(t)
	dir := t.TempDir()
	pinFile := filepath.Join(dir, "pin")
	if err := os.WriteFile(pinFile, []byte(testPIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"SOFTHSM2_CONF=" + hsmConf}
	type created struct {
		curve         signer.Curve
		ref, pkh, pk  string
		ethAddress    string
		tezosRules    string
		ethereumRules string
	}
	var keys []created
	for _, c := range allCurves {
		ref := "pkcs11:token=" + url.PathEscape(token) + ";object=e2e-" + c.String() +
			"?module-path=" + hsmModule + "&pin-source=" + pinFile
		out, err := testutil.Run(t, env, "keys", "create-pkcs11", ref, "--type", c.String())
		if err != nil {
			t.Fatalf("keys create-pkcs11 --type %v: %v\n%s", c, err, out)
		}
		tz, pk := cliTzRe.FindStringSubmatch(out), cliPkRe.FindStringSubmatch(out)
		if tz == nil || pk == nil {
			t.Fatalf("no tz address or public key in:\n%s", out)
		}
		k := created{curve: c, ref: ref, pkh: tz[1], pk: pk[1],
			tezosRules: "{allow: [generic, michelson_data], operations: [transaction]}"}
		if c == signer.Secp256k1 {
			m := cliEthRe.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no 0x address in:\n%s", out)
			}
			k.ethAddress, k.ethereumRules = m[1], "{chain_ids: [1], sign_messages: true}"
		}
		keys = append(keys, k)
		// Creating it again is refused: the label is taken.
		if out, err := testutil.Run(t, env, "keys", "create-pkcs11", ref, "--type", c.String()); err == nil {
			t.Fatalf("second create-pkcs11 for the same label succeeded:\n%s", out)
		}
	}

	// writeConfig writes a config serving keys on tzAddr, and Ethereum on
	// ethAddr when it is not empty.
	writeConfig := func(sub, tzAddr, ethAddr string) string {
		var cfg strings.Builder
		fmt.Fprintf(&cfg, "tezos: {listen: %s}\n", tzAddr)
		if ethAddr != "" {
			fmt.Fprintf(&cfg, "ethereum: {listen: %s, chain_id: 1}\n", ethAddr)
		}
		d := filepath.Join(dir, sub)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&cfg, "watermark: file://%s\naudit: %s\nkeys:\n", filepath.Join(d, "wm"), filepath.Join(d, "audit.jsonl"))
		for _, k := range keys {
			fmt.Fprintf(&cfg, "  hsm-%v:\n    ref: '%s'\n    tezos: %s\n", k.curve, k.ref, k.tezosRules)
			if k.ethereumRules != "" && ethAddr != "" {
				fmt.Fprintf(&cfg, "    ethereum: %s\n", k.ethereumRules)
			}
		}
		return testutil.WriteConfig(t, d, cfg.String())
	}
	tzAddr := testutil.Addr(t)
	d := testutil.StartKeyward(t, writeConfig("tezos", tzAddr, ""), tzAddr, env...)

	payload, _ := hex.DecodeString("05" + "0100000003616263") // Michelson packed "abc"
	for _, k := range keys {
		t.Run("tezos/"+k.curve.String(), func(t *testing.T) {
			var got struct {
				PublicKey string `json:"public_key"`
			}
			getJSON(t, d.TezosURL+"/keys/"+k.pkh, &got)
			if got.PublicKey != k.pk {
				t.Fatalf("daemon publishes %s, CLI printed %s", got.PublicKey, k.pk)
			}
			pub, err := tezos.ParsePublicKey(got.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 8; i++ {
				p := append([]byte{}, payload...)
				p[len(p)-1] = 'a' + byte(i) // Michelson packed "aba", "abb", ...
				body, _ := json.Marshal(hex.EncodeToString(p))
				resp, err := http.Post(d.TezosURL+"/keys/"+k.pkh, "application/json", bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("POST: %d %s\nkeyward:\n%s", resp.StatusCode, b, d.Output())
				}
				var sr struct {
					Signature string `json:"signature"`
				}
				if err := json.Unmarshal(b, &sr); err != nil {
					t.Fatal(err)
				}
				curve, sig, err := tezos.DecodeSignature(sr.Signature)
				if err != nil {
					t.Fatalf("signature %q: %v", sr.Signature, err)
				}
				if curve != k.curve {
					t.Fatalf("signature curve %v, key curve %v", curve, k.curve)
				}
				digest := tezos.Digest(p)
				verifyIndependently(t, pub, digest[:], sig)
				if curve != signer.Ed25519 && !signer.IsLowS(curve, sig) {
					t.Fatalf("high-S signature %s", sr.Signature)
				}
			}
		})
	}

	t.Run("start-up refuses a world-readable PIN file", func(t *testing.T) {
		if err := os.Chmod(pinFile, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(pinFile, 0o600)
		tzAddr := testutil.Addr(t)
		_, err := testutil.TryStartKeyward(t, writeConfig("badpin", tzAddr, ""), tzAddr, env...)
		if err == nil {
			t.Fatal("keyward started with a world-readable PIN file")
		}
		if !strings.Contains(err.Error(), ErrPINFileMode.Error()) || !strings.Contains(err.Error(), "object=e2e-") {
			t.Fatalf("start-up error does not name the PIN file problem and the key: %v", err)
		}
	})

	t.Run("taquito", func(t *testing.T) {
		var pkhs []string
		for _, k := range keys {
			pkhs = append(pkhs, k.pkh)
		}
		tezostest.TaquitoSigns(t, d.TezosURL, pkhs...)
	})

	t.Run("ethereum/secp256k1", func(t *testing.T) {
		tzAddr, ethAddr := testutil.Addr(t), testutil.Addr(t)
		d := testutil.StartKeyward(t, writeConfig("ethereum", tzAddr, ethAddr), tzAddr, env...)
		from := keys[0].ethAddress
		req := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"eth_signTransaction","params":[{"from":%q,"to":"0x000000000000000000000000000000000000dEaD","gas":"0x5208","maxFeePerGas":"0x3b9aca00","maxPriorityFeePerGas":"0x1","value":"0x1","nonce":"0x7","chainId":"0x1"}]}`, from)
		resp, err := http.Post("http://"+ethAddr, "application/json", strings.NewReader(req))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rr struct {
			Result hexutil.Bytes   `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&rr); err != nil {
			t.Fatal(err)
		}
		if rr.Error != nil {
			t.Fatalf("eth_signTransaction: %s\nkeyward:\n%s", rr.Error, d.Output())
		}
		var tx types.Transaction
		if err := tx.UnmarshalBinary(rr.Result); err != nil {
			t.Fatalf("raw transaction: %v", err)
		}
		sender, err := types.LatestSignerForChainID(big.NewInt(1)).Sender(&tx)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.EqualFold(sender.Hex(), from) {
			t.Fatalf("sender recovers to %s, want %s", sender.Hex(), from)
		}
	})
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %q: %v", u, b, err)
	}
}
