package rpc_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/chains/ethereum/rpc"
	"github.com/keyward/keyward/config"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/signer"
)

// TestClients_UnlistedTokenGetsTheUnknownAccountAnswer: a key whose
// clients list bot-a is, for bot-b, an account that does not exist.
func TestClients_UnlistedTokenGetsTheUnknownAccountAnswer(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("bot-a token-of-bot-a-0123456789\nbot-b token-of-bot-b-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rules := &policy.EthereumRules{SignMessages: true}
	ring, addrs := newRing(t, []testKey{{"scoped", secretOpen, rules}})
	k, _ := ring.ByName("scoped")
	u, _ := signer.ParseURI("file:///keys/scoped.json")
	scoped, err := keyring.NewKey("scoped", u, k.Signer, config.KeyConfig{Ethereum: rules, Clients: []string{"bot-a"}})
	if err != nil {
		t.Fatal(err)
	}
	ring, _ = keyring.New([]*keyring.Key{scoped})
	ts, err := rpc.LoadTokenSet(tokens)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvRing(t, ring, addrs, func(o *rpc.Options) { o.Tokens = func() *rpc.TokenSet { return ts } })
	addr := e.addr["scoped"].Hex()
	call := func(token, method, params string) string {
		_, raw := e.post(t, []byte(`{"jsonrpc":"2.0","id":1,"method":"`+method+`","params":`+params+`}`), "Authorization", "Bearer "+token)
		return string(raw)
	}
	if ans := call("token-of-bot-a-0123456789", "personal_sign", `["0x68656c6c6f","`+addr+`"]`); !strings.Contains(ans, `"result":"0x`) {
		t.Fatalf("listed client: %s", ans)
	}
	unknown := "0x9999999999999999999999999999999999999999"
	for _, params := range []func(a string) string{
		func(a string) string { return `["0x68656c6c6f","` + a + `"]` },
		func(a string) string { return `["0xzz","` + a + `"]` },
	} {
		got := call("token-of-bot-b-0123456789", "personal_sign", params(addr))
		want := call("token-of-bot-b-0123456789", "personal_sign", params(unknown))
		if got != want {
			t.Fatalf("unlisted client got %s; an unknown account gets %s", got, want)
		}
	}
	var accounts struct{ Result []string }
	json.Unmarshal([]byte(call("token-of-bot-b-0123456789", "eth_accounts", `[]`)), &accounts)
	if len(accounts.Result) != 0 {
		t.Fatalf("eth_accounts for bot-b lists %v", accounts.Result)
	}
	json.Unmarshal([]byte(call("token-of-bot-a-0123456789", "eth_accounts", `[]`)), &accounts)
	if len(accounts.Result) != 1 {
		t.Fatalf("eth_accounts for bot-a lists %v", accounts.Result)
	}
}

// TestLimits_ValueBudgetAndFeeCaps: the rolling max_value budget and the
// per-request max_fee cap, through eth_signTransaction.
func TestLimits_ValueBudgetAndFeeCaps(t *testing.T) {
	rules := &policy.EthereumRules{ChainIDs: []uint64{1}, MaxFee: "0.01 ether",
		Limits: []policy.EthereumLimit{{Window: "24h", MaxValue: "1 ether"}}}
	e := newEnvKeys(t, []testKey{{"bot", secretOpen, rules}})
	from := e.addr["bot"].Hex()
	tx := func(nonce int, value, gas, gasPrice string) string {
		_, raw := e.post(t, []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_signTransaction","params":[{"from":"`+from+
			`","to":"0x000000000000000000000000000000000000dEaD","nonce":"`+hexInt(nonce)+`","gas":"`+gas+`","gasPrice":"`+gasPrice+`","chainId":"0x1","value":"`+value+`"}]}`))
		return string(raw)
	}
	const sixTenths = "0x853a0d2313c0000" // 0.6 ether
	if ans := tx(0, sixTenths, "0x5208", "0x3b9aca00"); !strings.Contains(ans, `"result"`) {
		t.Fatalf("first 0.6 ether: %s", ans)
	}
	if ans := tx(1, sixTenths, "0x5208", "0x3b9aca00"); !strings.Contains(ans, "ethereum.limits[0].max_value") || !strings.Contains(ans, "-32003") {
		t.Fatalf("second 0.6 ether within a day: %s", ans)
	}
	// gas 0x1c9c380 × gasPrice 1e30: the whole balance to fees.
	if ans := tx(2, "0x0", "0x1c9c380", "0xc9f2c9cd04674edea40000000"); !strings.Contains(ans, "ethereum.max_fee") {
		t.Fatalf("huge fee: %s", ans)
	}
}

func hexInt(n int) string { return fmt.Sprintf("0x%x", n) }
