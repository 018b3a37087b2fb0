package rpc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"

	"github.com/keyward/keyward/audit/audittest"
	"github.com/keyward/keyward/chains/ethereum/rpc"
	"github.com/keyward/keyward/internal/testutil"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/pipeline"
	"github.com/keyward/keyward/policy"
)

// runEthers runs test/ethjs/ethers.mjs with args and decodes its JSON output.
// Missing node or node_modules skip the test locally and fail it under CI
// (`make test` runs `npm ci` in test/ethjs).
func runEthers(t *testing.T, args ...string) map[string]any {
	t.Helper()
	nodeBin := testutil.LookPath(t, "node")
	dir := filepath.Join(testutil.RepoRoot(), "test", "ethjs")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ethers", "package.json")); err != nil {
		testutil.Need(t, "ethers.js (npm ci in test/ethjs)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, append([]string{"ethers.mjs"}, args...)...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node ethers.mjs %s: %v\n%s", args[0], err, stderr.String())
	}
	var res map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("ethers.mjs output %q: %v", out, err)
	}
	return res
}

func TestEthers_JsonRpcSignerAgainstKeyward(t *testing.T) {
	e := newEnv(t)
	from := e.addr["open"]
	res := runEthers(t, "sign", e.srv.URL, from.Hex())
	// Check ethers' raw transaction in Go as well.
	raw, err := hexutil.Decode(fmt.Sprint(res["raw1559"]))
	if err != nil {
		t.Fatal(err)
	}
	var tx types.Transaction
	if err := tx.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	sender, err := types.Sender(types.LatestSignerForChainID(big.NewInt(1337)), &tx)
	if err != nil || sender != from || tx.Type() != types.DynamicFeeTxType {
		t.Fatalf("sender %s type %d: %v", sender.Hex(), tx.Type(), err)
	}
}

// startNode starts go-ethereum's simulated backend with its HTTP JSON-RPC on
// loopback, funds alloc, and mines a block every 100 ms.
func startNode(t *testing.T, funded common.Address) (url string, client *ethclient.Client) {
	t.Helper()
	port := testutil.FreePort(t)
	sim := simulated.NewBackend(types.GenesisAlloc{funded: {Balance: new(big.Int).Mul(big.NewInt(100), big.NewInt(1e18))}},
		func(nc *node.Config, _ *ethconfig.Config) {
			nc.HTTPHost = "127.0.0.1"
			nc.HTTPPort = port
			nc.HTTPModules = []string{"eth", "net", "web3"}
		})
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				sim.Commit()
			}
		}
	}()
	t.Cleanup(func() {
		close(done)
		<-stopped
		_ = sim.Close()
	})
	url = fmt.Sprintf("http://127.0.0.1:%d", port)
	c, err := ethclient.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return url, c
}

func TestProxy_EthersSendTransactionMinedAndForbiddenNeverReachesNode(t *testing.T) {
	allowed := common.HexToAddress("0x3333333333333333333333333333333333333333")
	forbidden := common.HexToAddress("0x4444444444444444444444444444444444444444")
	ring, addrs := newRing(t, []testKey{{"bot", secretOpen, &policy.EthereumRules{
		ChainIDs: []uint64{1337}, To: []string{allowed.Hex()}, MaxValue: "1 ether"}}})
	from := addrs["bot"]
	nodeURL, client := startNode(t, from)

	a := &audittest.Memory{}
	p := pipeline.New(pipeline.Options{Audit: a, Codes: rpc.Codes()})
	t.Cleanup(p.Close)
	h, err := rpc.NewHandler(rpc.Options{Ring: func() *keyring.Ring { return ring }, Pipeline: p, Upstream: nodeURL})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{h: h, audit: a}
	srv := newServer(t, h)

	res := runEthers(t, "send", srv, from.Hex(), allowed.Hex(), forbidden.Hex())
	t.Logf("ethers: %v", res)

	ctx := context.Background()
	receipt, err := client.TransactionReceipt(ctx, common.HexToHash(fmt.Sprint(res["hash"])))
	if err != nil {
		t.Fatal(err)
	}
	tx, _, err := client.TransactionByHash(ctx, receipt.TxHash)
	if err != nil {
		t.Fatal(err)
	}
	sender, err := types.Sender(types.LatestSignerForChainID(tx.ChainId()), tx)
	if err != nil || sender != from || receipt.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("mined transaction from %s status %d: %v", sender.Hex(), receipt.Status, err)
	}
	if bal, err := client.BalanceAt(ctx, allowed, nil); err != nil || bal.Cmp(new(big.Int).Div(big.NewInt(1e18), big.NewInt(2))) != 0 {
		t.Fatalf("recipient balance %v, %v", bal, err)
	}
	// The forbidden transfer: refused by keyward, never seen by the node.
	if c, _ := res["refusedCode"].(float64); int(c) != rpc.CodeRefused {
		t.Fatalf("ethers saw error code %v, want %d", res["refusedCode"], rpc.CodeRefused)
	}
	if rec := e.audit.Last(t); rec.Outcome != "refused" || rec.Rule != "ethereum.to" || rec.Method != "eth_sendTransaction" {
		t.Fatalf("audit record %+v", rec)
	}
	if n, err := client.PendingNonceAt(ctx, from); err != nil || n != 1 {
		t.Fatalf("pending nonce %d, %v: the node saw another transaction", n, err)
	}
	if bal, err := client.BalanceAt(ctx, forbidden, nil); err != nil || bal.Sign() != 0 {
		t.Fatalf("forbidden recipient balance %v, %v", bal, err)
	}
}

func TestProxy_ForwardsUnsignedMethodsOnly(t *testing.T) {
	ring, addrs := newRing(t, []testKey{{"bot", secretOpen, openRules}})
	nodeURL, _ := startNode(t, addrs["bot"])
	h, err := rpc.NewHandler(rpc.Options{Ring: func() *keyring.Ring { return ring }, Upstream: nodeURL})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{h: h}
	c := dial(t, newServer(t, h))
	e.rpc = c
	var id hexutil.Uint64
	if err := e.call(&id, "eth_chainId"); err != nil || id != 1337 {
		t.Fatalf("eth_chainId %d %v", id, err)
	}
	var bal hexutil.Big
	if err := e.call(&bal, "eth_getBalance", addrs["bot"], "latest"); err != nil || (*big.Int)(&bal).Sign() == 0 {
		t.Fatalf("eth_getBalance %v %v", (*big.Int)(&bal), err)
	}
	// Node-side signing and admin namespaces are never forwarded.
	for _, m := range []string{"eth_signTypedData_v1", "personal_listAccounts", "admin_nodeInfo", "debug_traceTransaction"} {
		if err := e.call(nil, m); code(err) != rpc.CodeMethodNotFound {
			t.Fatalf("%s: %v, want -32601", m, err)
		}
	}
	var accts []common.Address
	if err := e.call(&accts, "eth_accounts"); err != nil || len(accts) != 1 || accts[0] != addrs["bot"] {
		t.Fatalf("eth_accounts %v %v", accts, err)
	}
}
