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
	"github.com/keyward/keyward/internal/fscheck"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/limits"
	limitsfile "github.com/keyward/keyward/limits/file"
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
	tokens   atomic.Pointer[rpc.TokenSet]
	tezosTLS atomic.Pointer[tls.Config] // nil: plain HTTP
	ethTLS   atomic.Pointer[tls.Config]
	tezosH   http.Handler // nil: tezos.disabled
	ethH     http.Handler // nil: no ethereum.listen

	reloadMu  sync.Mutex
	mu        sync.Mutex
	servers   []*http.Server
	listeners []net.Listener
}

// New opens everything the configuration names. Any failure is a start-up
// error: keyward never starts half-configured. Every check it makes is the
// one Check makes, in the same code and words.
func New(ctx context.Context, cfgPath string, cfg *config.Config, log *slog.Logger) (*Server, error) {
	s, warnings, err := build(ctx, cfgPath, cfg, log, false)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	return s, nil
}

// CheckReport is what Check found in a configuration serve would accept.
type CheckReport struct {
	Keys      int
	Watermark string   // the store's URL, redacted
	Warnings  []string // what serve would warn about at start
}

// Check runs every start-up check of New on cfg (settings files, listener
// addresses, the audit file, the watermark store, every key, the
// authorized keys, the Ethereum handler), with the same code and error
// messages, but takes nothing exclusive and writes nothing: the watermark
// store is opened read-only (the file store's directory lock and the
// machine-wide key locks are not taken), the audit file is inspected, not
// opened for append. So it runs beside the daemon serving cfg.
func Check(ctx context.Context, cfg *config.Config, log *slog.Logger) (*CheckReport, error) {
	s, warnings, err := build(ctx, "", cfg, log, true)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return &CheckReport{Keys: len(s.Ring().Keys()), Watermark: watermark.RedactURL(cfg.Watermark), Warnings: warnings}, nil
}

// build assembles a Server from cfg; with check set it takes and writes
// nothing (see Check).
func build(ctx context.Context, cfgPath string, cfg *config.Config, log *slog.Logger, check bool) (_ *Server, warnings []string, err error) {
	s := &Server{cfgPath: cfgPath, log: log, metrics: NewMetrics(), audit: audit.Discard{}}
	s.cfg.Store(cfg)
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	st, err := loadSettings(cfg)
	if err != nil {
		return nil, nil, err
	}
	s.applySettings(st)
	warnings = st.warnings
	open := watermark.Open
	if check {
		open = watermark.OpenReadOnly
	}
	store, err := open(ctx, cfg.Watermark)
	if err != nil {
		return nil, nil, fmt.Errorf("watermark: %w", err)
	}
	s.store = store
	if err := s.setupReplication(ctx, cfg); err != nil {
		return nil, nil, err
	}
	if s.budgets, err = openBudgets(ctx, cfg, s.store, check); err != nil {
		return nil, nil, fmt.Errorf("limits: %w", err)
	}
	if cfg.Audit != "" {
		w, err := s.openAudit(cfg, check)
		if err != nil {
			return nil, nil, err
		}
		warnings = append(warnings, w...)
	}
	s.metrics.Registry.MustRegister(newBudgetCollector(s.budgets, s.Ring))
	codes := remotesigner.Codes()
	for c, f := range rpc.Codes() {
		codes[c] = f
	}
	s.pipeline = pipeline.New(pipeline.Options{Store: s.store, Budgets: s.budgets, Audit: s.audit, Log: log, Observer: s.metrics, Codes: codes})
	ring, err := keyring.Open(ctx, cfg, s.openKey)
	if err != nil {
		return nil, nil, err
	}
	s.keys.Store(ring)
	// A file store guards marks only for its own process: lock every key
	// that signs consensus messages for the whole machine, so a second
	// keyward serving it from another directory refuses to start. A check
	// beside the daemon must not take them.
	if kl, ok := s.store.(watermark.KeyLocker); ok && !check {
		var pkhs []string
		for _, k := range ring.Keys() {
			if k.Tezos.Allows(tezos.KindBlock) || k.Tezos.Allows(tezos.KindPreattestation) || k.Tezos.Allows(tezos.KindAttestation) {
				pkhs = append(pkhs, k.PKH)
			}
		}
		if err := kl.LockKeys(pkhs); err != nil {
			return nil, nil, fmt.Errorf("watermark: %w", err)
		}
	}
	// Key files are decrypted with scrypt (32 MiB each): give that memory back.
	debug.FreeOSMemory()
	a, err := remotesigner.NewAuthorizer(cfg.Tezos.AuthorizedKeys)
	if err != nil {
		return nil, nil, fmt.Errorf("tezos.authorized_keys: %w", err)
	}
	s.auth.Store(a)
	if !cfg.Tezos.Disabled {
		s.tezosH = s.tezosHandler()
	}
	if cfg.Ethereum.Listen != "" {
		if s.ethH, err = s.ethereumHandler(cfg); err != nil {
			return nil, nil, fmt.Errorf("ethereum: %w", err)
		}
	}
	return s, warnings, nil
}

