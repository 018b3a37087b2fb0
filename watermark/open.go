package watermark

import (
	"context"
	"fmt"
	"net/url"

	"github.com/keyward/keyward/internal/redact"
	"github.com/keyward/keyward/internal/registry"
)

// Opener opens a store from its URL (file:///dir, postgres://...).
type Opener func(ctx context.Context, u *url.URL) (Store, error)

var (
	openers   = registry.New[Opener]("watermark: scheme")
	readOnlys = registry.New[Opener]("watermark: read-only scheme")
)

// Register makes a store available under a URL scheme; registering a scheme twice panics.
func Register(scheme string, o Opener) { openers.Register(scheme, o) }

// RegisterReadOnly registers the read-only opener of a scheme already
// registered: for stores that hold a lock only one process may take (the
// file store), a view that takes none, for tools that run beside the
// daemon. Registering one twice panics.
func RegisterReadOnly(scheme string, o Opener) { readOnlys.Register(scheme, o) }

// Open opens the store named by rawURL. An unknown scheme is an error.
func Open(ctx context.Context, rawURL string) (Store, error) {
	return open(ctx, rawURL, false)
}

// OpenReadOnly opens the store named by rawURL for reading beside a
// running keyward: it takes no lock and writes nothing, and its writing
// methods fail. A scheme without a read-only opener (PostgreSQL, shared by
// many instances and locking nothing of its own) is opened as Open does.
func OpenReadOnly(ctx context.Context, rawURL string) (Store, error) {
	return open(ctx, rawURL, true)
}

func open(ctx context.Context, rawURL string, readOnly bool) (Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil { // net/url's error quotes the whole URL
		return nil, fmt.Errorf("watermark %q: not a valid URL (want file:///dir or postgres://user@host/db)", RedactURL(rawURL))
	}
	o, ok := openers.Lookup(u.Scheme)
	if ro, has := readOnlys.Lookup(u.Scheme); readOnly && has {
		o = ro
	}
	if !ok {
		return nil, fmt.Errorf("watermark %q: unknown scheme %q (known: %v)", RedactURL(rawURL), u.Scheme, openers.Names())
	}
	return o(ctx, u)
}

// RedactURL returns a watermark store URL, parsed or not, fit for errors
// and logs: the password of its userinfo, the values of query parameters
// whose decoded name contains "password" (password, sslpassword) and its
// fragment read REDACTED; in a PostgreSQL key=value DSN ("host=db
// password=…"), so do the password settings. Store backends name their URL
// with it.
func RedactURL(raw string) string { return redact.StoreURL(raw) }
