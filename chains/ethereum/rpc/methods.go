package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"mime"
	"strings"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/keyward/keyward/chains/ethereum"
	"github.com/keyward/keyward/limits"
	"github.com/keyward/keyward/pipeline"
)

// Audit kinds.
const (
	KindTransaction   = "transaction"
	KindMessage       = "message"
	KindTypedData     = "typed_data"
	KindCliqueHeader  = "clique_header"
	KindAuthorization = "authorization"
)

func (c *call) param(i int, name string) (json.RawMessage, error) {
	if i >= len(c.params) || isNull(c.params[i]) {
		return nil, &ethereum.ParamError{Field: fmt.Sprintf("params[%d] (%s)", i, name), Reason: "missing"}
	}
	return c.params[i], nil
}

func isNull(raw json.RawMessage) bool { return strings.TrimSpace(string(raw)) == "null" }

func (c *call) address(i int, name string) (common.Address, error) {
	raw, err := c.param(i, name)
	if err != nil {
		return common.Address{}, err
	}
	return ethereum.Address20(fmt.Sprintf("params[%d] (%s)", i, name), raw)
}

func (c *call) hexBytes(i int, name string) ([]byte, error) {
	raw, err := c.param(i, name)
	if err != nil {
		return nil, err
	}
	return ethereum.HexBytes(fmt.Sprintf("params[%d] (%s)", i, name), raw)
}

// invalid is a malformed parameter as a pipeline outcome.
func invalid(err error) *pipeline.Error {
	return pipeline.Wrap(pipeline.Malformed, pipeline.RuleRequest, err)
}

// reject counts a request refused before its key was known.
func (h *Handler) reject(c *call, e *pipeline.Error) error {
	h.p.Reject(pipeline.Ethereum, c.caller, e)
	return e
}

// identify finds the Ethereum key for addr and starts the pipeline request.
// Keys without an ethereum section are not visible; an unknown address is
// rejected as an unknown account.
//
// A key whose clients do not list the caller answers as an unknown account
// too (the caller learns nothing about it, not even from how its request is
// refused), with an audit line that says why.
func (h *Handler) identify(ctx context.Context, c *call, addr common.Address, kind string) (*pipeline.Request, error) {
	ring := h.opts.Ring()
	if ring != nil {
		if k, ok := ring.ByAddress(addr.Hex()); ok && k.Ethereum != nil {
			req := &pipeline.Request{Chain: pipeline.Ethereum, Caller: c.caller, Key: k, Start: c.start,
				Method: c.method, Address: addr.Hex(), Kind: kind, NotFound: unknownAccount, Limits: k.Ethereum.Limits()}
			if !k.Serves(c.caller.IDs) {
				return nil, h.decline(ctx, req, pipeline.Fail(pipeline.UnknownKey, pipeline.RuleClients, unknownAccount))
			}
			return req, nil
		}
	}
	return nil, h.reject(c, pipeline.Fail(pipeline.UnknownKey, pipeline.RuleKey, unknownAccount))
}

const unknownAccount = "unknown account"

// decline records a decision about an identified key that failed before signing.
func (h *Handler) decline(ctx context.Context, req *pipeline.Request, e *pipeline.Error) error {
	return h.p.Decline(ctx, req, e)
}

// sign runs the pipeline and returns r||s||v (v 0/1).
func (h *Handler) sign(ctx context.Context, req *pipeline.Request) ([]byte, error) {
	req.Recoverable = true
	res, err := h.p.Sign(ctx, req)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 65)
	copy(out, res.Sig)
	out[64] = res.RecID
	return out, nil
}

func (h *Handler) ethAccounts(_ context.Context, c *call) (any, error) {
	out := []string{}
	if ring := h.opts.Ring(); ring != nil {
		for _, k := range ring.Keys() {
			if k.Ethereum != nil && k.EthAddress != "" && k.Serves(c.caller.IDs) {
				out = append(out, k.EthAddress)
			}
		}
	}
	return out, nil
}

func (h *Handler) ethChainID(ctx context.Context, c *call) (any, error) {
	if h.upstream != nil {
		return h.upstream.forward(ctx, c.method, c.raw)
	}
	if h.chainID == nil {
		return nil, &Error{Code: CodeMethodNotFound, Message: "eth_chainId: no ethereum.chain_id configured and no upstream"}
	}
	return (*hexutil.Big)(h.chainID), nil
}

