package server

import (
	"context"
	"net/http"
	"time"

	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/chains/ethereum/rpc"
	"github.com/keyward/keyward/config"
)

// ethereumHandler builds the Ethereum JSON-RPC handler for ethereum.listen.
func (s *Server) ethereumHandler(cfg *config.Config) (http.Handler, error) {
	h, err := rpc.NewHandler(rpc.Options{
		Ring:         s.Ring,
		Audit:        &observedAudit{Logger: s.audit, m: s.metrics},
		Log:          s.log,
		ChainID:      cfg.Ethereum.ChainID,
		Upstream:     cfg.Ethereum.Upstream,
		TokensFile:   cfg.Ethereum.TokensFile,
		MaxBodyBytes: cfg.Ethereum.MaxBodyBytes,
		MaxBatch:     cfg.Ethereum.MaxBatch,
	})
	if err != nil {
		return nil, err
	}
	return withStart(withClientIdentity(h)), nil
}

type startKey struct{}

// withStart records the arrival time of each request for latency metrics.
func withStart(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), startKey{}, time.Now())))
	})
}

// withClientIdentity passes a verified TLS client certificate subject on to
// the audit line (through the request context).
func withClientIdentity(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := CertSubject(r); s != "" {
			r = r.WithContext(context.WithValue(r.Context(), certKey{}, s))
		}
		h.ServeHTTP(w, r)
	})
}

type certKey struct{}

// observedAudit counts every Ethereum decision in the metrics as it is recorded.
type observedAudit struct {
	audit.Logger
	m *Metrics
}

func (o *observedAudit) Log(ctx context.Context, rec *audit.Record) error {
	if s, ok := ctx.Value(certKey{}).(string); ok {
		if rec.Auth != "" {
			rec.Auth = s + " " + rec.Auth
		} else {
			rec.Auth = s
		}
	}
	err := o.Logger.Log(ctx, rec)
	start, ok := ctx.Value(startKey{}).(time.Time)
	if !ok {
		start = time.Now()
	}
	o.m.Observe(rec, start)
	return err
}
