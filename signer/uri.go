package signer

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/keyward/keyward/internal/redact"
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

// printableParams are the query parameters, and pathAttrs the path
// attributes (RFC 7512) of opaque URIs, whose values hold no secret and are
// printed. Every other value (pin-value, passphrase, a token, a misspelt
// name) is printed as REDACTED: names are compared decoded and lower-cased,
// as a backend may read them. A backend that adds a parameter whose value is
// worth printing adds it here.
var (
	printableParams = map[string]bool{"module-path": true, "module-name": true, "pin-source": true, "passphrase-source": true,
		"region": true, "endpoint": true, "profile": true, "timeout": true, "pool-size": true}
	pathAttrs = map[string]bool{"token": true, "manufacturer": true, "serial": true, "model": true, "object": true, "type": true,
		"id": true, "slot-id": true, "slot-description": true, "slot-manufacturer": true,
		"library-manufacturer": true, "library-description": true, "library-version": true}
)

// ParseURI parses a key reference.
func ParseURI(s string) (*URI, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexByte(s, ':')
	if i <= 0 {
		return nil, fmt.Errorf("key ref %q: not a URI (want scheme:..., e.g. file:///path/key.json)", redactURI(s))
	}
	scheme := strings.ToLower(s[:i])
	if !validScheme(scheme) {
		return nil, fmt.Errorf("key ref %q: invalid scheme", redactURI(s))
	}
	rest := s[i+1:]
	u := &URI{Scheme: scheme, Query: url.Values{}, raw: s}
	if strings.HasPrefix(rest, "//") {
		pu, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("key ref %q: %s", redactURI(s), describe(err))
		}
		u.Host = pu.Host
		u.Path = pu.Path
		if u.Query, err = url.ParseQuery(pu.RawQuery); err != nil { // pu.Query() drops malformed pairs
			return nil, fmt.Errorf("key ref %q: query: %s", redactURI(s), describe(err))
		}
		return u, nil
	}
	attrs, query, _ := strings.Cut(rest, "?")
	u.Attrs = map[string]string{}
	for i, part := range strings.Split(attrs, ";") {
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("key ref %q: attribute %d is not name=value", redactURI(s), i+1)
		}
		dv, err := url.PathUnescape(v)
		if err != nil {
			return nil, fmt.Errorf("key ref %q: attribute %q: %s", redactURI(s), k, describe(err))
		}
		if _, dup := u.Attrs[k]; dup {
			return nil, fmt.Errorf("key ref %q: attribute %q given twice", redactURI(s), k)
		}
		u.Attrs[k] = dv
	}
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return nil, fmt.Errorf("key ref %q: query: %s", redactURI(s), describe(err))
		}
		u.Query = q
	}
	return u, nil
}

// String returns the reference as given.
func (u *URI) String() string { return u.raw }

// Redacted returns the reference with every secret hidden (see
// printableParams; userinfo and fragments too), safe for logs and errors.
func (u *URI) Redacted() string { return redactURI(u.raw) }

// Param returns the query parameter name, or "".
func (u *URI) Param(name string) string { return u.Query.Get(name) }

// redactURI hides, in a reference as written (parsed or not), the values of
// query parameters and opaque-URI path attributes other than the printable
// ones, the userinfo of a hierarchical URI and its fragment.
func redactURI(s string) string {
	s = strings.TrimSpace(s)
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || !validScheme(strings.ToLower(scheme)) {
		return "REDACTED" // not a URI: nothing is known to be harmless
	}
	var b strings.Builder
	b.WriteString(scheme + ":")
	if strings.HasPrefix(rest, "//") {
		// The userinfo ends at the last "@", wherever it is: a secret
		// written there without %-escapes may hold "/", "?" or "#".
		userinfo, rest, ok := redact.Userinfo(rest[2:])
		if !ok {
			return s[:len(scheme)+3] + redact.Placeholder
		}
		if userinfo != "" {
			userinfo = redact.Placeholder + "@"
		}
		rest, _, hasFrag := strings.Cut(rest, "#")
		base, q, hasQ := strings.Cut(rest, "?")
		authority, path, hasPath := strings.Cut(base, "/")
		b.WriteString("//" + userinfo + authority)
		if hasPath {
			b.WriteString("/" + path)
		}
		if hasQ {
			b.WriteString("?" + redactPairs(q, "&;", printableParams, url.QueryUnescape))
		}
		if hasFrag {
			b.WriteString("#REDACTED")
		}
		return b.String()
	}
	attrs, q, hasQ := strings.Cut(rest, "?")
	b.WriteString(redactPairs(attrs, ";", pathAttrs, url.PathUnescape))
	if hasQ {
		b.WriteString("?" + redactPairs(q, "&;", printableParams, url.QueryUnescape))
	}
	return b.String()
}

// validScheme reports whether a lower-cased scheme has only the characters
// RFC 3986 allows (a reference whose scheme does not cannot be split into
// its parts, so none of it is printed).
func validScheme(scheme string) bool {
	if scheme == "" {
		return false
	}
	for _, r := range scheme {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// redactPairs rewrites name=value pairs separated by any of seps, keeping
// the value only when the name, decoded and lower-cased, is printable and
// the decoded value holds nothing that could be userinfo or another pair
// run into it ("@", "?", "=", "&", ";", "#": "module-path=/m.so?pin-value=1"
// is a typo that would otherwise print the PIN).
func redactPairs(s, seps string, printable map[string]bool, unescape func(string) (string, error)) string {
	var b strings.Builder
	for s != "" {
		part := s
		sep := ""
		if i := strings.IndexAny(s, seps); i >= 0 {
			part, sep, s = s[:i], s[i:i+1], s[i+1:]
		} else {
			s = ""
		}
		k, v, hasV := strings.Cut(part, "=")
		name, err := unescape(k)
		known := err == nil && printable[strings.ToLower(name)]
		switch {
		case !hasV && !known && k != "":
			k = "REDACTED" // a bare word may be a secret written without its name
		case hasV:
			if dv, err := unescape(v); err != nil || !known || strings.ContainsAny(dv, "@?=&;#") {
				v = "REDACTED"
			}
		}
		b.WriteString(k)
		if hasV {
			b.WriteString("=" + v)
		}
		b.WriteString(sep)
	}
	return b.String()
}

// describe says what is wrong with a URI without quoting it: net/url's
// errors hold the whole input, the bad %-escape or a piece of the host.
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var esc url.EscapeError
	var host url.InvalidHostError
	switch {
	case errors.As(err, &esc):
		return "malformed %-escape"
	case errors.As(err, &host):
		return "invalid character in host"
	}
	msg, _, _ := strings.Cut(err.Error(), `"`) // "invalid port \":x\" after host": drop the quoted input
	return strings.TrimSpace(msg)
}
