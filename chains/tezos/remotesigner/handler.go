// Package remotesigner serves the Octez remote-signer HTTP protocol (GET/POST /keys/{pkh}, GET /authorized_keys) through keyward's request pipeline.
package remotesigner

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/watermark"
)

// DefaultMaxBody caps request bodies (a hex JSON string of a payload).
const DefaultMaxBody = 64 << 10

// Options configure the handler. Ring and Auth are functions so a SIGHUP
// reload can swap policies and authorized keys without a restart.
type Options struct {
	Ring    func() *keyring.Ring
	Auth    func() *Authorizer // nil or returning nil: no authentication required
	Store   watermark.Store
	Audit   audit.Logger
	Log     *slog.Logger
	MaxBody int64
	// Observe, when set, is called once per decision after it is recorded
	// (metrics). start is when the request arrived.
	Observe func(rec *audit.Record, start time.Time)
	// ClientIdentity, when set, returns an identity for the caller from the
	// request (e.g. a TLS client certificate subject) for the audit line.
	ClientIdentity func(r *http.Request) string
	// AllowedOrigins lists browser origins allowed to POST. Browsers send an
	// Origin header with every cross-site POST (Octez, Taquito under Node
	// and curl send none): without this rule any web page the operator
	// opens could ask for signatures, or raise a baker's watermarks.
	AllowedOrigins func() []string
}

// Handler is the Tezos remote-signer HTTP handler.
type Handler struct {
	opts   Options
	router *mux.Router
}

// New builds the handler.
func New(opts Options) *Handler {
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Audit == nil {
		opts.Audit = audit.Discard{}
	}
	if opts.Auth == nil {
		opts.Auth = func() *Authorizer { return nil }
	}
	h := &Handler{opts: opts}
	r := mux.NewRouter()
	r.HandleFunc("/keys/{pkh}", h.getKey).Methods(http.MethodGet)
	r.HandleFunc("/keys/{pkh}", h.sign).Methods(http.MethodPost)
	r.HandleFunc("/authorized_keys", h.authorizedKeys).Methods(http.MethodGet)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path)
	})
	h.router = r
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.router.ServeHTTP(w, r) }

type errorItem struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	Msg  string `json:"msg"`
}

// writeError answers in Octez's error-trace shape.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode([]errorItem{{Kind: "temporary", ID: "failure", Msg: msg}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (h *Handler) lookup(w http.ResponseWriter, r *http.Request) (*keyring.Key, string, bool) {
	pkh := mux.Vars(r)["pkh"]
	if _, _, err := tezos.ParsePublicKeyHash(pkh); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid public key hash %q: want a tz1, tz2 or tz3 address", pkh))
		return nil, pkh, false
	}
	k, ok := h.opts.Ring().ByPKH(pkh)
	if !ok {
		writeError(w, http.StatusNotFound, "no key "+pkh+" on this signer")
		return nil, pkh, false
	}
	return k, pkh, true
}

