package rpc

import (
	"context"
	"encoding/hex"
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

	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/chains/ethereum"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/signer"
)

// Errors the handler returns to clients (besides *ethereum.ParamError and
// *policy.Refusal).
var (
	// ErrUnknownAccount is returned for an address keyward has no Ethereum key for.
	ErrUnknownAccount = errors.New("unknown account")
	// ErrAuditUnavailable means the decision could not be recorded; nothing was signed.
	ErrAuditUnavailable = errors.New("audit log unavailable; nothing was signed")
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

func (h *Handler) newRecord(c *call, kind string) *audit.Record {
	return &audit.Record{Chain: "ethereum", Client: c.client, Auth: c.auth, Method: c.method, Kind: kind}
}

// key finds the Ethereum key for addr. Keys without an ethereum section are
// not visible.
func (h *Handler) key(addr common.Address, rec *audit.Record) (*keyring.Key, error) {
	rec.Address = addr.Hex()
	ring := h.opts.Ring()
	if ring == nil {
		return nil, ErrUnknownAccount
	}
	k, ok := ring.ByAddress(addr.Hex())
	if !ok || k.Ethereum == nil {
		return nil, ErrUnknownAccount
	}
	rec.Key = k.Name
	return k, nil
}

func (h *Handler) pub65(k *keyring.Key) ([]byte, error) {
	id := string(k.Pub.Bytes)
	if v, ok := h.pubs.Load(id); ok {
		return v.([]byte), nil
	}
	p, err := ethereum.UncompressedKey(k.Pub)
	if err != nil {
		return nil, err
	}
	h.pubs.Store(id, p)
	return p, nil
}

// decide writes the audit record of a decision: signed when err is nil,
// refused for a policy refusal, error otherwise. It is the one place where
// Ethereum decisions are recorded. It returns err, or ErrAuditUnavailable
// when a signing decision could not be recorded (the signature is then
// withheld).
func (h *Handler) decide(ctx context.Context, rec *audit.Record, err error) error {
	var ref *policy.Refusal
	switch {
	case err == nil:
		rec.Outcome = audit.Signed
	case errors.As(err, &ref):
		rec.Outcome = audit.Refused
		rec.Rule = ref.Rule
		rec.Reason = ref.Reason
		rec.Status = CodeRefused
	default:
		rec.Outcome = audit.Failed
		e := h.toError(nil, err)
		rec.Status = e.Code
		rec.Reason = e.Message
	}
	if lerr := h.opts.Audit.Log(context.WithoutCancel(ctx), rec); lerr != nil {
		h.log.Error("ethereum: audit log write failed", "method", rec.Method, "key", rec.Key, "outcome", rec.Outcome, "err", lerr)
		if err == nil {
			return fmt.Errorf("%w: %v", ErrAuditUnavailable, lerr)
		}
	}
	if err != nil {
		h.log.Info("ethereum: not signed", "method", rec.Method, "key", rec.Key, "outcome", rec.Outcome, "rule", rec.Rule, "reason", rec.Reason)
	}
	return err
}

// sign runs the tail of the pipeline for an accepted or refused request:
// policy verdict, sign the digest, audit. It returns r||s||v (v 0/1).
func (h *Handler) sign(ctx context.Context, rec *audit.Record, k *keyring.Key, verdict error, digest []byte) ([]byte, error) {
	if digest != nil {
		rec.Digest = hex.EncodeToString(digest)
	}
	if verdict != nil {
		return nil, h.decide(ctx, rec, verdict)
	}
	pub, err := h.pub65(k)
	if err != nil {
		return nil, h.decide(ctx, rec, err)
	}
	sig, err := ethereum.Sign(ctx, k.Signer, pub, digest)
	if err != nil {
		return nil, h.decide(ctx, rec, err)
	}
	if err := h.decide(ctx, rec, nil); err != nil {
		return nil, err
	}
	return sig, nil
}

func (h *Handler) ethAccounts(_ context.Context, _ *call) (any, error) {
	out := []string{}
	if ring := h.opts.Ring(); ring != nil {
		for _, k := range ring.Keys() {
			if k.Ethereum != nil && k.EthAddress != "" {
				out = append(out, k.EthAddress)
			}
		}
	}
	return out, nil
}

func (h *Handler) accountList(ctx context.Context, c *call) (any, error) {
	return h.ethAccounts(ctx, c)
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
	rec := h.newRecord(c, KindMessage)
	k, err := h.key(addr, rec)
	if err != nil {
		return nil, h.decide(ctx, rec, err)
	}
	verdict := k.Ethereum.CheckMessage()
	if k.AuditPayload {
		rec.Payload = hex.EncodeToString(msg)
	}
	return h.sign(ctx, rec, k, verdict, ethereum.PersonalHash(msg))
}

func (h *Handler) ethSign(ctx context.Context, c *call) (any, error) {
	addr, msg, err := twoParams(c, 0, 1)
	if err != nil {
		return nil, h.decide(ctx, h.newRecord(c, KindMessage), err)
	}
	sig, err := h.signMessage(ctx, c, addr, msg)
	if err != nil {
		return nil, err
	}
	return hexutil.Bytes(ethereum.EthV(sig)), nil
}

func (h *Handler) personalSign(ctx context.Context, c *call) (any, error) {
	addr, msg, err := twoParams(c, 1, 0)
	if err != nil {
		return nil, h.decide(ctx, h.newRecord(c, KindMessage), err)
	}
	sig, err := h.signMessage(ctx, c, addr, msg)
	if err != nil {
		return nil, err
	}
	return hexutil.Bytes(ethereum.EthV(sig)), nil
}

func twoParams(c *call, addrAt, dataAt int) (common.Address, []byte, error) {
	addr, err := c.address(addrAt, "address")
	if err != nil {
		return common.Address{}, nil, err
	}
	msg, err := c.hexBytes(dataAt, "data")
	if err != nil {
		return common.Address{}, nil, err
	}
	return addr, msg, nil
}

// signedTx is a signed transaction and the chain id it was signed for.
type signedTx struct {
	tx  *types.Transaction
	raw []byte
}

// signTx runs the pipeline for transaction arguments. fill, when set, fills
// missing fields from the node after a first policy check.
func (h *Handler) signTx(ctx context.Context, c *call, fill func(context.Context, *ethereum.TxArgs) error) (*signedTx, error) {
	rec := h.newRecord(c, KindTransaction)
	raw, err := c.param(0, "transaction")
	if err != nil {
		return nil, h.decide(ctx, rec, err)
	}
	args, err := ethereum.ParseTxArgs("params[0]", raw)
	if err != nil {
		return nil, h.decide(ctx, rec, err)
	}
	if args.From == nil {
		return nil, h.decide(ctx, rec, &ethereum.ParamError{Field: "params[0].from", Reason: "missing"})
	}
	k, err := h.key(*args.From, rec)
	if err != nil {
		return nil, h.decide(ctx, rec, err)
	}
	if args.To != nil {
		rec.To = args.To.Hex()
	}
	if args.Value != nil {
		rec.Value = args.Value.String()
	}
	if fill != nil {
		// Refuse what the policy forbids before the node hears of it.
		if err := k.Ethereum.CheckCall(args.To, args.Value, args.Data); err != nil {
			return nil, h.decide(ctx, rec, err)
		}
		if err := fill(ctx, args); err != nil {
			return nil, h.decide(ctx, rec, err)
		}
	}
	tx, chainID, err := args.Transaction(h.chainID)
	if err != nil {
		return nil, h.decide(ctx, rec, err)
	}
	rec.ChainID = chainID.String()
	rec.Value = tx.Value().String()
	verdict := k.Ethereum.CheckTx(tx, chainID)
	digest := ethereum.TxDigest(tx, chainID)
	if k.AuditPayload {
		if b, err := tx.MarshalBinary(); err == nil {
			rec.Payload = hex.EncodeToString(b)
		}
	}
	sig, err := h.sign(ctx, rec, k, verdict, digest)
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

// signTypedData runs the pipeline for EIP-712 typed data.
func (h *Handler) signTypedData(ctx context.Context, c *call, rec *audit.Record, addr common.Address, field string, td *apitypes.TypedData) ([]byte, error) {
	k, err := h.key(addr, rec)
	if err != nil {
		return nil, h.decide(ctx, rec, err)
	}
	if td.Domain.ChainId != nil {
		rec.ChainID = (*big.Int)(td.Domain.ChainId).String()
	}
	rec.To = td.Domain.VerifyingContract
	verdict := k.Ethereum.CheckTypedData(td.Domain)
	var digest []byte
	if verdict == nil {
		if digest, err = ethereum.TypedDataHash(field, td); err != nil {
			return nil, h.decide(ctx, rec, err)
		}
	}
	if k.AuditPayload {
		if b, err := json.Marshal(td); err == nil {
			rec.Payload = hex.EncodeToString(b)
		}
	}
	return h.sign(ctx, rec, k, verdict, digest)
}

func (h *Handler) ethSignTypedData(ctx context.Context, c *call) (any, error) {
	rec := h.newRecord(c, KindTypedData)
	addr, err := c.address(0, "address")
	if err != nil {
		return nil, h.decide(ctx, rec, err)
	}
	raw, err := c.param(1, "typedData")
	if err != nil {
		return nil, h.decide(ctx, rec, err)
	}
	td, err := ethereum.ParseTypedData("params[1] (typedData)", raw)
	if err != nil {
		return nil, h.decide(ctx, rec, err)
	}
	sig, err := h.signTypedData(ctx, c, rec, addr, "params[1] (typedData)", td)
	if err != nil {
		return nil, err
	}
	return hexutil.Bytes(ethereum.EthV(sig)), nil
}

func (h *Handler) accountSignTypedData(ctx context.Context, c *call) (any, error) {
	return h.ethSignTypedData(ctx, c)
}

func (h *Handler) accountSignData(ctx context.Context, c *call) (any, error) {
	rec := h.newRecord(c, "")
	raw, err := c.param(0, "contentType")
	if err != nil {
		return nil, h.decide(ctx, rec, err)
	}
	var ct string
	if err := json.Unmarshal(raw, &ct); err != nil {
		return nil, h.decide(ctx, rec, &ethereum.ParamError{Field: "params[0] (contentType)", Reason: "want a string"})
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, h.decide(ctx, rec, &ethereum.ParamError{Field: "params[0] (contentType)", Reason: "not a media type"})
	}
	addr, err := c.address(1, "address")
	if err != nil {
		return nil, h.decide(ctx, rec, err)
	}
	data, err := c.param(2, "data")
	if err != nil {
		return nil, h.decide(ctx, rec, err)
	}
	const field = "params[2] (data)"
	switch mt {
	case accounts.MimetypeTextPlain:
		msg, err := ethereum.HexBytes(field, data)
		if err != nil {
			return nil, h.decide(ctx, h.newRecord(c, KindMessage), err)
		}
		sig, err := h.signMessage(ctx, c, addr, msg)
		if err != nil {
			return nil, err
		}
		return hexutil.Bytes(ethereum.EthV(sig)), nil
	case accounts.MimetypeClique:
		rec.Kind = KindCliqueHeader
		hdr, err := ethereum.HexBytes(field, data)
		if err != nil {
			return nil, h.decide(ctx, rec, err)
		}
		k, err := h.key(addr, rec)
		if err != nil {
			return nil, h.decide(ctx, rec, err)
		}
		verdict := k.Ethereum.CheckCliqueHeader()
		var digest []byte
		if verdict == nil {
			if digest, err = ethereum.CliqueHeaderHash(field, hdr); err != nil {
				return nil, h.decide(ctx, rec, err)
			}
		}
		sig, err := h.sign(ctx, rec, k, verdict, digest)
		if err != nil {
			return nil, err
		}
		return hexutil.Bytes(sig), nil // clique wants v 0/1
	case accounts.MimetypeTypedData:
		rec.Kind = KindTypedData
		// The typed data as an object, a JSON string, or hex of the JSON.
		if s := strings.TrimSpace(string(data)); strings.HasPrefix(s, `"0x`) {
			b, err := ethereum.HexBytes(field, data)
			if err != nil {
				return nil, h.decide(ctx, rec, err)
			}
			data = b
		}
		td, err := ethereum.ParseTypedData(field, data)
		if err != nil {
			return nil, h.decide(ctx, rec, err)
		}
		sig, err := h.signTypedData(ctx, c, rec, addr, field, td)
		if err != nil {
			return nil, err
		}
		return hexutil.Bytes(ethereum.EthV(sig)), nil
	}
	return nil, h.decide(ctx, rec, &ethereum.ParamError{Field: "params[0] (contentType)",
		Reason: fmt.Sprintf("unsupported content type %q (text/plain, application/x-clique-header, data/typed)", truncate(ct))})
}

func (h *Handler) ethSignAuthorization(ctx context.Context, c *call) (any, error) {
	rec := h.newRecord(c, KindAuthorization)
	addr, err := c.address(0, "address")
	if err != nil {
		return nil, h.decide(ctx, rec, err)
	}
	raw, err := c.param(1, "authorization")
	if err != nil {
		return nil, h.decide(ctx, rec, err)
	}
	args, err := ethereum.ParseAuthorization("params[1]", raw)
	if err != nil {
		return nil, h.decide(ctx, rec, err)
	}
	k, err := h.key(addr, rec)
	if err != nil {
		return nil, h.decide(ctx, rec, err)
	}
	auth := args.Unsigned()
	rec.ChainID = auth.ChainID.Dec()
	rec.To = auth.Address.Hex()
	sig, err := h.sign(ctx, rec, k, k.Ethereum.CheckAuthorization(&auth), ethereum.AuthorizationHash(auth))
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

// toError maps an error to the JSON-RPC error the client sees. Details of
// backend failures go to the log, not to the client.
func (h *Handler) toError(c *call, err error) *Error {
	var rpcErr *Error
	var ref *policy.Refusal
	switch {
	case errors.As(err, &rpcErr):
		return rpcErr
	case errors.Is(err, ethereum.ErrInvalidParams):
		return &Error{Code: CodeInvalidParams, Message: err.Error()}
	case errors.As(err, &ref):
		return &Error{Code: CodeRefused, Message: ref.Error()}
	case errors.Is(err, ErrUnknownAccount):
		return &Error{Code: CodeServer, Message: "unknown account"}
	case errors.Is(err, ErrAuditUnavailable), errors.Is(err, audit.ErrUnavailable):
		return &Error{Code: CodeServer, Message: ErrAuditUnavailable.Error()}
	case errors.Is(err, signer.ErrUnavailable):
		if c != nil {
			h.log.Error("ethereum: key backend unavailable", "method", c.method, "err", err)
		}
		return &Error{Code: CodeServer, Message: "key backend unavailable"}
	case errors.Is(err, errUpstream):
		return &Error{Code: CodeServer, Message: err.Error()}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: CodeServer, Message: "request cancelled or timed out"}
	}
	if c != nil {
		h.log.Error("ethereum: internal error", "method", c.method, "err", err)
	}
	return &Error{Code: CodeInternal, Message: "internal error"}
}
