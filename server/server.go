// Package server assembles keyward from its configuration: keys, watermark store, audit log, the Tezos and Ethereum listeners, metrics and health, reloads and graceful shutdown.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/chains/ethereum/rpc"
	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/chains/tezos/remotesigner"
	"github.com/keyward/keyward/config"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/limits"
	limitspostgres "github.com/keyward/keyward/limits/postgres"
	"github.com/keyward/keyward/pipeline"
	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/watermark"
	wmpostgres "github.com/keyward/keyward/watermark/postgres"
)

// Server is a running keyward.
type Server struct {
	cfgPath  string
	log      *slog.Logger
	metrics  *Metrics
	store    watermark.Store
	audit    audit.Logger
	budgets  limits.Store
	pipeline *pipeline.Pipeline
	keys     atomic.Pointer[keyring.Ring]
	auth     atomic.Pointer[remotesigner.Authorizer]
	cfg      atomic.Pointer[config.Config]

	mu        sync.Mutex
	servers   []*http.Server
	listeners []net.Listener
}

// New opens everything the configuration names. Any failure is a start-up
// error: keyward never starts half-configured.
func New(ctx context.Context, cfgPath string, cfg *config.Config, log *slog.Logger) (*Server, error) {
	s := &Server{cfgPath: cfgPath, log: log, metrics: NewMetrics()}
	s.cfg.Store(cfg)
	var err error
	s.store, err = watermark.Open(ctx, cfg.Watermark)
	if err != nil {
		return nil, fmt.Errorf("watermark: %w", err)
	}
	if err := s.setupReplication(ctx, cfg); err != nil {
		s.store.Close()
		return nil, err
	}
	// The budgets live with the watermarks; the store is open even when no
	// key has limits yet, so a reload can add some.
	if pg, ok := s.store.(*wmpostgres.Store); ok {
		// Same database, same replication guard as the marks.
		s.budgets, err = limitspostgres.Open(ctx, cfg.Watermark, limitspostgres.Options{Write: pg.Replication().Write})
	} else {
		s.budgets, err = limits.Open(ctx, cfg.Watermark)
	}
	if err != nil {
		s.store.Close()
		return nil, fmt.Errorf("limits: %w", err)
	}
	if cfg.Audit != "" {
		s.audit, err = audit.OpenFile(cfg.Audit)
		if err != nil {
			s.store.Close()
			s.budgets.Close()
			return nil, err
		}
	} else {
		s.audit = audit.Discard{}
	}
	s.metrics.Registry.MustRegister(newBudgetCollector(s.budgets, s.Ring))
	codes := remotesigner.Codes()
	for c, f := range rpc.Codes() {
		codes[c] = f
	}
	s.pipeline = pipeline.New(pipeline.Options{Store: s.store, Budgets: s.budgets, Audit: s.audit, Log: log, Observer: s.metrics, Codes: codes})
	ring, err := keyring.Open(ctx, cfg, s.openKey)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.keys.Store(ring)
	// A file store guards marks only for its own process: lock every key
	// that signs consensus messages for the whole machine, so a second
	// keyward serving it from another directory refuses to start.
	if kl, ok := s.store.(watermark.KeyLocker); ok {
		var pkhs []string
		for _, k := range ring.Keys() {
			if k.Tezos.Allows(tezos.KindBlock) || k.Tezos.Allows(tezos.KindPreattestation) || k.Tezos.Allows(tezos.KindAttestation) {
				pkhs = append(pkhs, k.PKH)
			}
		}
		if err := kl.LockKeys(pkhs); err != nil {
			s.Close()
			return nil, fmt.Errorf("watermark: %w", err)
		}
	}
	// Key files are decrypted with scrypt (32 MiB each): give that memory back.
	debug.FreeOSMemory()
	a, err := remotesigner.NewAuthorizer(cfg.Tezos.AuthorizedKeys)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.auth.Store(a)
	return s, nil
}

func (s *Server) openKey(ctx context.Context, ref string) (signer.Key, error) {
	k, err := signer.Open(ctx, ref)
	if err != nil {
		return nil, err
	}
	u, _ := signer.ParseURI(ref)
	return &timedKey{Key: k, latency: s.metrics.backendLatency.WithLabelValues(u.Scheme)}, nil
}

// Ring returns the current key ring.
func (s *Server) Ring() *keyring.Ring { return s.keys.Load() }