func (h *Handler) getKey(w http.ResponseWriter, r *http.Request) {
	k, _, ok := h.lookup(w, r)
	if !ok {
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

// outcome carries an HTTP status and the audit fields of one decision.
type outcome struct {
	status int
	rule   string
	err    error
}

func (h *Handler) sign(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &audit.Record{Chain: "tezos", Client: r.RemoteAddr}
	if h.opts.ClientIdentity != nil {
		rec.Auth = h.opts.ClientIdentity(r)
	}
	sig, out := h.signRequest(r, rec)
	if out.err != nil {
		rec.Status = out.status
		rec.Reason = out.err.Error()
		rec.Rule = out.rule
		if out.status == http.StatusForbidden || out.status == http.StatusConflict || out.status == http.StatusUnauthorized {
			rec.Outcome = audit.Refused
		} else {
			rec.Outcome = audit.Failed
		}
		if err := h.opts.Audit.Log(r.Context(), rec); err != nil {
			h.opts.Log.Error("audit log write failed", "err", err)
		}
		h.observe(rec, start)
		level := slog.LevelWarn
		if out.status >= 500 {
			level = slog.LevelError
		}
		h.opts.Log.Log(r.Context(), level, "tezos request refused", "status", out.status, "key", rec.Key, "address", rec.Address, "kind", rec.Kind, "rule", out.rule, "reason", rec.Reason, "client", rec.Client)
		writeError(w, out.status, rec.Reason)
		return
	}
	rec.Outcome = audit.Signed
	rec.Status = http.StatusOK
	if err := h.opts.Audit.Log(r.Context(), rec); err != nil {
		// Nothing leaves keyward unrecorded.
		h.opts.Log.Error("audit log write failed; signature withheld", "err", err, "key", rec.Key)
		rec.Outcome, rec.Status, rec.Reason = audit.Failed, http.StatusServiceUnavailable, err.Error()
		h.observe(rec, start)
		writeError(w, http.StatusServiceUnavailable, "audit log unavailable: signature withheld")
		return
	}
	h.observe(rec, start)
	if h.opts.Log.Enabled(r.Context(), slog.LevelDebug) {
		h.opts.Log.Debug("tezos request signed", "key", rec.Key, "kind", rec.Kind, "level", rec.Level, "round", rec.Round)
	}
	writeJSON(w, map[string]string{"signature": sig})
}

func (h *Handler) observe(rec *audit.Record, start time.Time) {
	if h.opts.Observe != nil {
		h.opts.Observe(rec, start)
	}
}

func fail(status int, rule string, err error) outcome {
	return outcome{status: status, rule: rule, err: err}
}

// signRequest runs the pipeline: decode, authenticate, policy, watermark, sign.
func (h *Handler) signRequest(r *http.Request, rec *audit.Record) (string, outcome) {
	pkh := mux.Vars(r)["pkh"]
	rec.Address = pkh
	curve, hash, err := tezos.ParsePublicKeyHash(pkh)
	if err != nil {
		return "", fail(http.StatusBadRequest, "request", fmt.Errorf("invalid public key hash %q: want a tz1, tz2 or tz3 address", pkh))
	}
	if v := r.URL.Query().Get("version"); v != "" {
		if _, err := strconv.ParseUint(v, 10, 8); err != nil {
			return "", fail(http.StatusBadRequest, "request", fmt.Errorf("invalid version parameter %q", v))
		}
	}
	if origin := r.Header.Get("Origin"); origin != "" && !h.originAllowed(origin) {
		return "", fail(http.StatusForbidden, "tezos.allowed_origins", fmt.Errorf("requests from browser origin %q are refused (add it to tezos.allowed_origins to allow it)", origin))
	}
	payload, err := readPayload(r, h.opts.MaxBody)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return "", fail(http.StatusRequestEntityTooLarge, "request", fmt.Errorf("request body over %d bytes", h.opts.MaxBody))
		}
		return "", fail(http.StatusBadRequest, "request", err)
	}
	digest := tezos.Digest(payload)
	rec.Digest = hex.EncodeToString(digest[:])
	k, ok := h.opts.Ring().ByPKH(pkh)
	if !ok {
		return "", fail(http.StatusNotFound, "key", fmt.Errorf("no key %s on this signer", pkh))
	}
	rec.Key = k.Name
	if k.AuditPayload {
		rec.Payload = hex.EncodeToString(payload)
	}
	if a := h.opts.Auth(); a != nil {
		target := append([]byte{tagOf(curve)}, hash...)
		who, err := a.Check(r.URL.Query().Get("authentication"), target, payload)
		if err != nil {
			if errors.Is(err, ErrAuthMissing) {
				return "", fail(http.StatusUnauthorized, "tezos.authorized_keys", err)
			}
			return "", fail(http.StatusForbidden, "tezos.authorized_keys", err)
		}
		if rec.Auth != "" {
			rec.Auth += " " + who
		} else {
			rec.Auth = who
		}
	}
	req, err := tezos.ParseRequest(payload)
	if err != nil {
		if errors.Is(err, tezos.ErrLegacyMagic) {
			return "", fail(http.StatusForbidden, "tezos.magic", err)
		}
		return "", fail(http.StatusBadRequest, "decode", err)
	}
	rec.Kind = string(req.Kind)
	rec.ChainID = req.ChainID
	if isConsensus(req.Magic) {
		l, rd := req.Level, req.Round
		rec.Level, rec.Round = &l, &rd
	}
	for _, op := range req.Operations {
		rec.Operations = append(rec.Operations, op.Kind)
	}
	if err := k.Tezos.Check(req); err != nil {
		var ref *policy.Refusal
		if errors.As(err, &ref) {
			return "", fail(http.StatusForbidden, ref.Rule, err)
		}
		return "", fail(http.StatusForbidden, "policy", err)
	}
	ctx := r.Context()
	var wid watermark.ID
	if isConsensus(req.Magic) {
		wid = watermark.ID{Key: pkh, Chain: req.ChainID, Kind: req.Magic}
		prev, err := h.opts.Store.Advance(ctx, wid, req.Level, req.Round, digest[:])
		if err != nil {
			var refused *watermark.RefusedError
			if errors.As(err, &refused) {
				return "", fail(http.StatusConflict, "watermark", err)
			}
			return "", fail(http.StatusServiceUnavailable, "watermark", fmt.Errorf("watermark store unavailable, nothing signed: %w", err))
		}
		if len(prev) > 0 {
			rec.Reason = "identical retry: stored signature returned"
			return string(prev), outcome{}
		}
	}
	sig, err := signer.SignDigest(ctx, k.Signer, digest[:])
	if err != nil {
		if isConsensus(req.Magic) {
			// Nothing was signed: give the mark back when the store can do
			// so safely (no other request passed on it meanwhile).
			if rv, ok := h.opts.Store.(watermark.Reverter); ok {
				if rerr := rv.Revert(context.WithoutCancel(ctx), wid, req.Level, req.Round, digest[:]); rerr != nil {
					h.opts.Log.Warn("could not revert the watermark after a signing failure; the mark stays (safe)", "key", k.Name, "err", rerr)
				}
			}
		}
		status := http.StatusBadGateway
		if errors.Is(err, signer.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
			status = http.StatusServiceUnavailable
		}
		return "", fail(status, "backend", fmt.Errorf("key %s (%s): %w", k.Name, k.Scheme, err))
	}
	enc, err := tezos.EncodeSignature(k.Pub.Curve, sig)
	if err != nil {
		return "", fail(http.StatusInternalServerError, "encode", err)
	}
	if isConsensus(req.Magic) {
		if err := h.opts.Store.SetSignature(ctx, wid, req.Level, req.Round, digest[:], []byte(enc)); err != nil {
			h.opts.Log.Warn("could not store signature with its watermark; an identical retry will be signed afresh", "key", k.Name, "err", err)
		}
	}
	return enc, outcome{}
}

func (h *Handler) originAllowed(origin string) bool {
	if h.opts.AllowedOrigins == nil {
		return false
	}
	for _, o := range h.opts.AllowedOrigins() {
		if o == origin {
			return true
		}
	}
	return false
}

func isConsensus(magic byte) bool { return magic == 0x11 || magic == 0x12 || magic == 0x13 }

func tagOf(c signer.Curve) byte {
	switch c {
	case signer.Secp256k1:
		return 1
	case signer.P256:
		return 2
	}
	return 0
}

// readPayload reads the body: a JSON string of hex bytes.
func readPayload(r *http.Request, max int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, max))
	if err != nil {
		return nil, err
	}
	var s string
	if err := json.Unmarshal(body, &s); err != nil {
		if len(body) == 0 {
			return nil, errors.New("empty body: want a JSON string of hex bytes")
		}
		return nil, errors.New("body is not a JSON string: want a JSON string of hex bytes, e.g. \"03…\"")
	}
	if s == "" {
		return nil, errors.New("empty payload")
	}
	if len(s)%2 != 0 {
		return nil, fmt.Errorf("payload hex has odd length %d", len(s))
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("payload is not hex: %v", err)
	}
	return b, nil
}
