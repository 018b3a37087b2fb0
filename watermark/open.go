package watermark

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"sync"
)

// Opener opens a store from its URL (file:///dir, postgres://...).
type Opener func(ctx context.Context, u *url.URL) (Store, error)

var (
	regMu   sync.RWMutex
	openers = map[string]Opener{}
)

// Register makes a store available under a URL scheme; registering a scheme twice panics.
func Register(scheme string, o Opener) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := openers[scheme]; dup {
		panic("watermark: scheme " + scheme + " registered twice")
	}
	openers[scheme] = o
}

// Open opens the store named by rawURL. An unknown scheme is an error.
func Open(ctx context.Context, rawURL string) (Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("watermark %q: %v", rawURL, err)
	}
	regMu.RLock()
	o, ok := openers[u.Scheme]
	known := make([]string, 0, len(openers))
	for s := range openers {
		known = append(known, s)
	}
	regMu.RUnlock()
	if !ok {
		sort.Strings(known)
		return nil, fmt.Errorf("watermark %q: unknown scheme %q (known: %v)", u.Redacted(), u.Scheme, known)
	}
	return o(ctx, u)
}
