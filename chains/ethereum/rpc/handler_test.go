package rpc_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/chains/ethereum/rpc"
	"github.com/keyward/keyward/keyring"
)

const mailTypedData = `{
  "types": {
    "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                     {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
    "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
    "Mail": [{"name": "from", "type": "Person"}, {"name": "to", "type": "Person"}, {"name": "contents", "type": "string"}]
  },
  "primaryType": "Mail",
  "domain": {"name": "Ether Mail", "version": "1", "chainId": 1, "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
  "message": {
    "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
    "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
    "contents": "Hello, Bob!"
  }
}`

func TestHandler_EIP155ExampleTransaction(t *testing.T) {
	e := newEnv(t)
	var raw hexutil.Bytes
	err := e.call(&raw, "eth_signTransaction", map[string]any{
		"from": e.addr["eip155"], "nonce": "0x9", "gasPrice": "0x4a817c800", "gas": "0x5208",
		"to": "0x3535353535353535353535353535353535353535", "value": "0xde0b6b3a7640000", "chainId": "0x1"})
	if err != nil {
		t.Fatal(err)
	}
	const want = "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83"
	if got := hex.EncodeToString(raw); got != want {
		t.Fatalf("raw\n got %s\nwant %s", got, want)
	}
	rec := e.audit.Last(t)
	if rec.Outcome != "signed" || rec.ChainID != "1" || rec.To != "0x3535353535353535353535353535353535353535" ||
		rec.Value != "1000000000000000000" || rec.Digest != "daf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53" {
		t.Fatalf("audit record %+v", rec)
	}
}

func TestHandler_EIP712MailExample(t *testing.T) {
	e := newEnv(t)
	want := "0x4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d" +
		"07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562" + "1c"
	for _, m := range []string{"eth_signTypedData_v4", "eth_signTypedData", "account_signTypedData"} {
		for name, td := range map[string]any{"object": json.RawMessage(mailTypedData), "string": mailTypedData} {
			var sig hexutil.Bytes
			if err := e.call(&sig, m, e.addr["mail"], td); err != nil {
				t.Fatalf("%s (%s): %v", m, name, err)
			}
			if sig.String() != want {
				t.Fatalf("%s (%s): %s, want %s", m, name, sig, want)
			}
		}
	}
	var sig hexutil.Bytes
	if err := e.call(&sig, "account_signData", "data/typed", e.addr["mail"], json.RawMessage(mailTypedData)); err != nil || sig.String() != want {
		t.Fatalf("account_signData data/typed: %s, %v", sig, err)
	}
}

func TestHandler_PersonalSignAndEthSignRecoverWithV27(t *testing.T) {
	e := newEnv(t)
	msg := []byte("Hello World")
	for _, tc := range []struct {
		method string
		params []any
	}{
		{"personal_sign", []any{hexutil.Bytes(msg), strings.ToLower(e.addr["open"].Hex())}},
		{"eth_sign", []any{e.addr["open"], hexutil.Bytes(msg)}},
		{"account_signData", []any{"text/plain", e.addr["open"], hexutil.Bytes(msg)}},
	} {
		var sig hexutil.Bytes
		if err := e.call(&sig, tc.method, tc.params...); err != nil {
			t.Fatalf("%s: %v", tc.method, err)
		}
		if len(sig) != 65 || (sig[64] != 27 && sig[64] != 28) {
			t.Fatalf("%s: signature %s", tc.method, sig)
		}
		sig[64] -= 27
		pub, err := crypto.SigToPub(crypto.Keccak256([]byte(fmt.Sprintf("\x19Ethereum Signed Message:\n%d%s", len(msg), msg))), sig)
		if err != nil || crypto.PubkeyToAddress(*pub) != e.addr["open"] {
			t.Fatalf("%s: does not recover to the key", tc.method)
		}
	}
}

func TestHandler_SignAuthorizationAuthorityIsTheKey(t *testing.T) {
	e := newEnv(t)
	var auth types.SetCodeAuthorization
	if err := e.call(&auth, "eth_signAuthorization", e.addr["open"], map[string]any{"chainId": "0x539", "address": dead, "nonce": "0x3"}); err != nil {
		t.Fatal(err)
	}
	got, err := auth.Authority()
	if err != nil {
		t.Fatal(err)
	}
	if got != e.addr["open"] || auth.Nonce != 3 || auth.Address != dead || auth.ChainID.Uint64() != 1337 {
		t.Fatalf("authorization %+v by %s", auth, got.Hex())
	}
}

