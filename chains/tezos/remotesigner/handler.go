// Package remotesigner serves the Octez remote-signer HTTP protocol (GET/POST /keys/{pkh}, GET /authorized_keys): it decodes each request and hands the decision to the signing pipeline.
package remotesigner

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/limits"
	"github.com/keyward/keyward/pipeline"
	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/watermark"
)

// DefaultMaxBody caps request bodies (a hex JSON string of a payload).
const DefaultMaxBody = 64 << 10

// Options configure the handler. Ring, Auth and AllowedOrigins are
// functions so a SIGHUP reload can swap them without a restart.
type Options struct {
	Ring     func() *keyring.Ring
	Auth     func() *Authorizer // nil or returning nil: no authentication required
	Pipeline *pipeline.Pipeline
	Log      *slog.Logger
	MaxBody  int64
	// ClientIdentity, when set, returns an identity for the caller from the
	// request (e.g. a TLS client certificate subject).
	ClientIdentity func(r *http.Request) string
	// ListKnownKeys, when it returns true, serves GET /known_keys (Octez's
	// --allow-list-known-keys); otherwise it is refused.
	ListKnownKeys func() bool
	// AllowedOrigins lists browser origins allowed to POST. Browsers send an
	// Origin header with every cross-site POST (Octez, Taquito under Node
	// and curl send none): without this rule any web page the operator
	// opens could ask for signatures, or raise a baker's watermarks.
	AllowedOrigins func() []string
}

// Handler is the Tezos remote-signer HTTP handler.
type Handler struct {
	opts Options
	p    *pipeline.Pipeline
	mux  *http.ServeMux
}

// New builds the handler.
func New(opts Options) *Handler {
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Auth == nil {
		opts.Auth = func() *Authorizer { return nil }
	}
	if opts.AllowedOrigins == nil {
		opts.AllowedOrigins = func() []string { return nil }
	}
	if opts.ListKnownKeys == nil {
		opts.ListKnownKeys = func() bool { return false }
	}
	if opts.Pipeline == nil {
		opts.Pipeline = pipeline.New(pipeline.Options{Log: opts.Log, Codes: Codes()})
	}
	h := &Handler{opts: opts, p: opts.Pipeline, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /keys/{pkh}", h.getKey)
	h.mux.HandleFunc("POST /keys/{pkh}", h.sign)
	h.mux.HandleFunc("GET /authorized_keys", h.authorizedKeys)
	h.mux.HandleFunc("GET /bls_prove_possession/{pkh}", h.provePossession)
	h.mux.HandleFunc("GET /known_keys", h.knownKeys)
	for _, p := range []string{"/keys/{pkh}", "/authorized_keys", "/bls_prove_possession/{pkh}", "/known_keys"} {
		h.mux.HandleFunc(p, h.methodNotAllowed)
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+truncate(r.URL.Path, 100))
	})
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusMethodNotAllowed, "method "+truncate(r.Method, 20)+" not allowed on "+truncate(r.URL.Path, 100))
}

// Codes is the Tezos transport's table from outcome to HTTP status.
func Codes() map[pipeline.Chain]func(pipeline.Class, pipeline.Rule) int {
	return map[pipeline.Chain]func(pipeline.Class, pipeline.Rule) int{pipeline.Tezos: Status}
}

// statuses is the Tezos transport's one table from outcome class to HTTP
// status (Octez error traces carry them; see README).
var statuses = map[pipeline.Class]int{
	pipeline.Signed:          http.StatusOK,
	pipeline.Malformed:       http.StatusBadRequest,
	pipeline.TooLarge:        http.StatusRequestEntityTooLarge,
	pipeline.Unauthenticated: http.StatusUnauthorized,
	pipeline.Refused:         http.StatusForbidden,
	pipeline.UnknownKey:      http.StatusNotFound,
	pipeline.Conflict:        http.StatusConflict,
	pipeline.Unavailable:     http.StatusServiceUnavailable,
	pipeline.BackendFailed:   http.StatusBadGateway,
	pipeline.Internal:        http.StatusInternalServerError,
}

