// Package redact hides the secrets of connection and key URLs, parsed or not, so that errors and logs can name them.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Placeholder replaces every hidden value.
const Placeholder = "REDACTED"

var (
	urlScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)
	// dsnPassword is a password or sslpassword setting of a libpq
	// key=value DSN: a quoted value with backslash escapes, or one up to
	// the next unescaped space.
	dsnPassword = regexp.MustCompile(`(?i)(\w*password\s*=\s*)('(?:[^'\\]|\\.)*'?|(?:[^\s\\]|\\.)*)`)
)

// Userinfo splits the part of a hierarchical URL after "scheme://" into
// its printable userinfo prefix (ending in "@", or empty) and the rest.
//
// The userinfo ends at the last "@" of hier, not at the first "/", "?" or
// "#": a password written without %-escapes ("keyward:pa/ss@db", common
// with generated base64 passwords) is hidden whole. A password is replaced
// by Placeholder; a user name is kept unless it holds "/", "?" or "#" (then
// the "@" may belong to the path, query or fragment, and all that comes
// before it is hidden).
func Userinfo(hier string) (prefix, rest string) {
	at := strings.LastIndexByte(hier, '@')
	if at < 0 {
		return "", hier
	}
	user, _, hasPass := strings.Cut(hier[:at], ":")
	switch {
	case strings.ContainsAny(user, "/?#"):
		prefix = Placeholder
	case hasPass:
		prefix = user + ":" + Placeholder
	default:
		prefix = user
	}
	return prefix + "@", hier[at+1:]
}

// StoreURL returns a store URL (postgres://…, file:///…), parsed or not,
// fit for errors and logs: the password of its userinfo, the values of
// query parameters whose decoded name contains "password" (password,
// sslpassword) or that do not decode, and its fragment read REDACTED. In a
// PostgreSQL key=value DSN ("host=db password=…") the password settings do.
func StoreURL(raw string) string {
	m := urlScheme.FindString(raw)
	if m == "" {
		return dsnPassword.ReplaceAllString(raw, "${1}"+Placeholder)
	}
	user, rest := Userinfo(raw[len(m):])
	rest, _, hasFrag := strings.Cut(rest, "#")
	rest, q, hasQ := strings.Cut(rest, "?")
	var b strings.Builder
	b.WriteString(m + user + rest)
	if hasQ {
		pairs := strings.Split(q, "&")
		for i, p := range pairs {
			k, _, hasV := strings.Cut(p, "=")
			name, err := url.QueryUnescape(k)
			if hasV && (err != nil || strings.Contains(strings.ToLower(name), "password")) {
				pairs[i] = k + "=" + Placeholder
			}
		}
		b.WriteString("?" + strings.Join(pairs, "&"))
	}
	if hasFrag {
		b.WriteString("#" + Placeholder)
	}
	return b.String()
}