func TestHandler_SetCodeTransactionWithAuthorizationList(t *testing.T) {
	e := newEnv(t)
	var auth types.SetCodeAuthorization
	if err := e.call(&auth, "eth_signAuthorization", e.addr["mail"], map[string]any{"chainId": "0x539", "address": dead, "nonce": "0x0"}); err != nil {
		t.Fatal(err)
	}
	var raw hexutil.Bytes
	err := e.call(&raw, "eth_signTransaction", map[string]any{
		"from": e.addr["open"], "to": e.addr["mail"], "nonce": "0x1", "gas": "0x186a0", "chainId": "0x539",
		"maxFeePerGas": "0x77359400", "maxPriorityFeePerGas": "0x1", "authorizationList": []any{auth}})
	if err != nil {
		t.Fatal(err)
	}
	var tx types.Transaction
	if err := tx.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	if tx.Type() != types.SetCodeTxType || len(tx.SetCodeAuthorizations()) != 1 {
		t.Fatalf("type %d with %d authorizations", tx.Type(), len(tx.SetCodeAuthorizations()))
	}
	sender, err := types.Sender(types.LatestSignerForChainID(tx.ChainId()), &tx)
	if err != nil || sender != e.addr["open"] {
		t.Fatalf("sender %s, %v", sender.Hex(), err)
	}
}