// Reload re-reads the config file and swaps policies and authorized keys.
// Key references must not change (a changed or added key needs a restart).
func (s *Server) Reload(ctx context.Context) error {
	cfg, err := config.Load(s.cfgPath)
	if err != nil {
		return err
	}
	old := s.Ring()
	var keys []*keyring.Key
	for _, name := range cfg.KeyNames() {
		kc := cfg.Keys[name]
		ok, found := old.ByName(name)
		u, err := signer.ParseURI(kc.Ref)
		if err != nil {
			return err
		}
		if !found || ok.Ref != u.Redacted() {
			return fmt.Errorf("reload: key %s is new or its ref changed; restart keyward to open it", name)
		}
		k, err := keyring.NewKey(name, u, ok.Signer, kc)
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	ring, err := keyring.New(keys)
	if err != nil {
		return err
	}
	a, err := remotesigner.NewAuthorizer(cfg.Tezos.AuthorizedKeys)
	if err != nil {
		return err
	}
	s.keys.Store(ring)
	s.auth.Store(a)
	s.cfg.Store(cfg)
	s.log.Info("configuration reloaded", "keys", len(keys), "authorized_keys", len(cfg.Tezos.AuthorizedKeys))
	return nil
}

// tezosHandler builds the Tezos remote-signer handler.
func (s *Server) tezosHandler() http.Handler {
	return remotesigner.New(remotesigner.Options{
		Ring:           s.Ring,
		Auth:           func() *remotesigner.Authorizer { return s.auth.Load() },
		Pipeline:       s.pipeline,
		Log:            s.log,
		ClientIdentity: CertSubject,
		AllowedOrigins: func() []string { return s.cfg.Load().Tezos.AllowedOrigins },
		ListKnownKeys:  func() bool { return s.cfg.Load().Tezos.ListKnownKeys },
	})
}

// CertSubject returns the verified TLS client certificate's subject, or "".
func CertSubject(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return ""
	}
	return "cert:" + r.TLS.VerifiedChains[0][0].Subject.String()
}

// Run binds the listeners and serves until ctx is cancelled, then shuts down
// gracefully: stop accepting, finish in-flight requests, close stores.
func (s *Server) Run(ctx context.Context) error {
	cfg := s.cfg.Load()
	type srv struct {
		name, addr string
		h          http.Handler
		tls        *config.TLSConfig
	}
	var list []srv
	if !cfg.Tezos.Disabled {
		list = append(list, srv{"tezos", cfg.Tezos.Listen, s.tezosHandler(), cfg.Tezos.TLS})
	}
	if cfg.Ethereum.Listen != "" {
		h, err := s.ethereumHandler(cfg)
		if err != nil {
			return fmt.Errorf("ethereum: %w", err)
		}
		if cfg.Ethereum.TokensFile == "" && !config.IsLoopback(cfg.Ethereum.Listen) {
			s.log.Warn("ethereum listener is not on loopback and has no tokens_file: anyone who can reach it may ask for signatures (allowed by allow_non_loopback)", "listen", cfg.Ethereum.Listen)
		}
		list = append(list, srv{"ethereum", cfg.Ethereum.Listen, h, cfg.Ethereum.TLS})
	}
	if cfg.Server.MetricsListen != "" {
		list = append(list, srv{"metrics", cfg.Server.MetricsListen, s.opsHandler(), nil})
	}
	for _, l := range list {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("%s listener: %w", l.name, err)
		}
		hs := &http.Server{
			Handler:           l.h,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
		if l.tls != nil {
			tc, err := tlsConfig(l.tls)
			if err != nil {
				ln.Close()
				s.closeListeners()
				return fmt.Errorf("%s tls: %w", l.name, err)
			}
			hs.TLSConfig = tc
			ln = tls.NewListener(ln, tc)
		}
		s.mu.Lock()
		s.servers = append(s.servers, hs)
		s.listeners = append(s.listeners, ln)
		s.mu.Unlock()
		scheme := "http"
		if l.tls != nil {
			scheme = "https"
		}
		s.log.Info("listening", "service", l.name, "url", scheme+"://"+ln.Addr().String())
	}
	errc := make(chan error, len(s.servers))
	for i, hs := range s.servers {
		go func(hs *http.Server, ln net.Listener) {
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}(hs, s.listeners[i])
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	timeout := 15 * time.Second
	if d, err := time.ParseDuration(cfg.Server.ShutdownTimeout); err == nil && d > 0 {
		timeout = d
	}
	s.log.Info("shutting down: finishing in-flight requests", "timeout", timeout)
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, hs := range s.servers {
		wg.Add(1)
		go func(hs *http.Server) { defer wg.Done(); _ = hs.Shutdown(sctx) }(hs)
	}
	wg.Wait()
	s.Close()
	s.log.Info("stopped")
	return runErr
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.listeners {
		l.Close()
	}
}

// Close closes the keys, the store and the audit log.
func (s *Server) Close() {
	if r := s.keys.Load(); r != nil {
		r.Close()
	}
	if s.pipeline != nil {
		s.pipeline.Close() // writes the pending summaries
	}
	if s.store != nil {
		s.store.Close()
	}
	if s.budgets != nil {
		s.budgets.Close()
	}
	if s.audit != nil {
		s.audit.Close()
	}
}

func tlsConfig(c *config.TLSConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCA != "" {
		pem, err := os.ReadFile(c.ClientCA)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client_ca %s: no certificates", c.ClientCA)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// opsHandler serves /metrics, /healthz and /readyz.
func (s *Server) opsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{}))
	if s.cfg.Load().Server.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		problems := s.Readiness(ctx)
		details := s.replicationDetails(ctx)
		if len(problems) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready:\n" + strings.Join(problems, "\n") + "\n" + details))
			return
		}
		w.Write([]byte("ready\n" + details))
	})
	return mux
}

