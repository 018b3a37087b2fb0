// Package rpc serves keyward's Ethereum JSON-RPC endpoint: the eth_* signing methods, clef's account_* external API, and an optional signing proxy to a node, each decision checked by the key's policy and written to the audit log.
package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"time"

	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/pipeline"
)

// Defaults for Options.
const (
	DefaultMaxBodyBytes = 16 << 20 // a blob transaction with its sidecar is a few MiB of hex
	DefaultMaxBatch     = 100
)

// Options configure a Handler.
type Options struct {
	// Ring returns the current key ring; it may change between calls (reload).
	Ring func() *keyring.Ring
	// Pipeline makes every signing decision (policy, audit, metrics).
	Pipeline *pipeline.Pipeline
	Log      *slog.Logger
	// ChainID answers eth_chainId when there is no upstream, and is the chain
	// id of transactions that carry none (0: not configured).
	ChainID uint64
	// Upstream is an optional node URL: the read and submit methods of the
	// forwarding allow-list (forwardMethods) go there, and
	// eth_sendTransaction is served.
	Upstream string
	// Tokens returns the current bearer tokens (see LoadTokenSet); it may
	// change between calls (reload). While it returns a set, every request
	// needs "Authorization: Bearer <token>"; nil (or a nil set): no tokens.
	Tokens func() *TokenSet
	// ClientIdentity, when set, returns an identity for the caller from the
	// request (e.g. a TLS client certificate subject).
	ClientIdentity func(r *http.Request) string
	MaxBodyBytes   int64 // 0: DefaultMaxBodyBytes
	MaxBatch       int   // 0: DefaultMaxBatch
	// HTTPClient reaches the upstream; nil: a client with a 30 s timeout.
	HTTPClient *http.Client
}

// Handler is the Ethereum JSON-RPC http.Handler. It serves POST / (single
// requests and batches) and GET / (health: "OK").
//
// Methods: eth_accounts, eth_chainId, health_status, eth_sign [address,
// data], personal_sign [data, address], eth_signTransaction [txArgs] (raw
// signed transaction), eth_signTypedData / _v3 / _v4 [address, typedData]
// (object or JSON string), eth_signAuthorization [address, {chainId,
// address, nonce}] (signed EIP-7702 authorization), eth_sendTransaction
// [txArgs] (with an upstream); clef's account_version, account_list,
// account_signTransaction [txArgs, methodSelector?] ({raw, tx}),
// account_signData [contentType, address, data] (text/plain,
// application/x-clique-header, data/typed) and account_signTypedData.
// Message and typed-data signatures carry v 27/28, clique seals v 0/1.
//
// Errors: -32602 malformed params (the message names the field), -32003
// refused by policy (the message names the rule), -32000 unknown account,
// key backend, audit log or upstream unavailable, -32601 unknown method,
// -32600 oversized or empty batch, oversized body (HTTP 413), -32001 with
// HTTP 401 for a missing or wrong bearer token, and with HTTP 403 for a
// browser request (one carrying an Origin header) when no tokens are
// configured.
type Handler struct {
	opts     Options
	log      *slog.Logger
	chainID  *big.Int // nil: not configured
	upstream *upstream
	methods  map[string]method
	p        *pipeline.Pipeline
}

type method func(ctx context.Context, c *call) (any, error)

