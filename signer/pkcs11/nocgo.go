//go:build !cgo

package pkcs11

import (
	"context"
	"fmt"

	"github.com/keyward/keyward/signer"
)

func init() { signer.Register(stub{}) }

// stub stands in for the backend in builds without cgo: a configured pkcs11:
// key fails at start-up with ErrNotSupported instead of an unknown scheme.
type stub struct{}

var _ signer.Backend = stub{}

func (stub) Scheme() string { return Scheme }

func (stub) Open(_ context.Context, u *signer.URI) (signer.Key, error) {
	return nil, fmt.Errorf("pkcs11 %s: %w", u.Redacted(), ErrNotSupported)
}

// CreateKey always fails with ErrNotSupported in a build without cgo.
func CreateKey(_ context.Context, ref string, _ signer.Curve) (signer.Key, error) {
	u, err := signer.ParseURI(ref)
	if err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("pkcs11 %s: %w", u.Redacted(), ErrNotSupported)
}