// signMessage signs an EIP-191 personal message for eth_sign, personal_sign
// and account_signData text/plain.
func (h *Handler) signMessage(ctx context.Context, c *call, addr common.Address, msg []byte) ([]byte, error) {
	req, err := h.identify(ctx, c, addr, KindMessage)
	if err != nil {
		return nil, err
	}
	k := req.Key
	req.Payload = msg
	req.Check = k.Ethereum.CheckMessage
	req.Digest = ethereum.PersonalHash(msg)
	return h.sign(ctx, req)
}

func (h *Handler) ethSign(ctx context.Context, c *call) (any, error) {
	return h.personal(ctx, c, 0, 1)
}

func (h *Handler) personalSign(ctx context.Context, c *call) (any, error) {
	return h.personal(ctx, c, 1, 0)
}

func (h *Handler) personal(ctx context.Context, c *call, addrAt, dataAt int) (any, error) {
	addr, err := c.address(addrAt, "address")
	if err != nil {
		return nil, h.reject(c, invalid(err))
	}
	msg, err := c.hexBytes(dataAt, "data")
	if err != nil {
		return nil, h.reject(c, invalid(err))
	}
	sig, err := h.signMessage(ctx, c, addr, msg)
	if err != nil {
		return nil, err
	}
	return hexutil.Bytes(ethereum.EthV(sig)), nil
}

// signedTx is a signed transaction.
type signedTx struct {
	tx  *types.Transaction
	raw []byte
}

// signTx runs the pipeline for transaction arguments. fill, when set, fills
// missing fields from the node after a first policy check.
func (h *Handler) signTx(ctx context.Context, c *call, fill func(context.Context, *ethereum.TxArgs) error) (*signedTx, error) {
	raw, err := c.param(0, "transaction")
	if err != nil {
		return nil, h.reject(c, invalid(err))
	}
	args, err := ethereum.ParseTxArgs("params[0]", raw)
	if err != nil {
		return nil, h.reject(c, invalid(err))
	}
	if args.From == nil {
		return nil, h.reject(c, invalid(&ethereum.ParamError{Field: "params[0].from", Reason: "missing"}))
	}
	req, err := h.identify(ctx, c, *args.From, KindTransaction)
	if err != nil {
		return nil, err
	}
	k := req.Key
	if args.To != nil {
		req.To = args.To.Hex()
	}
	if args.Value != nil {
		req.Value = args.Value.String()
	}
	if fill != nil {
		// Refuse what the policy forbids before the node hears of it.
		if err := k.Ethereum.CheckCall(args.To, args.Value, args.Data); err != nil {
			return nil, h.decline(ctx, req, pipeline.PolicyError(err))
		}
		if err := fill(ctx, args); err != nil {
			return nil, h.declineUpstream(ctx, req, err)
		}
	}
	tx, chainID, err := args.Transaction(h.chainID)
	if err != nil {
		return nil, h.decline(ctx, req, invalid(err))
	}
	req.ChainID = chainID.String()
	req.Value = tx.Value().String()
	req.Check = func() error { return k.Ethereum.CheckTx(tx, chainID) }
	req.Spend = func() (limits.Spend, error) { return k.Ethereum.SpendTx(tx) }
	req.Digest = ethereum.TxDigest(tx, chainID)
	if k.AuditPayload {
		if b, err := tx.MarshalBinary(); err == nil {
			req.Payload = b
		}
	}
	sig, err := h.sign(ctx, req)
	if err != nil {
		return nil, err
	}
	signed, err := ethereum.SignTx(tx, chainID, sig)
	if err != nil {
		return nil, err
	}
	bin, err := signed.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("ethereum: encode signed transaction: %w", err)
	}
	return &signedTx{tx: signed, raw: bin}, nil
}

// declineUpstream records a transaction the node could not fill. The
// client gets the node's own error when it sent one.
func (h *Handler) declineUpstream(ctx context.Context, req *pipeline.Request, err error) error {
	var pe *ethereum.ParamError
	var node *Error
	switch {
	case errors.As(err, &pe):
		return h.decline(ctx, req, invalid(err))
	case errors.As(err, &node):
		_ = h.decline(ctx, req, &pipeline.Error{Class: pipeline.Unavailable, Rule: pipeline.RuleUpstream, Msg: "the node refused to fill the transaction: " + node.Message, Err: err})
		return node
	}
	return h.decline(ctx, req, &pipeline.Error{Class: pipeline.Unavailable, Rule: pipeline.RuleUpstream, Msg: "upstream node unavailable: nothing signed", Err: err})
}

