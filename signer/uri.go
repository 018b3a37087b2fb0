package signer

import (
	"fmt"
	"net/url"
	"strings"
)

// URI is a parsed key reference. It is the one place key URIs are parsed.
//
// Accepted forms (DESIGN §4):
//
//	file:///var/lib/keyward/keys/baker.json[?passphrase-source=FILE]
//	awskms:///alias/baker?region=eu-west-1
//	awskms:///<key-id or ARN>
//	awskms://127.0.0.1:4599/<key-id or alias/NAME>     (endpoint override)
//	awskms:///alias/baker?endpoint=https://kms.example
//	pkcs11:token=keyward;object=baker?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/run/pin
//
// Hierarchical URIs (scheme://host/path) fill Host and Path; RFC 7512 style
// opaque URIs (scheme:attr=v;attr=v) fill Attrs. Query parameters go to Query
// in both cases.
type URI struct {
	Scheme string
	Host   string            // "" when absent
	Path   string            // unescaped; leading "/" kept
	Attrs  map[string]string // path attributes of opaque URIs (pkcs11)
	Query  url.Values
	raw    string
}

// secretParams are query parameters never printed.
var secretParams = map[string]bool{"pin-value": true, "passphrase": true}

// ParseURI parses a key reference.
func ParseURI(s string) (*URI, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexByte(s, ':')
	if i <= 0 {
		return nil, fmt.Errorf("key ref %q: not a URI (want scheme:..., e.g. file:///path/key.json)", redact(s))
	}
	scheme := strings.ToLower(s[:i])
	for _, r := range scheme {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.') {
			return nil, fmt.Errorf("key ref %q: invalid scheme", redact(s))
		}
	}
	rest := s[i+1:]
	u := &URI{Scheme: scheme, Query: url.Values{}, raw: s}
	if strings.HasPrefix(rest, "//") {
		pu, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("key ref %q: %v", redact(s), err)
		}
		u.Host = pu.Host
		u.Path = pu.Path
		u.Query = pu.Query()
		return u, nil
	}
	attrs, query, _ := strings.Cut(rest, "?")
	u.Attrs = map[string]string{}
	for _, part := range strings.Split(attrs, ";") {
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("key ref %q: attribute %q is not name=value", redact(s), part)
		}
		dv, err := url.PathUnescape(v)
		if err != nil {
			return nil, fmt.Errorf("key ref %q: attribute %q: %v", redact(s), k, err)
		}
		if _, dup := u.Attrs[k]; dup {
			return nil, fmt.Errorf("key ref %q: attribute %q given twice", redact(s), k)
		}
		u.Attrs[k] = dv
	}
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return nil, fmt.Errorf("key ref %q: query: %v", redact(s), err)
		}
		u.Query = q
	}
	return u, nil
}

// String returns the reference as given.
func (u *URI) String() string { return u.raw }

// Redacted returns the reference with secret query values (pin-value) hidden,
// safe for logs and errors.
func (u *URI) Redacted() string { return redact(u.raw) }

// Param returns the query parameter name, or "".
func (u *URI) Param(name string) string { return u.Query.Get(name) }

func redact(s string) string {
	base, q, ok := strings.Cut(s, "?")
	if !ok {
		return s
	}
	parts := strings.Split(q, "&")
	for i, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		if secretParams[k] {
			parts[i] = k + "=REDACTED"
		}
	}
	return base + "?" + strings.Join(parts, "&")
}
