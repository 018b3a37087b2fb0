package rpc

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward/internal/testutil"
	"github.com/keyward/keyward/keyring"
)

// recordingNode stands in for ethereum.upstream: it answers every method
// with "0x1" and records the names it was asked.
func recordingNode(t *testing.T) (url string, seen func() []string) {
	t.Helper()
	var mu sync.Mutex
	var names []string
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		mu.Lock()
		names = append(names, req.Method)
		mu.Unlock()
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(req.ID) + `,"result":"0x1"}`))
	}))
	t.Cleanup(node.Close)
	return node.URL, func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := names
		names = nil
		return out
	}
}

// rpcCall posts one JSON-RPC request to h and returns its result, or its
// error code and message.
func rpcCall(t *testing.T, h http.Handler, method string, params ...any) (result json.RawMessage, code int, msg string) {
	t.Helper()
	if params == nil {
		params = []any{}
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body)))
	var resp struct {
		Result json.RawMessage `json:"result"`
		Error  *Error          `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatalf("%s: %v: %s", method, err, w.Body)
	}
	if resp.Error != nil {
		return nil, resp.Error.Code, resp.Error.Message
	}
	return resp.Result, 0, ""
}

// Finding 7 of issue 11: with an upstream, eth_resend (which re-signs with
// accounts the node manages) and "eth_accounts " (trailing space) were
// forwarded. Only the exact names of forwardMethods reach the node;
// everything else is -32601 and the node sees nothing.
func TestProxy_ForwardsOnlyTheAllowList(t *testing.T) {
	nodeURL, seen := recordingNode(t)
	ring, err := keyring.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHandler(Options{Ring: func() *keyring.Ring { return ring }, Upstream: nodeURL})
	if err != nil {
		t.Fatal(err)
	}
	for m := range forwardMethods {
		if res, code, _ := rpcCall(t, h, m); code != 0 || string(res) != `"0x1"` {
			t.Errorf("%s: result %s code %d, want the node's answer", m, res, code)
		}
		if got := seen(); !slices.Equal(got, []string{m}) {
			t.Errorf("%s: node saw %q", m, got)
		}
	}
	for _, m := range []string{
		"eth_resend", "eth_accounts ", " eth_accounts", "eth_blockNumber ", "ETH_BLOCKNUMBER", "eth_blocknumber", "eth_getBalance\x00",
		"eth_coinbase", "eth_fillTransaction", "eth_signTypedData_v1", "eth_sign_", "eth_getBlockByNumberX",
		"personal_unlockAccount", "personal_sendTransaction", "personal_sign_", "admin_addPeer", "debug_setHead", "miner_start",
		"txpool_content", "engine_forkchoiceUpdatedV3", "clique_propose", "net_", "web3_sha3x", "rpc_modules",
	} {
		if res, code, _ := rpcCall(t, h, m); code != CodeMethodNotFound {
			t.Errorf("%q: result %s code %d, want -32601", m, res, code)
		}
	}
	if got := seen(); len(got) != 0 {
		t.Fatalf("node saw %q", got)
	}
}

// The README lists the forwarded methods; the list and the code agree.
func TestProxy_READMEListsTheForwardedMethods(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(b), "## The Ethereum protocol")
	section, _, _ = strings.Cut(section, "\n## ")
	for m := range forwardMethods {
		if !strings.Contains(section, "`"+m+"`") {
			t.Errorf("README's Ethereum section does not list %s", m)
		}
	}
}