func (h *Handler) ethSignTransaction(ctx context.Context, c *call) (any, error) {
	s, err := h.signTx(ctx, c, nil)
	if err != nil {
		return nil, err
	}
	return hexutil.Bytes(s.raw), nil
}

// signTransactionResult is clef's account_signTransaction answer.
type signTransactionResult struct {
	Raw hexutil.Bytes      `json:"raw"`
	Tx  *types.Transaction `json:"tx"`
}

func (h *Handler) accountSignTransaction(ctx context.Context, c *call) (any, error) {
	s, err := h.signTx(ctx, c, nil)
	if err != nil {
		return nil, err
	}
	return signTransactionResult{Raw: s.raw, Tx: s.tx}, nil
}

// signTypedData runs the pipeline for EIP-712 typed data. The digest is
// computed only once the policy allowed the domain.
func (h *Handler) signTypedData(ctx context.Context, c *call, addr common.Address, field string, td *apitypes.TypedData) ([]byte, error) {
	req, err := h.identify(ctx, c, addr, KindTypedData)
	if err != nil {
		return nil, err
	}
	k := req.Key
	if td.Domain.ChainId != nil {
		req.ChainID = (*big.Int)(td.Domain.ChainId).String()
	}
	req.To = td.Domain.VerifyingContract
	req.Check = func() error { return k.Ethereum.CheckTypedData(td.Domain) }
	req.Hash = func() ([]byte, error) {
		d, err := ethereum.TypedDataHash(field, td)
		if err != nil {
			return nil, invalid(err)
		}
		return d, nil
	}
	if k.AuditPayload {
		if b, err := json.Marshal(td); err == nil {
			req.Payload = b
		}
	}
	return h.sign(ctx, req)
}

func (h *Handler) ethSignTypedData(ctx context.Context, c *call) (any, error) {
	addr, err := c.address(0, "address")
	if err != nil {
		return nil, h.reject(c, invalid(err))
	}
	raw, err := c.param(1, "typedData")
	if err != nil {
		return nil, h.reject(c, invalid(err))
	}
	td, err := ethereum.ParseTypedData("params[1] (typedData)", raw)
	if err != nil {
		return nil, h.reject(c, invalid(err))
	}
	sig, err := h.signTypedData(ctx, c, addr, "params[1] (typedData)", td)
	if err != nil {
		return nil, err
	}
	return hexutil.Bytes(ethereum.EthV(sig)), nil
}

func (h *Handler) accountSignData(ctx context.Context, c *call) (any, error) {
	raw, err := c.param(0, "contentType")
	if err != nil {
		return nil, h.reject(c, invalid(err))
	}
	var ct string
	if err := json.Unmarshal(raw, &ct); err != nil {
		return nil, h.reject(c, invalid(&ethereum.ParamError{Field: "params[0] (contentType)", Reason: "want a string"}))
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, h.reject(c, invalid(&ethereum.ParamError{Field: "params[0] (contentType)", Reason: "not a media type"}))
	}
	addr, err := c.address(1, "address")
	if err != nil {
		return nil, h.reject(c, invalid(err))
	}
	data, err := c.param(2, "data")
	if err != nil {
		return nil, h.reject(c, invalid(err))
	}
	const field = "params[2] (data)"
	switch mt {
	case accounts.MimetypeTextPlain:
		msg, err := ethereum.HexBytes(field, data)
		if err != nil {
			return nil, h.reject(c, invalid(err))
		}
		sig, err := h.signMessage(ctx, c, addr, msg)
		if err != nil {
			return nil, err
		}
		return hexutil.Bytes(ethereum.EthV(sig)), nil
	case accounts.MimetypeClique:
		hdr, err := ethereum.HexBytes(field, data)
		if err != nil {
			return nil, h.reject(c, invalid(err))
		}
		req, err := h.identify(ctx, c, addr, KindCliqueHeader)
		if err != nil {
			return nil, err
		}
		req.Check = req.Key.Ethereum.CheckCliqueHeader
		req.Hash = func() ([]byte, error) {
			d, err := ethereum.CliqueHeaderHash(field, hdr)
			if err != nil {
				return nil, invalid(err)
			}
			return d, nil
		}
		sig, err := h.sign(ctx, req)
		if err != nil {
			return nil, err
		}
		return hexutil.Bytes(sig), nil // clique wants v 0/1
	case accounts.MimetypeTypedData:
		// The typed data as an object, a JSON string, or hex of the JSON.
		if s := strings.TrimSpace(string(data)); strings.HasPrefix(s, `"0x`) {
			b, err := ethereum.HexBytes(field, data)
			if err != nil {
				return nil, h.reject(c, invalid(err))
			}
			data = b
		}
		td, err := ethereum.ParseTypedData(field, data)
		if err != nil {
			return nil, h.reject(c, invalid(err))
		}
		sig, err := h.signTypedData(ctx, c, addr, field, td)
		if err != nil {
			return nil, err
		}
		return hexutil.Bytes(ethereum.EthV(sig)), nil
	}
	return nil, h.reject(c, invalid(&ethereum.ParamError{Field: "params[0] (contentType)",
		Reason: fmt.Sprintf("unsupported content type %q (text/plain, application/x-clique-header, data/typed)", truncate(ct))}))
}

