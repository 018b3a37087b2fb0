// Package config loads keyward's YAML configuration strictly (unknown fields are errors) and validates it.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/keyward/keyward/internal/strictyaml"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/watermark"
)

// Defaults.
const (
	DefaultTezosListen    = "127.0.0.1:6732"
	DefaultEthereumListen = "127.0.0.1:8550"
	DefaultMaxBodyBytes   = 64 << 10
	DefaultMaxBatch       = 100
	// DefaultWatermarkReplication: sign, and warn while commits are not
	// acknowledged by a synchronous standby.
	DefaultWatermarkReplication = string(watermark.WarnAsync)
)

// Config is the whole configuration file (DESIGN §5).
type Config struct {
	Tezos     TezosConfig    `yaml:"tezos"`
	Ethereum  EthereumConfig `yaml:"ethereum"`
	Server    ServerConfig   `yaml:"server"`
	Watermark string         `yaml:"watermark"`
	// WatermarkReplication says what a replicated watermark store
	// (PostgreSQL) must show before keyward signs: require-sync, warn
	// (default) or ignore (watermark.ReplicationMode).
	WatermarkReplication string               `yaml:"watermark_replication"`
	Audit                string               `yaml:"audit"`
	AuditSync            string               `yaml:"audit_sync"` // "always": fdatasync every audit line before answering; "" (default): write(2) only, on disk within a second
	Keys                 map[string]KeyConfig `yaml:"keys"`
	Log                  LogConfig            `yaml:"log"`
}

// TezosConfig configures the Tezos remote-signer listener.
type TezosConfig struct {
	Listen         string     `yaml:"listen"`
	AuthorizedKeys []string   `yaml:"authorized_keys"`
	AllowedOrigins []string   `yaml:"allowed_origins"` // browser origins allowed to POST (default none: a web page cannot drive the signer)
	TLS            *TLSConfig `yaml:"tls"`
	Disabled       bool       `yaml:"disabled"`
	ListKnownKeys  bool       `yaml:"list_known_keys"` // serve GET /known_keys (off by default, as Octez's --allow-list-known-keys)
	// AllowNonLoopback lets the listener bind beyond loopback without
	// authorized_keys or client certificates (warned at every start).
	AllowNonLoopback bool `yaml:"allow_non_loopback"`
}

// EthereumConfig configures the Ethereum JSON-RPC listener.
type EthereumConfig struct {
	Listen           string     `yaml:"listen"`
	TokensFile       string     `yaml:"tokens_file"`
	ChainID          uint64     `yaml:"chain_id"`
	Upstream         string     `yaml:"upstream"`
	AllowNonLoopback bool       `yaml:"allow_non_loopback"` // listen beyond loopback without tokens or client certificates (warned at every start)
	MaxBodyBytes     int64      `yaml:"max_body_bytes"`
	MaxBatch         int        `yaml:"max_batch"`
	TLS              *TLSConfig `yaml:"tls"`
}

// TLSConfig enables TLS on a listener, with optional client certificates.
type TLSConfig struct {
	Cert     string `yaml:"cert"`
	Key      string `yaml:"key"`
	ClientCA string `yaml:"client_ca"` // when set, clients must present a certificate signed by it (mTLS)
}

// ServerConfig holds process-wide settings.
type ServerConfig struct {
	MetricsListen   string `yaml:"metrics_listen"`
	ShutdownTimeout string `yaml:"shutdown_timeout"`
	Pprof           bool   `yaml:"pprof"`          // serve /debug/pprof/ on the metrics listener (off by default)
	ReadyzDetails   bool   `yaml:"readyz_details"` // /readyz shows each problem's error text (off by default: it needs no authentication)
}

// LogConfig selects the operator log format.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text (default) or json
}

// KeyConfig is one key: its reference and its policies.
type KeyConfig struct {
	Ref          string                `yaml:"ref"`
	Tezos        *policy.TezosRules    `yaml:"tezos"`
	Ethereum     *policy.EthereumRules `yaml:"ethereum"`
	AuditPayload bool                  `yaml:"audit_payload"` // write the full payload into audit lines
	// Clients, when not empty, lists the callers that may use the key:
	// Ethereum token names (tokens_file), Tezos authorized-key hashes
	// (tz…), TLS client certificate subjects ("cert:CN=poster"). Any other
	// caller gets the answer an unknown key gets.
	Clients []string `yaml:"clients"`
}

// Load reads and validates a config file.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	c, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes YAML strictly and validates it.
func Parse(r io.Reader) (*Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, 4<<20))
	if err != nil {
		return nil, err
	}
	c, err := decode(data)
	if err != nil {
		return nil, err
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// decode reads the one YAML document in data after checking it against
// Config (strictyaml.Check): an unknown field, a setting without a value, a
// merge key, an anchor or an alias is an error naming its YAML path and
// line. yaml.v3 would apply a merge key's fields without the checks of the
// mapping they land in, and read a setting whose list items are all
// commented out as left out (for tezos.authorized_keys: no authentication).
func decode(data []byte) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty configuration")
		}
		return nil, err
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("line %d: more than one YAML document (remove the --- separator)", more.Line)
	}
	if err := strictyaml.Check(&doc, reflect.TypeFor[Config](), ""); err != nil {
		return nil, err
	}
	// The node is checked; decode the text again with yaml.v3's own strict
	// mode as well.
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	var c Config
	if err := strict.Decode(&c); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) applyDefaults() {
	if c.Tezos.Listen == "" {
		c.Tezos.Listen = DefaultTezosListen
	}
	if c.Ethereum.MaxBodyBytes == 0 {
		c.Ethereum.MaxBodyBytes = 1 << 20
	}
	if c.Ethereum.MaxBatch == 0 {
		c.Ethereum.MaxBatch = DefaultMaxBatch
	}
	if c.WatermarkReplication == "" {
		c.WatermarkReplication = DefaultWatermarkReplication
	}
}