func TestHandler_PolicyRefusalNamesTheRule(t *testing.T) {
	e := newEnv(t)
	strict := e.addr["strict"]
	tx := func(extra map[string]any) map[string]any {
		m := map[string]any{"from": strict, "to": dead, "nonce": "0x0", "gas": "0x5208", "chainId": "0x1",
			"maxFeePerGas": "0x2", "maxPriorityFeePerGas": "0x1"}
		for k, v := range extra {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	td := func(chainID int, contract string) json.RawMessage {
		s := strings.Replace(mailTypedData, `"chainId": 1,`, fmt.Sprintf(`"chainId": %d,`, chainID), 1)
		return json.RawMessage(strings.Replace(s, "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC", contract, 1))
	}
	tests := []struct {
		name   string
		method string
		params []any
		rule   string
	}{
		{"chain id", "eth_signTransaction", []any{tx(map[string]any{"chainId": "0x5"})}, "ethereum.chain_ids"},
		{"recipient", "eth_signTransaction", []any{tx(map[string]any{"to": "0x2222222222222222222222222222222222222222"})}, "ethereum.to"},
		{"contract creation", "eth_signTransaction", []any{tx(map[string]any{"to": nil, "data": "0x6000"})}, "ethereum.allow_create"},
		{"max value", "eth_signTransaction", []any{tx(map[string]any{"value": "0xde0b6b3a7640001"})}, "ethereum.max_value"},
		{"method selector", "eth_signTransaction", []any{tx(map[string]any{"to": "0x1111111111111111111111111111111111111111", "data": "0x095ea7b3"})}, "ethereum.methods"},
		{"messages off", "personal_sign", []any{"0x68656c6c6f", strict}, "ethereum.sign_messages"},
		{"messages off (eth_sign)", "eth_sign", []any{strict, "0x68656c6c6f"}, "ethereum.sign_messages"},
		{"messages off (clef)", "account_signData", []any{"text/plain", strict, "0x68656c6c6f"}, "ethereum.sign_messages"},
		{"typed data domain", "eth_signTypedData_v4", []any{strict, td(1, "0x2222222222222222222222222222222222222222")}, "ethereum.typed_data_domains"},
		{"typed data chain", "eth_signTypedData_v4", []any{strict, td(5, "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC")}, "ethereum.chain_ids"},
		{"authorizations off", "eth_signAuthorization", []any{strict, map[string]any{"chainId": "0x1", "address": dead, "nonce": "0x0"}}, "ethereum.sign_authorizations"},
		{"clique off", "account_signData", []any{"application/x-clique-header", strict, "0xc0"}, "ethereum.sign_clique_headers"},
		{"clef transaction", "account_signTransaction", []any{tx(map[string]any{"value": "0xde0b6b3a7640001"})}, "ethereum.max_value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out any
			err := e.call(&out, tc.method, tc.params...)
			if code(err) != rpc.CodeRefused {
				t.Fatalf("err %v (code %d), want %d", err, code(err), rpc.CodeRefused)
			}
			rec := e.audit.Last(t)
			if rec.Outcome != "refused" || rec.Rule != tc.rule || rec.Key != "strict" || rec.Method != tc.method {
				t.Fatalf("audit record %+v, want a refusal by %s", rec, tc.rule)
			}
		})
	}
	// The allowed cases of the same key go through.
	var raw hexutil.Bytes
	if err := e.call(&raw, "eth_signTransaction", tx(map[string]any{"to": "0x1111111111111111111111111111111111111111", "data": "0xa9059cbb"})); err != nil {
		t.Fatal(err)
	}
	var sig hexutil.Bytes
	if err := e.call(&sig, "eth_signTypedData_v4", strict, json.RawMessage(mailTypedData)); err != nil {
		t.Fatal(err)
	}
}

func TestHandler_UnknownAddressRevealsNothing(t *testing.T) {
	e := newEnv(t)
	unknown := common.HexToAddress("0x9999999999999999999999999999999999999999")
	var first *rpc.Error
	for _, addr := range []common.Address{unknown, e.addr["tezosonly"]} {
		for _, tc := range []struct {
			method string
			params []any
		}{
			{"personal_sign", []any{"0x00", addr}},
			{"eth_signTransaction", []any{map[string]any{"from": addr, "to": dead, "nonce": "0x0", "gas": "0x5208", "gasPrice": "0x1", "chainId": "0x1"}}},
			{"eth_signTypedData_v4", []any{addr, json.RawMessage(mailTypedData)}},
		} {
			body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": tc.method, "params": tc.params})
			_, raw := e.post(t, body)
			var ans rpcAnswer
			if err := json.Unmarshal(raw, &ans); err != nil || ans.Error == nil {
				t.Fatalf("%s: answer %s", tc.method, raw)
			}
			if first == nil {
				first = ans.Error
			}
			if ans.Error.Code != first.Code || ans.Error.Message != first.Message || ans.Error.Data != nil || ans.Error.Code != rpc.CodeServer {
				t.Fatalf("%s for %s: %+v, want the same error as %+v", tc.method, addr.Hex(), ans.Error, first)
			}
		}
	}
}

func TestHandler_MalformedParamsAreInvalidParams(t *testing.T) {
	e := newEnv(t)
	open := e.addr["open"].Hex()
	tests := []struct {
		name, method, params string
	}{
		{"personal_sign without address", "personal_sign", `["0x00"]`},
		{"personal_sign bad hex", "personal_sign", `["0xzz", "` + open + `"]`},
		{"personal_sign odd hex", "personal_sign", `["0x123", "` + open + `"]`},
		{"eth_sign short address", "eth_sign", `["0x1234", "0x00"]`},
		{"eth_sign address as number", "eth_sign", `[5, "0x00"]`},
		{"params as object", "eth_sign", `{"address": "` + open + `"}`},
		{"tx without from", "eth_signTransaction", `[{"to": "0x000000000000000000000000000000000000dEaD", "nonce": "0x0", "gas": "0x1", "gasPrice": "0x1", "chainId": "0x1"}]`},
		{"tx without nonce", "eth_signTransaction", `[{"from": "` + open + `", "gas": "0x1", "gasPrice": "0x1", "chainId": "0x1"}]`},
		{"tx without gas", "eth_signTransaction", `[{"from": "` + open + `", "nonce": "0x1", "gasPrice": "0x1", "chainId": "0x1"}]`},
		{"tx as string", "eth_signTransaction", `["0xf86c"]`},
		{"tx without params", "eth_signTransaction", `[]`},
		{"typed data without types", "eth_signTypedData_v4", `["` + open + `", {"primaryType": "Mail", "domain": {}, "message": {}}]`},
		{"typed data not JSON", "eth_signTypedData_v4", `["` + open + `", "not json"]`},
		{"typed data bad value", "eth_signTypedData_v4", `["` + open + `", ` + strings.Replace(mailTypedData, `"0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"`, `"0x12"`, 1) + `]`},
		{"authorization without nonce", "eth_signAuthorization", `["` + open + `", {"chainId": "0x1", "address": "0x000000000000000000000000000000000000dEaD"}]`},
		{"signData unknown content type", "account_signData", `["application/x-unknown", "` + open + `", "0x00"]`},
		{"signData content type as number", "account_signData", `[1, "` + open + `", "0x00"]`},
		{"clique header not RLP", "account_signData", `["application/x-clique-header", "` + open + `", "0x0102"]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, raw := e.post(t, []byte(`{"jsonrpc":"2.0","id":7,"method":"`+tc.method+`","params":`+tc.params+`}`))
			var ans rpcAnswer
			if err := json.Unmarshal(raw, &ans); err != nil {
				t.Fatal(err)
			}
			if ans.Error == nil || ans.Error.Code != rpc.CodeInvalidParams || string(ans.ID) != "7" {
				t.Fatalf("answer %s, want a -32602 error", raw)
			}
		})
	}
}

func TestHandler_UnknownMethodIsMethodNotFound(t *testing.T) {
	e := newEnv(t)
	for _, m := range []string{"eth_fooBar", "eth_blockNumber", "admin_peers", "personal_unlockAccount"} {
		if err := e.call(nil, m); code(err) != rpc.CodeMethodNotFound {
			t.Fatalf("%s: %v, want -32601", m, err)
		}
	}
}

func TestHandler_ChainIDAnswersConfigWithoutUpstream(t *testing.T) {
	e := newEnv(t)
	var id hexutil.Uint64
	if err := e.call(&id, "eth_chainId"); err != nil || id != 1337 {
		t.Fatalf("eth_chainId = %d, %v", id, err)
	}
	none := newEnv(t, func(o *rpc.Options) { o.ChainID = 0 })
	if err := none.call(&id, "eth_chainId"); code(err) != rpc.CodeMethodNotFound {
		t.Fatalf("eth_chainId without config: %v, want -32601", err)
	}
	var s string
	if err := e.call(&s, "health_status"); err != nil || s != "OK" {
		t.Fatalf("health_status %q %v", s, err)
	}
	if err := e.call(&s, "account_version"); err != nil || s == "" {
		t.Fatalf("account_version %q %v", s, err)
	}
}

func TestHandler_BatchesAndLimits(t *testing.T) {
	e := newEnv(t) // MaxBatch 10, MaxBodyBytes 1 MiB
	status, raw := e.post(t, []byte(`[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"nope"},{"jsonrpc":"2.0","method":"eth_chainId"}]`))
	var answers []rpcAnswer
	if err := json.Unmarshal(raw, &answers); err != nil || status != http.StatusOK {
		t.Fatalf("status %d answer %s", status, raw)
	}
	if len(answers) != 2 || string(answers[0].Result) != `"0x539"` || answers[1].Error == nil || answers[1].Error.Code != rpc.CodeMethodNotFound {
		t.Fatalf("batch answers %s", raw)
	}

	big := "[" + strings.Repeat(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},`, 10) + `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}]`
	_, raw = e.post(t, []byte(big))
	var one rpcAnswer
	if err := json.Unmarshal(raw, &one); err != nil || one.Error == nil || one.Error.Code != rpc.CodeInvalidRequest {
		t.Fatalf("oversized batch: %s", raw)
	}

	_, raw = e.post(t, []byte(`[]`))
	if err := json.Unmarshal(raw, &one); err != nil || one.Error == nil || one.Error.Code != rpc.CodeInvalidRequest {
		t.Fatalf("empty batch: %s", raw)
	}

	huge := []byte(`{"jsonrpc":"2.0","id":1,"method":"personal_sign","params":["0x` + strings.Repeat("00", 1<<20) + `"]}`)
	status, raw = e.post(t, huge)
	if err := json.Unmarshal(raw, &one); err != nil || status != http.StatusRequestEntityTooLarge || one.Error == nil || one.Error.Code != rpc.CodeInvalidRequest {
		t.Fatalf("oversized body: status %d %s", status, raw)
	}

	_, raw = e.post(t, []byte(`{"jsonrpc":"2.0","id":1,"method":`))
	if err := json.Unmarshal(raw, &one); err != nil || one.Error == nil || one.Error.Code != rpc.CodeParse {
		t.Fatalf("parse error: %s", raw)
	}
	_, raw = e.post(t, []byte(`{"jsonrpc":"1.0","id":1,"method":"eth_chainId"}`))
	if err := json.Unmarshal(raw, &one); err != nil || one.Error == nil || one.Error.Code != rpc.CodeInvalidRequest {
		t.Fatalf("jsonrpc 1.0: %s", raw)
	}
}

func TestHandler_AuditFailureWithholdsSignature(t *testing.T) {
	e := newEnv(t)
	e.audit.Fail(audit.ErrUnavailable)
	var sig hexutil.Bytes
	err := e.call(&sig, "personal_sign", "0x68656c6c6f", e.addr["open"])
	if code(err) != rpc.CodeServer || len(sig) != 0 {
		t.Fatalf("sig %s err %v, want a -32000 error and no signature", sig, err)
	}
}

func TestHandler_AuditRecordsEveryDecisionWithTokenName(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens")
	if err := os.WriteFile(path, []byte("# clients\nbot-1 s3cret-token-for-bot-1\nops   another-long-token-ops\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := rpc.LoadTokenSet(path)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *rpc.Options) { o.Tokens = func() *rpc.TokenSet { return tokens } })
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"personal_sign","params":["0x68656c6c6f","` + e.addr["open"].Hex() + `"]}`)

	for _, hdr := range [][]string{nil, {"Authorization", "Bearer wrong-token-wrong-token"}, {"Authorization", "Basic Ym90OnB3"}} {
		status, raw := e.post(t, body, hdr...)
		var ans rpcAnswer
		if err := json.Unmarshal(raw, &ans); err != nil || status != http.StatusUnauthorized || ans.Error == nil || ans.Error.Code != rpc.CodeUnauthorized {
			t.Fatalf("header %v: status %d %s", hdr, status, raw)
		}
	}
	// Strangers cost a count, not a line each: one summary so far.
	if recs := e.audit.Records(); len(recs) != 1 || recs[0].Count != 1 || recs[0].Rule != string(rpc.RuleTokens) || recs[0].Status != rpc.CodeUnauthorized {
		t.Fatalf("audit records for unauthenticated requests: %+v", recs)
	}
	status, raw := e.post(t, body, "Authorization", "Bearer s3cret-token-for-bot-1")
	var ans rpcAnswer
	if err := json.Unmarshal(raw, &ans); err != nil || status != http.StatusOK || ans.Error != nil {
		t.Fatalf("status %d %s", status, raw)
	}
	if rec := e.audit.Last(t); rec.Auth != "bot-1" || rec.Outcome != "signed" || rec.Kind != "message" || rec.Chain != "ethereum" || rec.Digest == "" {
		t.Fatalf("audit record %+v", rec)
	}
	// A refused and a failed decision are recorded too.
	_, _ = e.post(t, []byte(`{"jsonrpc":"2.0","id":1,"method":"personal_sign","params":["0x00","`+e.addr["strict"].Hex()+`"]}`), "Authorization", "Bearer another-long-token-ops")
	if rec := e.audit.Last(t); rec.Auth != "ops" || rec.Outcome != "refused" || rec.Rule != "ethereum.sign_messages" {
		t.Fatalf("audit record %+v", rec)
	}
	_, _ = e.post(t, []byte(`{"jsonrpc":"2.0","id":1,"method":"personal_sign","params":["0x00","0x9999999999999999999999999999999999999999"]}`), "Authorization", "Bearer another-long-token-ops")
	// An unknown account is refused before a key is known: a summary.
	if rec := e.audit.Last(t); rec.Outcome != "refused" || rec.Rule != "key" || rec.Count != 1 || rec.Status != rpc.CodeServer {
		t.Fatalf("audit record %+v", rec)
	}
}

func TestLoadTokens_Refusals(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, body string
		mode       os.FileMode
	}{
		{"group readable", "bot a-long-enough-token-1234\n", 0o640},
		{"short token", "bot short\n", 0o600},
		{"duplicate name", "bot a-long-enough-token-1234\nbot a-long-enough-token-5678\n", 0o600},
		{"duplicate token", "a a-long-enough-token-1234\nb a-long-enough-token-1234\n", 0o600},
		{"three fields", "bot a-long-enough-token-1234 extra\n", 0o600},
		{"empty", "# nothing\n", 0o600},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, fmt.Sprint(i))
			if err := os.WriteFile(p, []byte(tc.body), tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tc.mode); err != nil {
				t.Fatal(err)
			}
			if _, err := rpc.LoadTokens(p); !errors.Is(err, rpc.ErrTokensFile) {
				t.Fatalf("err %v, want ErrTokensFile", err)
			}
		})
	}
}

func TestHandler_NotificationGetsNoAnswer(t *testing.T) {
	e := newEnv(t)
	status, raw := e.post(t, []byte(`{"jsonrpc":"2.0","method":"eth_chainId"}`))
	if status != http.StatusNoContent || len(raw) != 0 {
		t.Fatalf("status %d body %q", status, raw)
	}
}

// FuzzServe feeds arbitrary bodies (requests, batches, params of every
// method) to the handler: it must answer valid JSON-RPC and never panic.
func FuzzServe(f *testing.F) {
	e := newEnv(f)
	open := e.addr["open"].Hex()
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"personal_sign","params":["0x00","` + open + `"]}`))
	f.Add([]byte(`[{"jsonrpc":"2.0","id":1,"method":"eth_signTransaction","params":[{"from":"` + open + `","nonce":"0x0","gas":"0x5208","gasPrice":"0x1","chainId":"0x1"}]}]`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":"x","method":"eth_signTypedData_v4","params":["` + open + `",` + mailTypedData + `]}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":2,"method":"account_signData","params":["application/x-clique-header","` + open + `","0xc0"]}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":3,"method":"eth_signAuthorization","params":["` + open + `",{"chainId":"0x1","address":"` + open + `","nonce":"0x0"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		status, raw := serveDirect(e.h, body)
		if status == http.StatusNoContent {
			return
		}
		if !json.Valid(raw) {
			t.Fatalf("answer is not JSON: %q", raw)
		}
	})
}