func (h *Handler) ethSignAuthorization(ctx context.Context, c *call) (any, error) {
	addr, err := c.address(0, "address")
	if err != nil {
		return nil, h.reject(c, invalid(err))
	}
	raw, err := c.param(1, "authorization")
	if err != nil {
		return nil, h.reject(c, invalid(err))
	}
	args, err := ethereum.ParseAuthorization("params[1]", raw)
	if err != nil {
		return nil, h.reject(c, invalid(err))
	}
	req, err := h.identify(ctx, c, addr, KindAuthorization)
	if err != nil {
		return nil, err
	}
	k := req.Key
	auth := args.Unsigned()
	req.ChainID = auth.ChainID.Dec()
	req.To = auth.Address.Hex()
	req.Check = func() error { return k.Ethereum.CheckAuthorization(&auth) }
	req.Digest = ethereum.AuthorizationHash(auth)
	sig, err := h.sign(ctx, req)
	if err != nil {
		return nil, err
	}
	return ethereum.WithSignature(auth, sig), nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// Code is the JSON-RPC error code of an outcome (0 for a signature).
func Code(c pipeline.Class, r pipeline.Rule) int {
	switch c {
	case pipeline.Signed:
		return 0
	case pipeline.Malformed:
		return CodeInvalidParams
	case pipeline.TooLarge:
		return CodeInvalidRequest
	case pipeline.Unauthenticated:
		return CodeUnauthorized
	case pipeline.Refused, pipeline.Conflict:
		if r == RuleTokens || r == RuleOrigin {
			return CodeUnauthorized
		}
		return CodeRefused
	case pipeline.UnknownKey, pipeline.Unavailable, pipeline.BackendFailed:
		return CodeServer
	}
	return CodeInternal
}

// Codes is the Ethereum transport's table from outcome to JSON-RPC code.
func Codes() map[pipeline.Chain]func(pipeline.Class, pipeline.Rule) int {
	return map[pipeline.Chain]func(pipeline.Class, pipeline.Rule) int{pipeline.Ethereum: Code}
}

// Rules of the Ethereum transport.
const (
	RuleTokens pipeline.Rule = "ethereum.tokens_file" // bearer token missing or wrong
	RuleOrigin pipeline.Rule = "ethereum.origin"      // a browser request
)

// toError maps an error to the JSON-RPC error the client sees. Details of
// backend failures went to the log in the pipeline, not to the client.
func (h *Handler) toError(c *call, err error) *Error {
	var rpcErr *Error
	var pe *pipeline.Error
	switch {
	case errors.As(err, &rpcErr):
		return rpcErr
	case errors.As(err, &pe):
		return &Error{Code: Code(pe.Class, pe.Rule), Message: pe.Msg}
	case errors.Is(err, errUpstream):
		return &Error{Code: CodeServer, Message: err.Error()}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: CodeServer, Message: "request cancelled or timed out"}
	}
	h.log.Error("ethereum: internal error", "method", c.method, "err", err)
	return &Error{Code: CodeInternal, Message: "internal error"}
}