// Status is the HTTP status of an outcome.
func Status(c pipeline.Class, _ pipeline.Rule) int {
	if s, ok := statuses[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// writeError answers in Octez's error-trace shape.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode([]errorItem{{Kind: "temporary", ID: "failure", Msg: msg}})
}

type errorItem struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	Msg  string `json:"msg"`
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (h *Handler) getKey(w http.ResponseWriter, r *http.Request) {
	pkh := r.PathValue("pkh")
	if _, _, err := tezos.ParsePublicKeyHash(pkh); err != nil {
		writeError(w, http.StatusBadRequest, "invalid public key hash: want a tz address")
		return
	}
	k, ok := h.opts.Ring().ByPKH(pkh)
	if !ok {
		writeError(w, http.StatusNotFound, "no key "+pkh+" on this signer")
		return
	}
	writeJSON(w, map[string]string{"public_key": k.TezosPub})
}

func (h *Handler) authorizedKeys(w http.ResponseWriter, r *http.Request) {
	a := h.opts.Auth()
	if a == nil {
		writeJSON(w, struct{}{})
		return
	}
	writeJSON(w, map[string][]string{"authorized_keys": a.PKHs()})
}

// knownKeys serves GET /known_keys when tezos.list_known_keys allows it.
func (h *Handler) knownKeys(w http.ResponseWriter, r *http.Request) {
	if !h.opts.ListKnownKeys() {
		h.reject(w, h.caller(r), pipeline.Fail(pipeline.Refused, "tezos.list_known_keys", "List known keys request not allowed."))
		return
	}
	caller := h.caller(r)
	keys := []string{}
	for _, k := range h.opts.Ring().Keys() {
		if k.Serves(caller.IDs) {
			keys = append(keys, k.PKH)
		}
	}
	writeJSON(w, map[string][]string{"known_keys": keys})
}

// provePossession serves GET /bls_prove_possession/{pkh}[?bls_pk=BLpk…]:
// a BLS proof of possession of the key's own public key, or of bls_pk,
// when the key's tezos.allow_proof_of_possession allows it. As in Octez,
// the request carries no authentication (octez-client sends none for it);
// the per-key rule, off by default, is what guards it.
func (h *Handler) provePossession(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	caller := h.caller(r)
	if origins, browser := r.Header["Origin"]; browser && !h.originsAllowed(origins) {
		h.reject(w, caller, pipeline.Fail(pipeline.Refused, "tezos.allowed_origins",
			"requests from a browser (Origin header) are refused unless every origin is listed in tezos.allowed_origins"))
		return
	}
	pkh := r.PathValue("pkh")
	k, known := h.opts.Ring().ByPKH(pkh)
	if !known {
		if _, _, err := tezos.ParsePublicKeyHash(pkh); err != nil {
			h.reject(w, caller, pipeline.Fail(pipeline.Malformed, pipeline.RuleRequest, "invalid public key hash: want a tz address"))
			return
		}
		h.reject(w, caller, pipeline.Fail(pipeline.UnknownKey, pipeline.RuleKey, "%s", notFound(pkh)))
		return
	}
	// The request carries no authentication: until the key's rule allows
	// a proof, the caller is a stranger and its refusals are counted and
	// summarized, not written one audit line each (a stranger must not be
	// able to fill the audit disk). A proof produced is audited.
	refuse := func(e *pipeline.Error) { h.reject(w, caller, e) }
	if !k.Serves(caller.IDs) {
		refuse(pipeline.Fail(pipeline.UnknownKey, pipeline.RuleClients, "%s", notFound(pkh)))
		return
	}
	if err := k.Tezos.CheckProofOfPossession(); err != nil {
		refuse(pipeline.PolicyError(err))
		return
	}
	if k.Pub.Curve != signer.BLS12381 {
		refuse(pipeline.Fail(pipeline.Malformed, pipeline.RuleRequest, "Proof of possession can only be requested for BLS keys."))
		return
	}
	req := &pipeline.Request{Chain: pipeline.Tezos, Caller: caller, Key: k, Start: start, Address: pkh, Kind: "bls_prove_possession", ProvePossession: true, NotFound: notFound(pkh)}
	if v := r.URL.Query().Get("bls_pk"); v != "" {
		pub, err := tezos.ParsePublicKey(v)
		if err != nil || pub.Curve != signer.BLS12381 {
			refuse(pipeline.Fail(pipeline.Malformed, pipeline.RuleRequest, "bls_pk is not a BLS12-381 public key (BLpk…)"))
			return
		}
		req.ProofOf, req.To = pub.Bytes, v
	}
	req.Check = k.Tezos.CheckProofOfPossession
	req.Encode = func(sig []byte) ([]byte, error) {
		s, err := tezos.EncodeSignature(signer.BLS12381, sig)
		return []byte(s), err
	}
	res, err := h.p.Sign(r.Context(), req)
	if err != nil {
		e := pipeline.ErrorOf(err)
		writeError(w, Status(e.Class, e.Rule), e.Msg)
		return
	}
	w.Header()["Content-Type"] = jsonType
	_, _ = w.Write([]byte(`{"bls_prove_possession":"` + string(res.Encoded) + "\"}\n"))
}

// notFound is the answer to a key this signer does not have, or does not
// serve to the caller.
func notFound(pkh string) string { return "no key " + pkh + " on this signer" }

func (h *Handler) caller(r *http.Request) pipeline.Caller {
	c := pipeline.Caller{Addr: r.RemoteAddr}
	if h.opts.ClientIdentity != nil {
		if id := h.opts.ClientIdentity(r); id != "" {
			c.IDs = append(c.IDs, id)
		}
	}
	return c
}

// reject answers a request refused before its key and caller were known.
func (h *Handler) reject(w http.ResponseWriter, caller pipeline.Caller, e *pipeline.Error) {
	h.p.Reject(pipeline.Tezos, caller, e)
	writeError(w, Status(e.Class, e.Rule), e.Msg)
}

func (h *Handler) sign(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	caller := h.caller(r)
	pkh := r.PathValue("pkh")
	// The key is looked up first (a known key has its binary address at
	// hand), but an unknown key is only answered after authentication, so
	// that strangers cannot list the keys.
	k, known := h.opts.Ring().ByPKH(pkh)
	var target []byte
	if known {
		target = k.PKHBytes
	} else {
		var err error
		if _, target, err = tezos.BinaryPKH(pkh); err != nil {
			h.reject(w, caller, pipeline.Fail(pipeline.Malformed, pipeline.RuleRequest, "invalid public key hash: want a tz address"))
			return
		}
	}
	q := r.URL.Query()
	// version selects the signature scheme of tz4 keys; for the other
	// curves it must still be a version Octez knows.
	scheme, verr := tezos.BLSSchemeForVersion(q.Get("version"))
	if errors.Is(verr, tezos.ErrBadVersion) {
		h.reject(w, caller, pipeline.Wrap(pipeline.Malformed, pipeline.RuleRequest, verr))
		return
	}
	if origins, browser := r.Header["Origin"]; browser && !h.originsAllowed(origins) {
		h.reject(w, caller, pipeline.Fail(pipeline.Refused, "tezos.allowed_origins",
			"requests from a browser (Origin header) are refused unless every origin is listed in tezos.allowed_origins"))
		return
	}
	payload, e := readPayload(r, h.opts.MaxBody)
	if e != nil {
		h.reject(w, caller, e)
		return
	}
	if a := h.opts.Auth(); a != nil {
		who, err := a.Check(q.Get("authentication"), target, payload)
		if err != nil {
			class := pipeline.Refused
			if errors.Is(err, ErrAuthMissing) {
				class = pipeline.Unauthenticated
			}
			h.reject(w, caller, pipeline.Wrap(class, "tezos.authorized_keys", err))
			return
		}
		caller.IDs = append(caller.IDs, who)
	}
	if !known {
		h.reject(w, caller, pipeline.Fail(pipeline.UnknownKey, pipeline.RuleKey, "%s", notFound(pkh)))
		return
	}
	req := &pipeline.Request{Chain: pipeline.Tezos, Caller: caller, Key: k, Start: start, Address: pkh, Payload: payload, NotFound: notFound(pkh)}
	if !k.Serves(caller.IDs) {
		// Not this caller's key: the answer an unknown key gets, before
		// anything about the payload is said; the audit line says why.
		e := pipeline.ErrorOf(h.p.Decline(r.Context(), req, pipeline.Fail(pipeline.UnknownKey, pipeline.RuleClients, "%s", notFound(pkh))))
		writeError(w, Status(e.Class, e.Rule), e.Msg)
		return
	}
	if k.Pub.Curve == signer.BLS12381 {
		if verr != nil { // version 0: no BLS signatures
			e := pipeline.ErrorOf(h.p.Decline(r.Context(), req, pipeline.Wrap(pipeline.Malformed, pipeline.RuleRequest, verr)))
			writeError(w, Status(e.Class, e.Rule), e.Msg)
			return
		}
		req.Message, req.Scheme = payload, scheme
	}
	sig, e := h.decide(r.Context(), req)
	if e != nil {
		writeError(w, Status(e.Class, e.Rule), e.Msg)
		return
	}
	writeSignature(w, sig)
}

// decide decodes the payload of an identified request and runs the pipeline.
func (h *Handler) decide(ctx context.Context, req *pipeline.Request) ([]byte, *pipeline.Error) {
	payload, k := req.Payload, req.Key
	op, err := tezos.ParseRequest(payload)
	if err != nil {
		e := pipeline.Wrap(pipeline.Malformed, pipeline.RuleDecode, err)
		if errors.Is(err, tezos.ErrLegacyMagic) {
			e = pipeline.Wrap(pipeline.Refused, "tezos.magic", err)
		}
		return nil, pipeline.ErrorOf(h.p.Decline(ctx, req, e))
	}
	req.Kind = string(op.Kind)
	req.ChainID = op.ChainID
	if n := len(op.Operations); n > 0 {
		req.Operations = make([]string, n)
		for i := range op.Operations {
			req.Operations[i] = op.Operations[i].Kind
		}
	}
	digest := tezos.Digest(payload)
	req.Digest = digest[:]
	if op.Kind.Consensus() {
		req.Mark = &pipeline.Mark{ID: watermark.ID{Key: req.Address, Chain: op.ChainID, Kind: op.Magic}, Level: op.Level, Round: op.Round}
	}
	req.Check = func() error { return k.Tezos.Check(op) }
	if ls := k.Tezos.Limits(); len(ls) > 0 {
		req.Limits = ls
		req.Spend = func() (limits.Spend, error) { return k.Tezos.Spend(op) }
	}
	req.Encode = func(sig []byte) ([]byte, error) {
		s, err := tezos.EncodeSignature(k.Pub.Curve, sig)
		return []byte(s), err
	}
	res, err := h.p.Sign(ctx, req)
	if err != nil {
		return nil, pipeline.ErrorOf(err)
	}
	return res.Encoded, nil
}

var sigBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// writeSignature answers {"signature":"<sig>"}: base58 needs no escaping.
func writeSignature(w http.ResponseWriter, sig []byte) {
	bp := sigBufs.Get().(*[]byte)
	b := append((*bp)[:0], `{"signature":"`...)
	b = append(b, sig...)
	b = append(b, "\"}\n"...)
	w.Header()["Content-Type"] = jsonType
	_, _ = w.Write(b)
	*bp = b
	sigBufs.Put(bp)
}

var jsonType = []string{"application/json"}

func (h *Handler) originsAllowed(origins []string) bool {
	allowed := h.opts.AllowedOrigins()
	if len(origins) == 0 {
		return false
	}
	for _, o := range origins {
		ok := false
		for _, a := range allowed {
			if o != "" && o == a {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// readPayload reads the body: a JSON string of hex bytes.
func readPayload(r *http.Request, max int64) ([]byte, *pipeline.Error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, max))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, pipeline.Fail(pipeline.TooLarge, pipeline.RuleRequest, "request body over %d bytes", max)
		}
		return nil, pipeline.Fail(pipeline.Malformed, pipeline.RuleRequest, "cannot read the request body")
	}
	s, err := jsonString(body)
	if err != nil {
		if len(bytes.TrimSpace(body)) == 0 {
			return nil, pipeline.Fail(pipeline.Malformed, pipeline.RuleRequest, "empty body: want a JSON string of hex bytes")
		}
		return nil, pipeline.Fail(pipeline.Malformed, pipeline.RuleRequest, "body is not a JSON string: want a JSON string of hex bytes, e.g. \"03…\"")
	}
	if len(s) == 0 {
		return nil, pipeline.Fail(pipeline.Malformed, pipeline.RuleRequest, "empty payload")
	}
	if len(s)%2 != 0 {
		return nil, pipeline.Fail(pipeline.Malformed, pipeline.RuleRequest, "payload hex has odd length %d", len(s))
	}
	b := make([]byte, len(s)/2)
	if _, err := hex.Decode(b, s); err != nil {
		return nil, pipeline.Fail(pipeline.Malformed, pipeline.RuleRequest, "payload is not hex: %v", err)
	}
	return b, nil
}

// jsonString returns the contents of a JSON string body. The common form
// (a quoted string without escapes, optional surrounding whitespace) is
// read without encoding/json; anything else goes through it.
func jsonString(body []byte) ([]byte, error) {
	t := bytes.TrimSpace(body)
	if len(t) >= 2 && t[0] == '"' && t[len(t)-1] == '"' && bytes.IndexByte(t[1:len(t)-1], '\\') < 0 && bytes.IndexByte(t[1:len(t)-1], '"') < 0 {
		inner := t[1 : len(t)-1]
		for _, c := range inner {
			if c < 0x20 {
				return nil, errors.New("control character in string")
			}
		}
		return inner, nil
	}
	var s string
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, err
	}
	return []byte(s), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