// NewHandler checks opts and builds the handler.
func NewHandler(opts Options) (*Handler, error) {
	if opts.Ring == nil {
		return nil, errors.New("ethereum rpc: Options.Ring is required")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Pipeline == nil {
		opts.Pipeline = pipeline.New(pipeline.Options{Log: opts.Log, Codes: Codes()})
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	h := &Handler{opts: opts, log: opts.Log, p: opts.Pipeline}
	if opts.ChainID != 0 {
		h.chainID = new(big.Int).SetUint64(opts.ChainID)
	}
	if h.opts.Tokens == nil {
		h.opts.Tokens = func() *TokenSet { return nil }
	}
	if opts.Upstream != "" {
		u, err := newUpstream(opts.Upstream, opts.HTTPClient)
		if err != nil {
			return nil, err
		}
		h.upstream = u
	}
	h.methods = map[string]method{
		"eth_accounts":            h.ethAccounts,
		"eth_chainId":             h.ethChainID,
		"health_status":           func(context.Context, *call) (any, error) { return "OK", nil },
		"eth_sign":                h.ethSign,
		"personal_sign":           h.personalSign,
		"eth_signTransaction":     h.ethSignTransaction,
		"eth_signTypedData":       h.ethSignTypedData,
		"eth_signTypedData_v3":    h.ethSignTypedData,
		"eth_signTypedData_v4":    h.ethSignTypedData,
		"eth_signAuthorization":   h.ethSignAuthorization,
		"eth_sendTransaction":     h.ethSendTransaction,
		"account_version":         func(context.Context, *call) (any, error) { return ExternalAPIVersion, nil },
		"account_list":            h.ethAccounts,
		"account_signTransaction": h.accountSignTransaction,
		"account_signData":        h.accountSignData,
		"account_signTypedData":   h.ethSignTypedData,
	}
	return h, nil
}

// ExternalAPIVersion is the clef external API version keyward speaks.
const ExternalAPIVersion = "6.1.0"

// JSON-RPC error codes keyward returns.
const (
	CodeParse          = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternal       = -32603
	CodeServer         = -32000 // unknown account, backend or audit unavailable, upstream unreachable
	CodeRefused        = -32003 // refused by policy (EIP-1474 "transaction rejected")
	CodeUnauthorized   = -32001 // missing or wrong bearer token
)

// Error is a JSON-RPC error object.
type Error struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("json-rpc error %d: %s", e.Code, e.Message) }

type request struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}