func serveDirect(h http.Handler, body []byte) (int, []byte) {
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code, w.Body.Bytes()
}

func TestHandler_EmptyRingListsNoAccounts(t *testing.T) {
	ring, _ := newRing(t, nil)
	h, err := rpc.NewHandler(rpc.Options{Ring: func() *keyring.Ring { return ring }})
	if err != nil {
		t.Fatal(err)
	}
	_, raw := serveDirect(h, []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_accounts"}`))
	var ans rpcAnswer
	if err := json.Unmarshal(raw, &ans); err != nil || string(ans.Result) != "[]" {
		t.Fatalf("answer %s", raw)
	}
}

// Finding 3 of issue 14: a reload kept the tokens read at start. The
// handler asks Options.Tokens on every request, so a new set takes effect
// at once: the revoked token is refused, the new one accepted.
func TestHandler_TokensAreReadOnEveryRequest(t *testing.T) {
	dir := t.TempDir()
	load := func(text string) *rpc.TokenSet {
		p := filepath.Join(dir, "tokens")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		ts, err := rpc.LoadTokenSet(p)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	var cur atomic.Pointer[rpc.TokenSet]
	cur.Store(load("bot old-token-0123456789\n"))
	e := newEnv(t, func(o *rpc.Options) { o.Tokens = cur.Load })
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_accounts","params":[]}`)
	status := func(tok string) int {
		s, _ := e.post(t, body, "Authorization", "Bearer "+tok)
		return s
	}
	if status("old-token-0123456789") != http.StatusOK || status("new-token-0123456789") != http.StatusUnauthorized {
		t.Fatal("before the swap")
	}
	cur.Store(load("bot new-token-0123456789\n"))
	if got := status("old-token-0123456789"); got != http.StatusUnauthorized {
		t.Errorf("revoked token: HTTP %d, want 401", got)
	}
	if got := status("new-token-0123456789"); got != http.StatusOK {
		t.Errorf("new token: HTTP %d, want 200", got)
	}
	cur.Store(nil) // tokens_file removed: no authentication
	if s, _ := e.post(t, body); s != http.StatusOK {
		t.Errorf("without tokens: HTTP %d", s)
	}
}