// Validate checks what can be checked without opening keys.
func (c *Config) Validate() error {
	var errs []string
	if c.Watermark == "" {
		errs = append(errs, "watermark: required (e.g. file:///var/lib/keyward/watermarks)")
	}
	if _, err := watermark.ParseReplicationMode(c.WatermarkReplication); err != nil {
		errs = append(errs, err.Error())
	}
	if len(c.Keys) == 0 {
		errs = append(errs, "keys: at least one key is required")
	}
	for _, name := range c.KeyNames() {
		k := c.Keys[name]
		if k.Ref == "" {
			errs = append(errs, fmt.Sprintf("keys.%s.ref: required", name))
		}
		for i, c := range k.Clients {
			if strings.TrimSpace(c) == "" || strings.TrimSpace(c) != c {
				errs = append(errs, fmt.Sprintf("keys.%s.clients[%d]: %q is not a client name, tz address or cert:SUBJECT", name, i, c))
			}
		}
		if _, err := policy.CompileTezos(k.Tezos); err != nil {
			errs = append(errs, fmt.Sprintf("keys.%s.tezos: %v", name, err))
		}
		if k.Ethereum != nil {
			if _, err := policy.CompileEthereum(k.Ethereum); err != nil {
				errs = append(errs, fmt.Sprintf("keys.%s.ethereum: %v", name, err))
			}
		}
	}
	for _, l := range []struct{ name, addr string }{{"tezos.listen", c.Tezos.Listen}, {"ethereum.listen", c.Ethereum.Listen}, {"server.metrics_listen", c.Server.MetricsListen}} {
		if l.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(l.addr); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", l.name, err))
		}
	}
	if c.TezosExposed() && !c.Tezos.AllowNonLoopback {
		errs = append(errs, "tezos.listen: not a loopback address and neither authorized_keys nor tls.client_ca is set: anyone who can reach it could ask for signatures; set one of them or allow_non_loopback: true")
	}
	if c.EthereumExposed() && !c.Ethereum.AllowNonLoopback {
		errs = append(errs, "ethereum.listen: not a loopback address and neither tokens_file nor tls.client_ca is set: anyone who can reach it could ask for signatures; set one of them or allow_non_loopback: true")
	}
	for _, t := range []struct {
		name string
		tls  *TLSConfig
	}{{"tezos.tls", c.Tezos.TLS}, {"ethereum.tls", c.Ethereum.TLS}} {
		if t.tls == nil {
			continue
		}
		if t.tls.Cert == "" || t.tls.Key == "" {
			errs = append(errs, t.name+": cert and key are both required (PEM files)")
		}
	}
	switch c.AuditSync {
	case "", AuditSyncAlways:
	default:
		errs = append(errs, fmt.Sprintf("audit_sync: %q is not a setting (write always, or leave it out)", c.AuditSync))
	}
	if c.AuditSync != "" && c.Audit == "" {
		errs = append(errs, "audit_sync: set without audit")
	}
	if c.Server.ShutdownTimeout != "" {
		if d, err := time.ParseDuration(c.Server.ShutdownTimeout); err != nil || d <= 0 {
			errs = append(errs, fmt.Sprintf("server.shutdown_timeout: %q is not a positive duration (e.g. 15s)", c.Server.ShutdownTimeout))
		}
	}
	switch strings.ToLower(c.Log.Level) {
	case "", "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Sprintf("log.level: %q is not a level (debug, info, warn, error)", c.Log.Level))
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		errs = append(errs, fmt.Sprintf("log.format: %q is not a format (text, json)", c.Log.Format))
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// AuditSyncAlways is the audit_sync setting that fdatasyncs every audit line
// before the answer.
const AuditSyncAlways = "always"

// TezosExposed reports whether the Tezos listener binds beyond loopback
// without client authentication (authorized_keys or client certificates).
func (c *Config) TezosExposed() bool {
	return !c.Tezos.Disabled && !IsLoopback(c.Tezos.Listen) && len(c.Tezos.AuthorizedKeys) == 0 && !c.Tezos.TLS.verifiesClients()
}

// EthereumExposed reports whether the Ethereum listener binds beyond
// loopback without client authentication (bearer tokens or client
// certificates).
func (c *Config) EthereumExposed() bool {
	return c.Ethereum.Listen != "" && !IsLoopback(c.Ethereum.Listen) && c.Ethereum.TokensFile == "" && !c.Ethereum.TLS.verifiesClients()
}

func (t *TLSConfig) verifiesClients() bool { return t != nil && t.ClientCA != "" }

// KeyNames returns the configured key names, sorted.
func (c *Config) KeyNames() []string {
	names := make([]string, 0, len(c.Keys))
	for n := range c.Keys {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// IsLoopback reports whether a listen address binds only to loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