// openBudgets opens the budget store that lives with the watermarks; it is
// open even when no key has limits yet, so a reload can add some. On
// PostgreSQL debits go through the watermark store's replication guard, on
// its connections. With check, a file store is read without its lock, and
// the PostgreSQL one (whose open migrates its table) is not opened: the
// watermark store's read-only open checked the database.
func openBudgets(ctx context.Context, cfg *config.Config, store watermark.Store, check bool) (limits.Store, error) {
	pg, isPG := store.(*wmpostgres.Store)
	switch {
	case check && isPG:
		return nil, nil
	case check:
		st, err := limitsfile.OpenURLReadOnly(cfg.Watermark)
		if err != nil {
			return nil, err
		}
		return st, nil
	case isPG:
		st, err := limitspostgres.Open(ctx, cfg.Watermark, limitspostgres.Options{Write: pg.Replication().Write})
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	return limits.Open(ctx, cfg.Watermark)
}

// openAudit opens the audit file (check: inspects it) and returns what to
// warn about. A tail that does not match its anchor is never continued
// silently: OpenFile writes a chain-break record linking the old head, and
// the break is logged as an error and counted in
// keyward_audit_chain_breaks_total; signing goes on.
func (s *Server) openAudit(cfg *config.Config, check bool) ([]string, error) {
	var (
		brk        *audit.ChainBreak
		unanchored bool
		torn       int64
		warnings   []string
	)
	if check {
		in, err := audit.Inspect(cfg.Audit)
		if err != nil {
			return nil, err
		}
		brk, unanchored, torn = in.Break, in.Unanchored, in.TornTail
		if brk != nil {
			warnings = append(warnings, fmt.Sprintf("audit %s: %v; keyward serve will write a chain-break record and go on", cfg.Audit, brk))
		}
	} else {
		f, err := audit.OpenFileWith(cfg.Audit, audit.FileOptions{
			Sync: cfg.AuditSync == config.AuditSyncAlways,
			OnAnchorError: func(err error) {
				s.log.Error("audit anchor not moved: a removed tail would go unnoticed until it is", "err", err)
			},
		})
		if err != nil {
			return nil, err
		}
		s.audit = f
		brk, unanchored, torn = f.Break, f.Unanchored, f.TruncatedTail
		if brk != nil {
			s.metrics.auditChainBreaks.Inc()
			s.log.Error("audit log tail missing or edited; a chain-break record linking the old head was written and signing continues",
				"file", cfg.Audit, "reason", brk.Reason, "anchor_lines", brk.Anchor.Lines, "lines", brk.Lines)
		}
	}
	if unanchored {
		warnings = append(warnings, fmt.Sprintf("audit %s: no anchor (%s): lines removed from its end before now cannot be detected; the anchor starts from the file as it is", cfg.Audit, audit.AnchorPath(cfg.Audit)))
	}
	if torn > 0 {
		warnings = append(warnings, fmt.Sprintf("audit %s: an incomplete last line of %d bytes (a write cut short) is cut off at start", cfg.Audit, torn))
	}
	return warnings, nil
}

// settings are what the configuration names beside the keys and the store:
// loaded and checked alike at start, by config check and at every reload.
type settings struct {
	tokens   *rpc.TokenSet
	tezosTLS *tls.Config
	ethTLS   *tls.Config
	warnings []string
}

// loadSettings reads the tokens file and the TLS files, and checks the
// listener addresses and that the audit file can be written. It reports
// every problem, not only the first.
func loadSettings(cfg *config.Config) (*settings, error) {
	st := &settings{}
	var errs []error
	if cfg.Ethereum.TokensFile != "" {
		ts, err := rpc.LoadTokenSet(cfg.Ethereum.TokensFile)
		if err != nil {
			errs = append(errs, err)
		}
		st.tokens = ts
	}
	var err error
	if cfg.Tezos.TLS != nil && !cfg.Tezos.Disabled {
		if st.tezosTLS, err = tlsConfig(cfg.Tezos.TLS); err != nil {
			errs = append(errs, fmt.Errorf("tezos.tls: %w", err))
		}
	}
	if cfg.Ethereum.TLS != nil && cfg.Ethereum.Listen != "" {
		if st.ethTLS, err = tlsConfig(cfg.Ethereum.TLS); err != nil {
			errs = append(errs, fmt.Errorf("ethereum.tls: %w", err))
		}
	}
	seen := map[string]string{}
	for _, l := range listeners(cfg) {
		addr, err := net.ResolveTCPAddr("tcp", l.addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", l.field, err))
			continue
		}
		if other, dup := seen[addr.String()]; dup && addr.Port != 0 {
			errs = append(errs, fmt.Errorf("%s: %s is also %s", l.field, l.addr, other))
		}
		seen[addr.String()] = l.field
	}
	if cfg.Audit != "" {
		for _, p := range []string{cfg.Audit, audit.AnchorPath(cfg.Audit)} {
			if err := fscheck.File(p); err != nil {
				errs = append(errs, fmt.Errorf("audit: %w", err))
				break
			}
		}
	} else {
		st.warnings = append(st.warnings, "no audit log configured (audit:): decisions are not recorded")
	}
	if cfg.TezosExposed() {
		st.warnings = append(st.warnings, fmt.Sprintf("tezos listener %s is not on loopback and has neither authorized_keys nor client TLS: anyone who can reach it may ask for signatures (allowed by allow_non_loopback)", cfg.Tezos.Listen))
	}
	if cfg.EthereumExposed() {
		st.warnings = append(st.warnings, fmt.Sprintf("ethereum listener %s is not on loopback and has neither tokens_file nor client TLS: anyone who can reach it may ask for signatures (allowed by allow_non_loopback)", cfg.Ethereum.Listen))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return st, nil
}

func (s *Server) applySettings(st *settings) {
	s.tokens.Store(st.tokens)
	s.tezosTLS.Store(st.tezosTLS)
	s.ethTLS.Store(st.ethTLS)
}

type listener struct{ name, field, addr string }

// listeners are the listeners cfg turns on.
func listeners(cfg *config.Config) []listener {
	var l []listener
	if !cfg.Tezos.Disabled {
		l = append(l, listener{"tezos", "tezos.listen", cfg.Tezos.Listen})
	}
	if cfg.Ethereum.Listen != "" {
		l = append(l, listener{"ethereum", "ethereum.listen", cfg.Ethereum.Listen})
	}
	if cfg.Server.MetricsListen != "" {
		l = append(l, listener{"metrics", "server.metrics_listen", cfg.Server.MetricsListen})
	}
	return l
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

// Reload re-reads the config file and swaps, all at once or not at all,
// policies, authorized keys, allowed origins, Ethereum bearer tokens and
// TLS certificates, keys and client CAs. Anything it cannot swap (a key
// reference, a listener address, the store, the audit file, ...) changed
// makes it fail naming the setting; a failed reload keeps the running state
// and says why.
func (s *Server) Reload(ctx context.Context) (err error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	defer func() { s.metrics.reloaded(err) }()
	cfg, err := config.Load(s.cfgPath)
	if err != nil {
		return err
	}
	if changed := restartOnly(s.cfg.Load(), cfg); len(changed) > 0 {
		return fmt.Errorf("reload: %s changed; restart keyward to apply that (nothing was reloaded)", strings.Join(changed, ", "))
	}
	st, err := loadSettings(cfg)
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
			return fmt.Errorf("key %s: %w", name, err)
		}
		if !found || ok.Ref != u.Redacted() {
			return fmt.Errorf("reload: key %s is new or its ref changed; restart keyward to open it (nothing was reloaded)", name)
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
		return fmt.Errorf("tezos.authorized_keys: %w", err)
	}
	s.applySettings(st)
	s.keys.Store(ring)
	s.auth.Store(a)
	s.cfg.Store(cfg)
	for _, w := range st.warnings {
		s.log.Warn(w)
	}
	s.log.Info("configuration reloaded", "keys", len(keys), "authorized_keys", len(cfg.Tezos.AuthorizedKeys),
		"ethereum_tokens", st.tokens.Len(), "tezos_tls", st.tezosTLS != nil, "ethereum_tls", st.ethTLS != nil)
	return nil
}

// restartOnly names the settings that differ between a and b and that
// only a restart applies.
func restartOnly(a, b *config.Config) []string {
	var changed []string
	diff := func(name string, same bool) {
		if !same {
			changed = append(changed, name)
		}
	}
	diff("tezos.listen", a.Tezos.Listen == b.Tezos.Listen)
	diff("tezos.disabled", a.Tezos.Disabled == b.Tezos.Disabled)
	diff("tezos.tls (turned on or off)", (a.Tezos.TLS == nil) == (b.Tezos.TLS == nil))
	diff("ethereum.listen", a.Ethereum.Listen == b.Ethereum.Listen)
	diff("ethereum.tls (turned on or off)", (a.Ethereum.TLS == nil) == (b.Ethereum.TLS == nil))
	diff("ethereum.chain_id", a.Ethereum.ChainID == b.Ethereum.ChainID)
	diff("ethereum.upstream", a.Ethereum.Upstream == b.Ethereum.Upstream)
	diff("ethereum.max_body_bytes", a.Ethereum.MaxBodyBytes == b.Ethereum.MaxBodyBytes)
	diff("ethereum.max_batch", a.Ethereum.MaxBatch == b.Ethereum.MaxBatch)
	diff("server.metrics_listen", a.Server.MetricsListen == b.Server.MetricsListen)
	diff("server.pprof", a.Server.Pprof == b.Server.Pprof)
	diff("watermark", a.Watermark == b.Watermark)
	diff("watermark_replication", a.WatermarkReplication == b.WatermarkReplication)
	diff("audit", a.Audit == b.Audit)
	diff("audit_sync", a.AuditSync == b.AuditSync)
	diff("log", a.Log == b.Log)
	return changed
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
	for _, l := range listeners(cfg) {
		var h http.Handler
		var tlsSlot *atomic.Pointer[tls.Config]
		switch l.name {
		case "tezos":
			h, tlsSlot = s.tezosH, &s.tezosTLS
		case "ethereum":
			h, tlsSlot = s.ethH, &s.ethTLS
		default:
			h = s.opsHandler()
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("%s listener: %w", l.name, err)
		}
		hs := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
		scheme := "http"
		if tlsSlot != nil && tlsSlot.Load() != nil {
			// Each handshake takes the current certificate and client CA,
			// so a reload applies to the next connection.
			tc := &tls.Config{MinVersion: tls.VersionTLS12, GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
				return tlsSlot.Load(), nil
			}}
			hs.TLSConfig = tc
			ln = tls.NewListener(ln, tc)
			scheme = "https"
		}
		s.mu.Lock()
		s.servers = append(s.servers, hs)
		s.listeners = append(s.listeners, ln)
		s.mu.Unlock()
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
	if d, err := time.ParseDuration(s.cfg.Load().Server.ShutdownTimeout); err == nil && d > 0 {
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

// tlsConfig loads a listener's certificate, key and client CA.
func tlsConfig(c *config.TLSConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
	if err != nil {
		return nil, fmt.Errorf("cert %s, key %s: %w", c.Cert, c.Key, err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCA != "" {
		pem, err := os.ReadFile(c.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("client_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client_ca %s: no PEM certificates", c.ClientCA)
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
