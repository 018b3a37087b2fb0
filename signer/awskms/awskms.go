// Package awskms signs with secp256k1 and P-256 keys held in AWS KMS (scheme "awskms"), creates such keys, and seals local keys with KMS data keys.
//
// Accepted key references (DESIGN §4):
//
//	awskms:///alias/baker?region=eu-west-1        alias, region given
//	awskms:///1234abcd-12ab-34cd-56ef-1234567890ab key id; region from the AWS config chain
//	awskms:///arn:aws:kms:eu-west-1:111122223333:key/1234abcd-…   ARN; region from the ARN
//	awskms://127.0.0.1:4599/alias/baker           endpoint override: http for a loopback host, https otherwise
//	awskms:///alias/baker?endpoint=https://vpce-….kms.eu-west-1.vpce.amazonaws.com
//
// Query parameters: region, endpoint (exact URL), profile (shared config
// profile), timeout (deadline of each KMS call, a Go duration, default 5s).
// Unknown parameters are errors. Credentials and, when no region is given,
// the region come from the standard AWS configuration chain (environment,
// shared config and credentials files, web identity, instance role). With an
// endpoint override and no region anywhere, us-east-1 is used for signing
// requests (local emulators ignore it).
package awskms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/keyward/keyward/signer"
)

// Scheme is the key URI scheme this package serves.
const Scheme = "awskms"

// DefaultTimeout is the deadline of each KMS call unless the key reference
// sets ?timeout=.
const DefaultTimeout = 5 * time.Second

// Errors returned when opening a key. Check with errors.Is. Failures reaching
// KMS wrap signer.ErrUnavailable instead.
var (
	// ErrBadRef means the awskms key reference is malformed.
	ErrBadRef = errors.New("invalid awskms key reference")
	// ErrKeyNotFound means KMS knows no key by that id, ARN or alias.
	ErrKeyNotFound = errors.New("KMS key not found")
	// ErrKeyNotUsable means the key is disabled, pending deletion or otherwise not Enabled.
	ErrKeyNotUsable = errors.New("KMS key is not enabled")
	// ErrUnsupportedKeySpec means the key is not ECC_SECG_P256K1 or ECC_NIST_P256.
	ErrUnsupportedKeySpec = errors.New("unsupported KMS key spec (want ECC_SECG_P256K1 or ECC_NIST_P256)")
	// ErrKeyUsage means the key's usage is not SIGN_VERIFY.
	ErrKeyUsage = errors.New("KMS key usage is not SIGN_VERIFY")
	// ErrBadPublicKey means KMS returned a public key keyward cannot parse or that does not match the key spec.
	ErrBadPublicKey = errors.New("KMS returned an invalid public key")
)

func init() {
	signer.Register(Backend{})
	signer.RegisterSealer(Scheme, Sealer{})
}

// Backend opens awskms keys. It is registered for the "awskms" scheme.
type Backend struct{}

var _ signer.Backend = Backend{}

// Scheme returns "awskms".
func (Backend) Scheme() string { return Scheme }

// Open builds a KMS client for u and opens the key: one DescribeKey and one
// GetPublicKey.
func (Backend) Open(ctx context.Context, u *signer.URI) (signer.Key, error) {
	r, err := parseRef(u)
	if err != nil {
		return nil, err
	}
	c, err := newClient(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("awskms %s: %w", r.keyID, err)
	}
	return openKey(ctx, r, c)
}

// OpenWithClient opens the key named by u (its path and timeout; region and
// endpoint are ignored) through c. Tests use it with a fake client.
func OpenWithClient(ctx context.Context, u *signer.URI, c KMSClient) (*Key, error) {
	r, err := parseRef(u)
	if err != nil {
		return nil, err
	}
	return openKey(ctx, r, c)
}

// ref is a parsed awskms key reference.
type ref struct {
	keyID    string // as written: "alias/NAME", a key id or an ARN
	region   string // from ?region= or the ARN; "" = config chain
	endpoint string // "" = the AWS endpoint for the region
	profile  string
	timeout  time.Duration
}

var knownParams = map[string]bool{"region": true, "endpoint": true, "profile": true, "timeout": true}

func parseRef(u *signer.URI) (ref, error) {
	bad := func(format string, a ...any) (ref, error) {
		return ref{}, fmt.Errorf("%w %q: %s", ErrBadRef, u.Redacted(), fmt.Sprintf(format, a...))
	}
	if u.Scheme != Scheme {
		return bad("scheme is %q, want %q", u.Scheme, Scheme)
	}
	if u.Attrs != nil {
		return bad("want awskms:///alias/NAME, awskms:///<key id or ARN> or awskms://HOST:PORT/<key>")
	}
	for name, vs := range u.Query {
		if !knownParams[name] {
			return bad("unknown parameter %q (known: region, endpoint, profile, timeout)", name)
		}
		if len(vs) != 1 {
			return bad("parameter %q given %d times", name, len(vs))
		}
	}
	r := ref{
		keyID:   strings.TrimPrefix(u.Path, "/"),
		region:  u.Param("region"),
		profile: u.Param("profile"),
		timeout: DefaultTimeout,
	}
	if r.keyID == "" {
		return bad("no key id, ARN or alias in the path")
	}
	if strings.HasPrefix(r.keyID, "alias/") && len(r.keyID) == len("alias/") {
		return bad("empty alias name")
	}
	if strings.HasPrefix(r.keyID, "arn:") {
		parts := strings.SplitN(r.keyID, ":", 6)
		if len(parts) != 6 || parts[2] != "kms" || parts[3] == "" || parts[5] == "" {
			return bad("malformed KMS ARN (want arn:PARTITION:kms:REGION:ACCOUNT:key/ID or …:alias/NAME)")
		}
		switch {
		case r.region == "":
			r.region = parts[3]
		case r.region != parts[3]:
			return bad("region %q differs from the ARN's region %q", r.region, parts[3])
		}
	}
	if t := u.Param("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 || d > 10*time.Minute {
			return bad("timeout %q is not a duration between 0 and 10m", t)
		}
		r.timeout = d
	}
	ep := u.Param("endpoint")
	switch {
	case u.Host != "" && ep != "":
		return bad("give the endpoint either as the URI host or as ?endpoint=, not both")
	case u.Host != "":
		r.endpoint = endpointForHost(u.Host)
	case ep != "":
		pu, err := url.Parse(ep)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return bad("endpoint %q is not an http(s) URL", ep)
		}
		r.endpoint = ep
	}
	return r, nil
}

// endpointForHost makes the endpoint URL for a URI host: plain http for a
// loopback address (a local emulator), https otherwise.
func endpointForHost(host string) string {
	if isLoopback(host) {
		return "http://" + host
	}
	return "https://" + host
}

func isLoopback(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func logger() *slog.Logger { return slog.Default().With("backend", Scheme) }