// Readiness lists what keeps keyward from signing: unreachable keys, an
// unwritable watermark store. Without server.readyz_details the list names
// only what is not ready: /readyz needs no authentication, and backend
// errors can name tokens, hosts and objects.
func (s *Server) Readiness(ctx context.Context) []string {
	details := s.cfg.Load().Server.ReadyzDetails
	var problems []string
	say := func(what string, err error) {
		if details {
			problems = append(problems, what+": "+err.Error())
		} else {
			problems = append(problems, what+": not ready")
		}
		s.log.Warn("not ready", "what", what, "err", err)
	}
	if err := s.store.Ready(ctx); err != nil {
		say("watermark store", err)
	}
	if err := s.budgets.Ready(ctx); err != nil {
		say("limits store", err)
	}
	for _, k := range s.Ring().Keys() {
		if rc, ok := k.Signer.(signer.ReadinessChecker); ok {
			if err := rc.Ready(ctx); err != nil {
				say(fmt.Sprintf("key %s (%s)", k.Name, k.Ref), err)
			}
		}
	}
	return problems
}

// timedKey measures backend signing latency and passes optional capabilities through.
type timedKey struct {
	signer.Key
	latency prometheus.Observer
}

func (t *timedKey) Sign(ctx context.Context, digest []byte) ([]byte, error) {
	start := time.Now()
	sig, err := t.Key.Sign(ctx, digest)
	t.latency.Observe(time.Since(start).Seconds())
	return sig, err
}

// SignRecoverable passes the recovery id through when the backend has one.
func (t *timedKey) SignRecoverable(ctx context.Context, digest []byte) ([]byte, byte, error) {
	start := time.Now()
	defer func() { t.latency.Observe(time.Since(start).Seconds()) }()
	if rk, ok := t.Key.(signer.RecoverableKey); ok {
		return rk.SignRecoverable(ctx, digest)
	}
	sig, err := t.Key.Sign(ctx, digest)
	return sig, signer.RecoveryUnknown, err
}

// SignBLS passes BLS signing through (signer.BLSKey) when the backend's key is one.
func (t *timedKey) SignBLS(ctx context.Context, scheme signer.BLSScheme, msg []byte) ([]byte, error) {
	bk, ok := t.Key.(signer.BLSKey)
	if !ok {
		return nil, signer.ErrNotBLSKey
	}
	start := time.Now()
	defer func() { t.latency.Observe(time.Since(start).Seconds()) }()
	return bk.SignBLS(ctx, scheme, msg)
}

// ProvePossession passes BLS proofs of possession through.
func (t *timedKey) ProvePossession(ctx context.Context, pk []byte) ([]byte, error) {
	bk, ok := t.Key.(signer.BLSKey)
	if !ok {
		return nil, signer.ErrNotBLSKey
	}
	return bk.ProvePossession(ctx, pk)
}

var _ signer.BLSKey = (*timedKey)(nil)

func (t *timedKey) Ready(ctx context.Context) error {
	if rc, ok := t.Key.(signer.ReadinessChecker); ok {
		return rc.Ready(ctx)
	}
	return nil
}

func (t *timedKey) Close() error {
	if c, ok := t.Key.(signer.Closer); ok {
		return c.Close()
	}
	return nil
}

// Unwrap returns the backend's key.
func (t *timedKey) Unwrap() signer.Key { return t.Key }