// call is one request being served.
type call struct {
	method string
	params []json.RawMessage
	raw    json.RawMessage // params as sent, for forwarding
	caller pipeline.Caller
	start  time.Time
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
	case http.MethodGet:
		if r.URL.Path == "/" || r.URL.Path == "/healthz" {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "OK\n")
			return
		}
		http.NotFound(w, r)
		return
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	start := time.Now()
	caller := pipeline.Caller{Addr: r.RemoteAddr}
	if h.opts.ClientIdentity != nil {
		if id := h.opts.ClientIdentity(r); id != "" {
			caller.IDs = append(caller.IDs, id)
		}
	}
	tokens := h.opts.Tokens()
	if _, browser := r.Header["Origin"]; browser && tokens == nil {
		// Without tokens anyone who reaches the port is trusted; a web page
		// the operator visits reaches it too (a no-preflight text/plain POST,
		// or DNS rebinding to read the answer). Browsers send Origin on every
		// POST, empty or not; keyward's clients never do.
		h.refuseHTTP(w, http.StatusForbidden, caller, pipeline.Fail(pipeline.Refused, RuleOrigin, "browser requests (Origin header) are refused without bearer tokens"))
		return
	}
	authName, ok := authenticate(r, tokens)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="keyward"`)
		h.refuseHTTP(w, http.StatusUnauthorized, caller, pipeline.Fail(pipeline.Unauthenticated, RuleTokens, "missing or invalid bearer token"))
		return
	}
	if authName != "" {
		caller.IDs = append(caller.IDs, authName)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.refuseHTTP(w, http.StatusRequestEntityTooLarge, caller, pipeline.Fail(pipeline.TooLarge, pipeline.RuleRequest, "request body larger than %d bytes", h.opts.MaxBodyBytes))
			return
		}
		h.refuseHTTP(w, http.StatusBadRequest, caller, pipeline.Fail(pipeline.Malformed, pipeline.RuleRequest, "cannot read request body"))
		return
	}
	out, status := h.serve(r.Context(), body, caller, start)
	if out == nil {
		w.WriteHeader(http.StatusNoContent) // notifications only
		return
	}
	writeJSON(w, status, out)
}

// serve handles one body: a request or a batch. It returns nil when nothing
// is to be answered (notifications).
func (h *Handler) serve(ctx context.Context, body []byte, caller pipeline.Caller, start time.Time) (any, int) {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		var batch []json.RawMessage
		if err := json.Unmarshal(body, &batch); err != nil {
			return h.malformedBody(caller, CodeParse, "parse error: "+err.Error()), http.StatusOK
		}
		if len(batch) == 0 {
			return h.malformedBody(caller, CodeInvalidRequest, "empty batch"), http.StatusOK
		}
		if len(batch) > h.opts.MaxBatch {
			return h.malformedBody(caller, CodeInvalidRequest, fmt.Sprintf("batch of %d requests is larger than the limit of %d", len(batch), h.opts.MaxBatch)), http.StatusOK
		}
		out := make([]response, 0, len(batch))
		for _, item := range batch {
			if resp, answer := h.one(ctx, item, caller, start); answer {
				out = append(out, resp)
			}
		}
		if len(out) == 0 {
			return nil, 0
		}
		return out, http.StatusOK
	}
	resp, answer := h.one(ctx, body, caller, start)
	if !answer {
		return nil, 0
	}
	return resp, http.StatusOK
}

// one serves a single request; answer is false for a notification.
func (h *Handler) one(ctx context.Context, raw json.RawMessage, caller pipeline.Caller, start time.Time) (resp response, answer bool) {
	resp.JSONRPC = "2.0"
	resp.ID = json.RawMessage("null")
	var req request
	if err := json.Unmarshal(raw, &req); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			resp.Error = &Error{Code: CodeParse, Message: "parse error: " + err.Error()}
		} else {
			resp.Error = &Error{Code: CodeInvalidRequest, Message: "invalid request: " + err.Error()}
		}
		h.p.Reject(pipeline.Ethereum, caller, pipeline.Fail(pipeline.Malformed, pipeline.RuleRequest, "%s", resp.Error.Message))
		return resp, true
	}
	notification := req.ID == nil
	if !notification {
		resp.ID = req.ID
	}
	if req.JSONRPC != "2.0" || req.Method == "" {
		resp.Error = &Error{Code: CodeInvalidRequest, Message: `invalid request: want "jsonrpc": "2.0" and a method`}
		h.p.Reject(pipeline.Ethereum, caller, pipeline.Fail(pipeline.Malformed, pipeline.RuleRequest, "%s", resp.Error.Message))
		return resp, true
	}
	c := &call{method: req.Method, raw: req.Params, caller: caller, start: start}
	if p := bytes.TrimSpace(req.Params); len(p) > 0 && !bytes.Equal(p, []byte("null")) {
		if p[0] != '[' {
			resp.Error = &Error{Code: CodeInvalidParams, Message: "invalid params: want a positional (array) params list"}
			return resp, !notification
		}
		if err := json.Unmarshal(p, &c.params); err != nil {
			resp.Error = &Error{Code: CodeInvalidParams, Message: "invalid params: " + err.Error()}
			return resp, !notification
		}
	}
	result, err := h.dispatch(ctx, c)
	if err != nil {
		resp.Error = h.toError(c, err)
	} else {
		resp.Result = result
		if result == nil {
			resp.Result = json.RawMessage("null")
		}
	}
	return resp, !notification
}

func (h *Handler) dispatch(ctx context.Context, c *call) (any, error) {
	if m, ok := h.methods[c.method]; ok {
		return m(ctx, c)
	}
	if h.upstream != nil && forwardable(c.method) {
		return h.upstream.forward(ctx, c.method, c.raw)
	}
	return nil, &Error{Code: CodeMethodNotFound, Message: fmt.Sprintf("the method %s does not exist/is not available", c.method)}
}

// malformedBody counts a body that is not a JSON-RPC request or batch and
// builds its answer.
func (h *Handler) malformedBody(caller pipeline.Caller, code int, msg string) response {
	h.p.Reject(pipeline.Ethereum, caller, pipeline.Fail(pipeline.Malformed, pipeline.RuleRequest, "%s", msg))
	return response{JSONRPC: "2.0", ID: json.RawMessage("null"), Error: &Error{Code: code, Message: msg}}
}

// refuseHTTP answers a request refused before its body was read.
func (h *Handler) refuseHTTP(w http.ResponseWriter, status int, caller pipeline.Caller, e *pipeline.Error) {
	h.p.Reject(pipeline.Ethereum, caller, e)
	writeJSON(w, status, response{JSONRPC: "2.0", ID: json.RawMessage("null"), Error: &Error{Code: Code(e.Class, e.Rule), Message: e.Msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// authenticate returns the client name of the request's bearer token, or
// "" when no tokens are configured.
func authenticate(r *http.Request, tokens *TokenSet) (string, bool) {
	if tokens == nil {
		return "", true
	}
	const prefix = "Bearer "
	a := r.Header.Get("Authorization")
	if len(a) <= len(prefix) || !equalFold(a[:len(prefix)], prefix) {
		return "", false
	}
	return tokens.Lookup(a[len(prefix):])
}

func equalFold(a, b string) bool { return bytes.EqualFold([]byte(a), []byte(b)) }

var _ http.Handler = (*Handler)(nil)
