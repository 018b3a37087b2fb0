package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/keyward/keyward/config"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/server"
	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/local"
)

const serveHelp = `Usage: keyward serve --config FILE
       keyward serve --dev [--dir DIR]

Runs the signer. With --config it reads the YAML configuration (see README).
With --dev and no config it creates DIR (default ./keyward-dev) holding a fresh
tz2 (secp256k1) key stored UNENCRYPTED (for development only; a warning is
printed at every start), a watermark folder and a config, then serves the
Tezos remote-signer protocol on 127.0.0.1:6732 and Ethereum JSON-RPC on
127.0.0.1:8550. Signals: SIGTERM/SIGINT shut down gracefully; SIGHUP reloads
policies, authorized keys, allowed origins, the Ethereum tokens file and the
TLS certificates, keys and client CAs, all at once or, when anything is wrong
or needs a restart, not at all (the log says why).`

func cmdServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", serveHelp, stdout)
	cfgPath := fs.String("config", "", "configuration file (YAML)")
	dev := fs.Bool("dev", false, "development mode: create and use a local key, watermarks and config in --dir")
	dir := fs.String("dir", "keyward-dev", "directory for --dev")
	logLevel := fs.String("log-level", "", "log level: debug, info, warn, error (overrides log.level)")
	if _, err := parse(fs, args, stderr); err != nil {
		return err
	}
	if *dev == (*cfgPath != "") && !(*dev && *cfgPath == "") {
		fs.Usage()
		return fmt.Errorf("give exactly one of --config FILE or --dev")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *dev {
		p, err := prepareDev(ctx, *dir, stderr)
		if err != nil {
			return err
		}
		*cfgPath = p
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	log := newLogger(cfg, *logLevel, stderr)
	slog.SetDefault(log)
	if *dev {
		log.Warn("DEVELOPMENT MODE: the key in " + *dir + " is stored unencrypted; never use it for real value")
	}
	if os.Getenv("GOGC") == "" {
		// The live heap is a few MiB; collecting at 3× instead of 2× of it
		// halves the collector's share of the CPU per signature and keeps
		// the resident set well under 64 MiB under load.
		debug.SetGCPercent(200)
	}
	srv, err := server.New(ctx, *cfgPath, cfg, log)
	if err != nil {
		return err
	}
	for _, k := range srv.Ring().Keys() {
		attrs := []any{"name", k.Name, "backend", k.Scheme, "curve", k.Pub.Curve.String(), "tezos", k.PKH}
		if k.EthAddress != "" && k.Ethereum != nil {
			attrs = append(attrs, "ethereum", k.EthAddress)
		}
		log.Info("key ready", attrs...)
	}
	if *dev {
		printDevBanner(stdout, srv.Ring(), cfg)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			if err := srv.Reload(ctx); err != nil {
				log.Error("reload failed; keeping the previous configuration", "err", err)
			}
		}
	}()
	return srv.Run(ctx)
}

func newLogger(cfg *config.Config, level string, w io.Writer) *slog.Logger {
	if level == "" {
		level = cfg.Log.Level
	}
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "warn":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// prepareDev creates the dev directory on first use and returns its config path.
func prepareDev(ctx context.Context, dir string, stderr io.Writer) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	cfgPath := filepath.Join(abs, "keyward.yaml")
	if _, err := os.Stat(cfgPath); err == nil {
		return cfgPath, nil
	}
	if err := os.MkdirAll(filepath.Join(abs, "watermarks"), 0o700); err != nil {
		return "", err
	}
	if err := os.Chmod(abs, 0o700); err != nil {
		return "", err
	}
	keyPath := filepath.Join(abs, "dev-tz2.json")
	if _, err := os.Stat(keyPath); os.IsNotExist(err) {
		k, err := local.Generate(signer.Secp256k1)
		if err != nil {
			return "", err
		}
		if err := local.WriteKeyFile(ctx, keyPath, k, local.WriteOptions{Plaintext: true}); err != nil {
			return "", err
		}
	}
	cfg := fmt.Sprintf(`# keyward development configuration, created by "keyward serve --dev".
# The key below is stored UNENCRYPTED: never use it for real value.
tezos:
  listen: 127.0.0.1:6732
ethereum:
  listen: 127.0.0.1:8550
  chain_id: 1337
server:
  metrics_listen: 127.0.0.1:9583
watermark: file://%s
audit: %s
keys:
  dev:
    ref: file://%s
    tezos:
      allow: [block, preattestation, attestation, generic, michelson_data]
      operations: [transaction, reveal, delegation, origination, stake, unstake, finalize_unstake, set_delegate_parameters]
    ethereum:
      sign_messages: true
      sign_typed_data: true
      allow_create: true
`, filepath.Join(abs, "watermarks"), filepath.Join(abs, "audit.jsonl"), keyPath)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return "", err
	}
	fmt.Fprintf(stderr, "created development signer in %s\n", abs)
	return cfgPath, nil
}

func printDevBanner(w io.Writer, ring *keyring.Ring, cfg *config.Config) {
	keys := ring.Keys()
	if len(keys) == 0 {
		return
	}
	k := keys[0] // the dev config holds one key
	fmt.Fprintf(w, "\nkeyward dev signer\n  key:        %s (%s, UNENCRYPTED dev key)\n  tz address: %s\n  public key: %s\n", k.Name, k.Pub.Curve, k.PKH, k.TezosPub)
	if k.EthAddress != "" && k.Ethereum != nil {
		fmt.Fprintf(w, "  eth:        %s (JSON-RPC on http://%s)\n", k.EthAddress, cfg.Ethereum.Listen)
	}
	fmt.Fprintf(w, "\nTry it:\n  curl -s http://%s/keys/%s\n  curl -s -X POST -H 'Content-Type: application/json' -d '\"05010000000568656c6c6f\"' http://%s/keys/%s\n\n",
		cfg.Tezos.Listen, k.PKH, cfg.Tezos.Listen, k.PKH)
}
