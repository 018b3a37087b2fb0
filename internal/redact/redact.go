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
// The userinfo is what comes before the last "@" of hier; its password is
// replaced by Placeholder and its user name kept. When that part holds
// "/", "?" or "#", which part is the secret cannot be told: the "@" may
// end a password written without %-escapes ("keyward:pa/ss@db", common
// with generated base64 passwords) or stand in a path, a query value or a
// fragment ("…?password=a@b"). Then ok is false and nothing of hier may be
// printed.
func Userinfo(hier string) (prefix, rest string, ok bool) {
	at := strings.LastIndexByte(hier, '@')
	if at < 0 {
		return "", hier, true
	}
	if strings.ContainsAny(hier[:at], "/?#") {
		return "", "", false
	}
	user, _, hasPass := strings.Cut(hier[:at], ":")
	if hasPass {
		user += ":" + Placeholder
	}
	return user + "@", hier[at+1:], true
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
	user, rest, ok := Userinfo(raw[len(m):])
	if !ok {
		return m + Placeholder
	}
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
