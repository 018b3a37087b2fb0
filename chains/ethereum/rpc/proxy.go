package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/keyward/keyward/chains/ethereum"
)

// errUpstream wraps failures to reach the upstream node.
var errUpstream = errors.New("upstream node")

// upstream is a minimal JSON-RPC client for the node keyward proxies to.
type upstream struct {
	url    string
	client *http.Client
	id     atomic.Uint64
}

func newUpstream(raw string, client *http.Client) (*upstream, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The URL is not repeated: node URLs often carry an API key.
		return nil, fmt.Errorf("ethereum.upstream: want an http(s) URL with a host (the value is not shown: it may hold an API key)")
	}
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return &upstream{url: raw, client: client}, nil
}

// forwardMethods are the methods forwarded to ethereum.upstream, by exact
// name (letter case included): reads, filters, and the submission of
// transactions signed elsewhere. Anything else, in particular what a node
// signs with accounts it manages (eth_sign*, eth_sendTransaction,
// eth_resend, personal_*), lists them (eth_accounts, eth_coinbase) or
// administers it, is -32601 without reaching the node. The README's
// Ethereum section lists the same names (TestProxy_READMEListsTheForwardedMethods).
var forwardMethods = setOf(
	"eth_chainId", "eth_blockNumber", "eth_syncing",
	"eth_getBalance", "eth_getTransactionCount", "eth_getCode", "eth_getStorageAt", "eth_getProof",
	"eth_call", "eth_estimateGas", "eth_createAccessList",
	"eth_gasPrice", "eth_maxPriorityFeePerGas", "eth_feeHistory", "eth_blobBaseFee",
	"eth_getBlockByNumber", "eth_getBlockByHash", "eth_getBlockReceipts",
	"eth_getBlockTransactionCountByNumber", "eth_getBlockTransactionCountByHash",
	"eth_getTransactionByHash", "eth_getTransactionByBlockHashAndIndex", "eth_getTransactionByBlockNumberAndIndex",
	"eth_getTransactionReceipt", "eth_getLogs",
	"eth_newFilter", "eth_newBlockFilter", "eth_newPendingTransactionFilter",
	"eth_getFilterChanges", "eth_getFilterLogs", "eth_uninstallFilter",
	"eth_sendRawTransaction",
	"net_version", "net_listening", "web3_clientVersion",
)

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// forwardable reports whether method may go to the node (forwardMethods).
func forwardable(method string) bool { return forwardMethods[method] }

// forward sends one request to the node and returns its result, or its
// error object as an *Error.
func (u *upstream) forward(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	if len(params) == 0 {
		params = json.RawMessage("[]")
	}
	body, err := json.Marshal(request{JSONRPC: "2.0", ID: json.RawMessage(fmt.Sprint(u.id.Add(1))), Method: method, Params: params})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUpstream, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := u.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w unreachable", errUpstream)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the answer: %v", errUpstream, err)
	}
	var out struct {
		Result json.RawMessage `json:"result"`
		Error  *Error          `json:"error"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%w: HTTP %d, not a JSON-RPC answer", errUpstream, resp.StatusCode)
	}
	if out.Error != nil {
		return nil, out.Error
	}
	if out.Result == nil {
		out.Result = json.RawMessage("null")
	}
	return out.Result, nil
}

// call forwards method with params and decodes the result into out.
func (u *upstream) call(ctx context.Context, out any, method string, params ...any) error {
	if params == nil {
		params = []any{}
	}
	p, err := json.Marshal(params)
	if err != nil {
		return err
	}
	res, err := u.forward(ctx, method, p)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(res, out); err != nil {
		return fmt.Errorf("%w: %s answer: %v", errUpstream, method, err)
	}
	return nil
}

// ethSendTransaction fills what is missing from the node, signs under the
// key's policy and submits the raw transaction.
func (h *Handler) ethSendTransaction(ctx context.Context, c *call) (any, error) {
	if h.upstream == nil {
		return nil, &Error{Code: CodeMethodNotFound, Message: "eth_sendTransaction needs ethereum.upstream"}
	}
	s, err := h.signTx(ctx, c, h.fill)
	if err != nil {
		return nil, err
	}
	var hash json.RawMessage
	if err := h.upstream.call(ctx, &hash, "eth_sendRawTransaction", hexutil.Bytes(s.raw)); err != nil {
		return nil, err
	}
	return hash, nil
}

// fill completes chainId, nonce, gas and fees from the node.
func (h *Handler) fill(ctx context.Context, a *ethereum.TxArgs) error {
	u := h.upstream
	var cid hexutil.Big
	if err := u.call(ctx, &cid, "eth_chainId"); err != nil {
		return err
	}
	if a.ChainID == nil {
		a.ChainID = (*big.Int)(&cid)
	} else if a.ChainID.Cmp((*big.Int)(&cid)) != 0 {
		return &ethereum.ParamError{Field: "chainId", Reason: fmt.Sprintf("%v is not the node's chain id %v", a.ChainID, (*big.Int)(&cid))}
	}
	if a.Nonce == nil {
		var n hexutil.Uint64
		if err := u.call(ctx, &n, "eth_getTransactionCount", a.From, "pending"); err != nil {
			return err
		}
		v := uint64(n)
		a.Nonce = &v
	}
	if a.GasPrice == nil && a.MaxFeePerGas == nil && (a.Type == nil || *a.Type >= 2) {
		var head struct {
			BaseFee *hexutil.Big `json:"baseFeePerGas"`
		}
		if err := u.call(ctx, &head, "eth_getBlockByNumber", "latest", false); err != nil {
			return err
		}
		if head.BaseFee != nil {
			if a.MaxPriorityFeePerGas == nil {
				var tip hexutil.Big
				if err := u.call(ctx, &tip, "eth_maxPriorityFeePerGas"); err != nil {
					return err
				}
				a.MaxPriorityFeePerGas = (*big.Int)(&tip)
			}
			fee := new(big.Int).Mul((*big.Int)(head.BaseFee), big.NewInt(2))
			a.MaxFeePerGas = fee.Add(fee, a.MaxPriorityFeePerGas)
		}
	}
	if a.MaxFeePerGas != nil && a.MaxPriorityFeePerGas == nil {
		var tip hexutil.Big
		if err := u.call(ctx, &tip, "eth_maxPriorityFeePerGas"); err != nil {
			return err
		}
		a.MaxPriorityFeePerGas = (*big.Int)(&tip)
		if a.MaxPriorityFeePerGas.Cmp(a.MaxFeePerGas) > 0 {
			a.MaxPriorityFeePerGas = new(big.Int).Set(a.MaxFeePerGas)
		}
	}
	if a.GasPrice == nil && a.MaxFeePerGas == nil {
		var gp hexutil.Big
		if err := u.call(ctx, &gp, "eth_gasPrice"); err != nil {
			return err
		}
		a.GasPrice = (*big.Int)(&gp)
	}
	if a.Gas == nil {
		call := map[string]any{"from": a.From, "to": a.To, "input": hexutil.Bytes(a.Data)}
		if a.Value != nil {
			call["value"] = (*hexutil.Big)(a.Value)
		}
		if a.AccessList != nil {
			call["accessList"] = a.AccessList
		}
		var g hexutil.Uint64
		if err := u.call(ctx, &g, "eth_estimateGas", call); err != nil {
			return err
		}
		v := uint64(g)
		a.Gas = &v
	}
	return nil
}
