package rpc_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/chains/ethereum/rpc"
	"github.com/keyward/keyward/policy"
)

// A negative quantity ("0x-5") is malformed: it is never signed. Before,
// the key signed keccak256("") for a legacy transaction with a negative
// value (go-ethereum's sighash drops the RLP error), and a negative chain
// id panicked the request.
func TestHandler_NegativeQuantityNeverSigns(t *testing.T) {
	e := newEnvKeys(t, []testKey{{"anychain", secretOpen, &policy.EthereumRules{}}})
	from := e.addr["anychain"].Hex()
	tests := []struct{ name, tx string }{
		{"legacy value", `{"from":"` + from + `","to":"0x000000000000000000000000000000000000dEaD","nonce":"0x0","gas":"0x5208","gasPrice":"0x1","chainId":"0x1","value":"0x-5"}`},
		{"legacy chain id", `{"from":"` + from + `","to":"0x000000000000000000000000000000000000dEaD","nonce":"0x0","gas":"0x5208","gasPrice":"0x1","chainId":"0x-1"}`},
		{"1559 chain id", `{"from":"` + from + `","to":"0x000000000000000000000000000000000000dEaD","nonce":"0x0","gas":"0x5208","maxFeePerGas":"0x2","maxPriorityFeePerGas":"0x1","chainId":"0x-1"}`},
		{"1559 value", `{"from":"` + from + `","to":"0x000000000000000000000000000000000000dEaD","nonce":"0x0","gas":"0x5208","maxFeePerGas":"0x2","maxPriorityFeePerGas":"0x1","chainId":"0x1","value":"0x-1"}`},
	}
	for _, tc := range tests {
		for _, method := range []string{"eth_signTransaction", "account_signTransaction"} {
			t.Run(tc.name+" "+method, func(t *testing.T) {
				status, raw := e.post(t, []byte(`{"jsonrpc":"2.0","id":1,"method":"`+method+`","params":[`+tc.tx+`]}`))
				var ans rpcAnswer
				if err := json.Unmarshal(raw, &ans); err != nil {
					t.Fatalf("HTTP %d, answer %q: %v", status, raw, err)
				}
				if n := e.audit.Count(audit.Signed); n != 0 {
					t.Fatalf("%d signatures made (answer %s)", n, raw)
				}
				if ans.Error == nil || ans.Error.Code != rpc.CodeInvalidParams {
					t.Fatalf("answer %s, want -32602", raw)
				}
			})
		}
	}
}

// The strict key allows typed data for the Mail contract on chain 1 only. A
// domain type that repeats a member instead of declaring chainId and
// verifyingContract would hash neither: it is malformed, never signed.
func TestHandler_TypedDataDomainTypeMustDeclareCheckedFields(t *testing.T) {
	e := newEnv(t)
	td := strings.Replace(mailTypedData,
		`[{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                     {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}]`,
		`[{"name": "name", "type": "string"}, {"name": "name", "type": "string"}, {"name": "name", "type": "string"}, {"name": "name", "type": "string"}]`, 1)
	if td == mailTypedData {
		t.Fatal("replacement failed")
	}
	var sig hexutil.Bytes
	err := e.call(&sig, "eth_signTypedData_v4", e.addr["strict"], json.RawMessage(td))
	if n := e.audit.Count(audit.Signed); n != 0 || code(err) != rpc.CodeInvalidParams {
		t.Fatalf("err %v, %d signatures; want -32602 and none", err, n)
	}
}

// Signing and account methods never reach the node, whatever their case:
// some node implementations match method names loosely, and a node with
// unlocked accounts would sign outside keyward's policy.
func TestProxy_NeverForwardsSigningMethodsInAnyCase(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		mu.Lock()
		seen = append(seen, req.Method)
		mu.Unlock()
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(req.ID) + `,"result":"0x1"}`))
	}))
	t.Cleanup(node.Close)
	e := newEnvKeys(t, []testKey{{"bot", secretOpen, openRules}}, func(o *rpc.Options) { o.Upstream = node.URL })
	for _, m := range []string{"eth_Sign", "eth_SignTransaction", "eth_SIGNTYPEDDATA_V4", "eth_sendtransaction",
		"eth_SendTransaction", "eth_Accounts", "eth_signAuthorization_v2"} {
		if err := e.call(nil, m, e.addr["bot"], "0x00"); code(err) != rpc.CodeMethodNotFound {
			t.Errorf("%s: %v, want -32601", m, err)
		}
	}
	var n string
	if err := e.call(&n, "eth_blockNumber"); err != nil || n != "0x1" {
		t.Fatalf("eth_blockNumber %q %v", n, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != "eth_blockNumber" {
		t.Fatalf("node saw %v, want only eth_blockNumber", seen)
	}
}

// Without bearer tokens, keyward trusts whoever reaches its loopback port.
// A web page the operator visits reaches it too: a cross-site "simple"
// POST (text/plain, no preflight) runs the method, and after DNS
// rebinding the page reads the answer. Browsers put an Origin header on
// every POST; no real client of keyward sends one. Such requests are
// refused before anything is parsed or signed.
func TestHandler_BrowserRequestRefusedWithoutTokens(t *testing.T) {
	e := newEnv(t)
	open := e.addr["open"]
	send := `{"jsonrpc":"2.0","id":1,"method":"eth_signTransaction","params":[{"from":"` + open.Hex() +
		`","to":"0x2222222222222222222222222222222222222222","value":"0xde0b6b3a7640000","nonce":"0x0","gas":"0x5208","gasPrice":"0x1","chainId":"0x1"}]}`
	for _, tc := range []struct{ origin, ctype string }{
		{"https://evil.example", "text/plain"},
		{"http://attacker.example:8550", "application/json"}, // DNS rebinding: same origin as far as the browser knows
		{"null", "text/plain"},
	} {
		status, raw := e.post(t, []byte(send), "Origin", tc.origin, "Content-Type", tc.ctype)
		if status != http.StatusForbidden {
			t.Errorf("Origin %s: HTTP %d %s, want 403", tc.origin, status, raw)
		}
	}
	if n := e.audit.Count(audit.Signed); n != 0 {
		t.Fatalf("%d signatures made for browser requests", n)
	}
	// The same request from a non-browser client is served.
	if status, raw := e.post(t, []byte(send)); status != http.StatusOK || !strings.Contains(string(raw), `"result"`) {
		t.Fatalf("HTTP %d %s", status, raw)
	}
}
