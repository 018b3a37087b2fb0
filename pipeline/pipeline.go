// Package pipeline runs every signing decision of every chain through one path: policy, watermark, backend signature, audit, metrics and log.
package pipeline

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/limits"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/watermark"
)

// Options configure a Pipeline.
type Options struct {
	// Store keeps the high watermarks of consensus requests.
	Store watermark.Store
	// Budgets keeps what each key spent against its rolling limits; nil
	// when no key has limits (a request with limits is then refused).
	Budgets limits.Store
	// Audit gets one record per decision about an identified key and
	// caller, and the summaries of earlier refusals. A signature whose
	// record cannot be written is withheld.
	Audit audit.Logger
	// Log is the operator log.
	Log *slog.Logger
	// Observer counts decisions (metrics); nil: not counted.
	Observer Observer
	// Codes maps an outcome to the status or error code a transport
	// answers with, for the audit line (Tezos: HTTP status, Ethereum:
	// JSON-RPC code). A chain without a table records no status.
	Codes map[Chain]func(Class, Rule) int
	// SummaryInterval is how often, at most, one summary per cause of the
	// requests refused before identification is written (default 1 min).
	SummaryInterval time.Duration
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// Observer receives every decision, for metrics.
type Observer interface {
	// Decision counts one decision about an identified key.
	Decision(chain Chain, key *keyring.Key, kind string, class Class, rule Rule, elapsed time.Duration)
	// Rejected counts one request refused before its key and caller were known.
	Rejected(chain Chain, class Class, rule Rule)
}

// Pipeline is the one signing path. It is safe for concurrent use.
type Pipeline struct {
	opts    Options
	log     *slog.Logger
	summary *summary
}

// New builds a pipeline. Close it to flush pending summaries.
func New(opts Options) *Pipeline {
	if opts.Audit == nil {
		opts.Audit = audit.Discard{}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SummaryInterval <= 0 {
		opts.SummaryInterval = time.Minute
	}
	p := &Pipeline{opts: opts, log: opts.Log}
	p.summary = newSummary(p)
	return p
}

// Close writes the pending summaries and stops the summary timer.
func (p *Pipeline) Close() { p.summary.close() }

// Caller is who sent a request.
type Caller struct {
	Addr string   // remote address
	IDs  []string // identities the caller proved: token name, authorizing key hash, "cert:" + certificate subject
}

// Identity is the caller's identities as one audit field.
func (c Caller) Identity() string { return strings.Join(c.IDs, " ") }

// Mark is the watermark position of a consensus request.
type Mark struct {
	ID    watermark.ID
	Level int64
	Round int64
}

// Request is one decision to make about an identified key. The chain
// handler fills it from the decoded request; the pipeline does the rest.
type Request struct {
	Chain  Chain
	Caller Caller
	Key    *keyring.Key
	// Start is when the request arrived (latency metrics); zero: now.
	Start time.Time

	// Audit fields.
	Method     string // JSON-RPC method
	Address    string // the key's address as the client named it
	Kind       string // request kind (block, attestation, generic, transaction, message, …)
	ChainID    string
	Operations []string
	To, Value  string
	Payload    []byte // written (hex) only when the key's config asks for payloads

	// NotFound is the message an unknown key gets on this transport; a
	// caller the key does not serve (keys.<name>.clients) gets it too.
	NotFound string
	// Check is the key's policy verdict on the request: nil to sign, a
	// *policy.Refusal or an *Error otherwise. It must be set (default deny).
	Check func() error
	// Limits are the key's rolling budgets on this chain; Spend is what the
	// request costs them (nil: one request), asked once Check allowed it.
	// The budgets are debited durably before signing and credited back
	// when nothing is signed.
	Limits []limits.Limit
	Spend  func() (limits.Spend, error)
	// Mark, for consensus requests, is advanced before signing.
	Mark *Mark
	// Digest is what the key signs (32 bytes); with Mark it is also the
	// digest the watermark keeps. When nil, Hash computes it once the
	// policy allowed the request (work a refusal should not cost).
	Digest []byte
	Hash   func() ([]byte, error)
	// Message, for keys that sign whole messages (BLS12-381), is what the
	// key signs under Scheme; Digest is then only what the watermark and
	// the audit line keep.
	Message []byte
	Scheme  signer.BLSScheme
	// ProvePossession asks a BLS key for a proof of possession of ProofOf
	// (nil: its own public key) instead of a signature; such a request has
	// no digest and no mark.
	ProvePossession bool
	ProofOf         []byte
	// Recoverable asks for a secp256k1 signature with its recovery id (Ethereum).
	Recoverable bool
	// Encode turns the signature into the bytes the client gets, which are
	// also stored with the mark for identical retries; nil: the raw signature.
	Encode func(sig []byte) ([]byte, error)
}

// Result is a signature.
type Result struct {
	Sig     []byte // raw signature (r||s, Ed25519); nil for an identical retry
	RecID   byte   // with Recoverable: 0 or 1
	Encoded []byte // Encode(Sig), or the stored signature of an identical retry
	Retry   bool   // an identical retry answered with the stored signature
}

// Sign runs the decision for req: policy, watermark, signature, audit,
// metrics, log. A non-nil error is always an *Error.
func (p *Pipeline) Sign(ctx context.Context, req *Request) (Result, error) {
	start := req.Start
	if start.IsZero() {
		start = p.opts.Now()
	}
	rec := p.record(req)
	res, e := p.decide(ctx, req, rec)
	if e != nil {
		p.finish(ctx, req, rec, e, start)
		return Result{}, e
	}
	rec.Outcome = audit.Signed
	rec.Status = p.code(req.Chain, Signed, RuleNone)
	if err := p.opts.Audit.Log(context.WithoutCancel(ctx), rec); err != nil {
		// Nothing leaves keyward unrecorded.
		e = &Error{Class: Unavailable, Rule: RuleAudit, Msg: "audit log unavailable: signature withheld", Err: err}
		p.report(ctx, req, rec, e, start)
		return Result{}, e
	}
	p.report(ctx, req, rec, nil, start)
	return res, nil
}

// Decline records a decision about an identified key that failed before
// the pipeline's own steps (a payload that does not decode, a node that
// could not fill a transaction) and returns e.
func (p *Pipeline) Decline(ctx context.Context, req *Request, e *Error) error {
	start := req.Start
	if start.IsZero() {
		start = p.opts.Now()
	}
	p.finish(ctx, req, p.record(req), e, start)
	return e
}

// Reject counts a request refused before its key and caller were known
// (malformed envelope, browser origin, missing or wrong authentication,
// unknown key). It writes no audit line of its own: at most one summary
// record and one log line per cause and interval.
func (p *Pipeline) Reject(chain Chain, caller Caller, e *Error) {
	if o := p.opts.Observer; o != nil {
		o.Rejected(chain, e.Class, e.Rule)
	}
	p.summary.add(chain, caller, e)
}

func (p *Pipeline) code(c Chain, class Class, rule Rule) int {
	if f := p.opts.Codes[c]; f != nil {
		return f(class, rule)
	}
	return 0
}

func (p *Pipeline) record(req *Request) *audit.Record {
	rec := &audit.Record{
		Chain: req.Chain.String(), Client: req.Caller.Addr, Auth: req.Caller.Identity(), Method: req.Method,
		Address: req.Address, Kind: req.Kind, ChainID: req.ChainID, Operations: req.Operations, To: req.To, Value: req.Value,
	}
	if req.Key != nil {
		rec.Key = req.Key.Name
		if req.Key.AuditPayload && req.Payload != nil {
			rec.Payload = hex.EncodeToString(req.Payload)
		}
	}
	if req.Mark != nil {
		l, r := req.Mark.Level, req.Mark.Round
		rec.Level, rec.Round = &l, &r
	}
	if req.Digest != nil {
		rec.Digest = hex.EncodeToString(req.Digest)
	}
	return rec
}

func (p *Pipeline) decide(ctx context.Context, req *Request, rec *audit.Record) (Result, *Error) {
	k := req.Key
	if k == nil {
		return Result{}, Fail(Internal, RuleKey, "internal error: no key")
	}
	if !k.Serves(req.Caller.IDs) {
		// The caller learns nothing about the key: the answer is the one an
		// unknown key gets. The audit line says why.
		msg := req.NotFound
		if msg == "" {
			msg = "unknown key"
		}
		return Result{}, &Error{Class: UnknownKey, Rule: RuleClients, Msg: msg}
	}
	if req.Check == nil {
		return Result{}, Fail(Internal, RuleNone, "internal error: no policy check for this request")
	}
	if err := req.Check(); err != nil {
		return Result{}, policyError(err)
	}
	if req.Digest == nil && !req.ProvePossession {
		if req.Hash == nil {
			return Result{}, Fail(Internal, RuleNone, "internal error: nothing to sign")
		}
		d, err := req.Hash()
		if err != nil {
			return Result{}, ErrorOf(err)
		}
		req.Digest = d
		rec.Digest = hex.EncodeToString(d)
	}
	if err := ctx.Err(); err != nil {
		return Result{}, &Error{Class: Unavailable, Rule: RuleRequest, Msg: "request cancelled or timed out: nothing signed", Err: err}
	}
	debit, e := p.debit(ctx, req)
	if e != nil {
		return Result{}, e
	}
	res, e := p.signMarked(ctx, req, rec)
	if e != nil || res.Retry {
		// Nothing new was signed: give the budget back.
		p.credit(ctx, req, debit)
	}
	return res, e
}

// debit charges the request to the key's budgets, durably, before signing.
func (p *Pipeline) debit(ctx context.Context, req *Request) (*limits.Debit, *Error) {
	if len(req.Limits) == 0 {
		return nil, nil
	}
	if p.opts.Budgets == nil {
		return nil, Fail(Unavailable, RuleLimits, "limits store unavailable: nothing signed")
	}
	spend := limits.Spend{Requests: 1}
	if req.Spend != nil {
		s, err := req.Spend()
		if err != nil {
			return nil, policyError(err)
		}
		spend = s
	}
	d, err := p.opts.Budgets.Debit(ctx, req.Key.Name, req.Limits, spend, p.opts.Now())
	if err != nil {
		var ex *limits.ExceededError
		if errors.As(err, &ex) {
			return nil, &Error{Class: Refused, Rule: Rule(ex.Rule), Msg: ex.Error(), Err: err}
		}
		return nil, &Error{Class: Unavailable, Rule: RuleLimits, Msg: "limits store unavailable: nothing signed", Err: err}
	}
	return &d, nil
}

// credit gives back a debit whose request signed nothing.
func (p *Pipeline) credit(ctx context.Context, req *Request, d *limits.Debit) {
	if d == nil {
		return
	}
	if err := p.opts.Budgets.Credit(context.WithoutCancel(ctx), *d); err != nil {
		p.log.Warn("could not give the budget back after nothing was signed; the budget stays debited (safe)", "key", req.Key.Name, "err", err)
	}
}

// signMarked advances the watermark (consensus requests), signs and stores
// the signature with the mark.
func (p *Pipeline) signMarked(ctx context.Context, req *Request, rec *audit.Record) (Result, *Error) {
	k := req.Key
	if m := req.Mark; m != nil {
		if p.opts.Store == nil {
			return Result{}, Fail(Internal, RuleWatermark, "internal error: no watermark store")
		}
		prev, err := p.opts.Store.Advance(ctx, m.ID, m.Level, m.Round, req.Digest)
		if err != nil {
			var refused *watermark.RefusedError
			if errors.As(err, &refused) {
				return Result{}, Wrap(Conflict, RuleWatermark, err)
			}
			return Result{}, &Error{Class: Unavailable, Rule: RuleWatermark, Msg: "watermark store unavailable: nothing signed", Err: err}
		}
		if len(prev) > 0 {
			rec.Reason = "identical retry: stored signature returned"
			return Result{Encoded: prev, Retry: true}, nil
		}
	}
	var res Result
	var err error
	switch {
	case req.ProvePossession:
		if req.Mark != nil {
			return Result{}, Fail(Internal, RuleNone, "internal error: a proof of possession has no watermark")
		}
		res.Sig, err = signer.ProvePossession(ctx, k.Signer, req.ProofOf)
	case req.Message != nil:
		res.Sig, err = signer.SignMessage(ctx, k.Signer, req.Scheme, req.Message)
	case req.Recoverable:
		res.Sig, res.RecID, err = signer.SignDigestRecoverable(ctx, k.Signer, req.Digest)
	default:
		res.Sig, err = signer.SignDigest(ctx, k.Signer, req.Digest)
	}
	if err != nil {
		p.giveBack(ctx, req)
		e := &Error{Class: BackendFailed, Rule: RuleBackend, Msg: "backend failed for key " + k.Name + ": nothing signed", Err: err}
		if errors.Is(err, signer.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			e.Class, e.Msg = Unavailable, "backend unavailable for key "+k.Name+": nothing signed"
		}
		return Result{}, e
	}
	res.Encoded = res.Sig
	if req.Encode != nil {
		if res.Encoded, err = req.Encode(res.Sig); err != nil {
			p.giveBack(ctx, req)
			return Result{}, &Error{Class: Internal, Rule: RuleNone, Msg: "internal error: cannot encode the signature", Err: err}
		}
	}
	if m := req.Mark; m != nil {
		if err := p.opts.Store.SetSignature(ctx, m.ID, m.Level, m.Round, req.Digest, res.Encoded); err != nil {
			p.log.Warn("could not store the signature with its watermark; an identical retry will be signed afresh", "key", k.Name, "err", err)
		}
	}
	return res, nil
}

// giveBack reverts the mark of a request whose signing failed, when the
// store can do so safely (no other request passed on it meanwhile).
func (p *Pipeline) giveBack(ctx context.Context, req *Request) {
	m := req.Mark
	if m == nil {
		return
	}
	if rv, ok := p.opts.Store.(watermark.Reverter); ok {
		if err := rv.Revert(context.WithoutCancel(ctx), m.ID, m.Level, m.Round, req.Digest); err != nil {
			p.log.Warn("could not give the watermark back after a signing failure; the mark stays (safe)", "key", req.Key.Name, "err", err)
		}
	}
}

func policyError(err error) *Error {
	var ref *policy.Refusal
	if errors.As(err, &ref) {
		return &Error{Class: Refused, Rule: Rule(ref.Rule), Msg: ref.Error(), Err: err}
	}
	return ErrorOf(err)
}

// finish records a decision that is not a signature.
func (p *Pipeline) finish(ctx context.Context, req *Request, rec *audit.Record, e *Error, start time.Time) {
	rec.Outcome = e.Class.AuditOutcome()
	rec.Rule = string(e.Rule)
	rec.Reason = e.Msg
	rec.Status = p.code(req.Chain, e.Class, e.Rule)
	if err := p.opts.Audit.Log(context.WithoutCancel(ctx), rec); err != nil {
		p.log.Error("audit log write failed", "chain", req.Chain.String(), "key", rec.Key, "err", err)
	}
	p.report(ctx, req, rec, e, start)
}

// report counts and logs a decision.
func (p *Pipeline) report(ctx context.Context, req *Request, rec *audit.Record, e *Error, start time.Time) {
	class, rule := Signed, RuleNone
	if e != nil {
		class, rule = e.Class, e.Rule
	}
	if o := p.opts.Observer; o != nil {
		o.Decision(req.Chain, req.Key, rec.Kind, class, rule, p.opts.Now().Sub(start))
	}
	level := slog.LevelDebug
	msg := "signed"
	switch class {
	case Signed:
	case Malformed, TooLarge, Unauthenticated, Refused, UnknownKey, Conflict:
		level, msg = slog.LevelWarn, "refused"
	default:
		level, msg = slog.LevelError, "not signed"
	}
	if !p.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 12)
	attrs = append(attrs, slog.String("chain", rec.Chain), slog.String("key", rec.Key), slog.String("address", rec.Address), slog.String("kind", rec.Kind))
	if rec.Method != "" {
		attrs = append(attrs, slog.String("method", rec.Method))
	}
	if rec.Level != nil {
		attrs = append(attrs, slog.Int64("level", *rec.Level), slog.Int64("round", *rec.Round))
	}
	if e != nil {
		attrs = append(attrs, slog.String("rule", string(e.Rule)), slog.String("reason", e.Msg))
		if e.Err != nil && class != Refused && class != Conflict && class != Malformed {
			attrs = append(attrs, slog.String("err", e.Err.Error()))
		}
	} else if rec.Reason != "" {
		attrs = append(attrs, slog.String("reason", rec.Reason))
	}
	attrs = append(attrs, slog.String("client", rec.Client))
	if rec.Auth != "" {
		attrs = append(attrs, slog.String("auth", rec.Auth))
	}
	p.log.LogAttrs(ctx, level, req.Chain.String()+" request "+msg, attrs...)
}
