package signer

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyward/keyward/internal/registry"
)

// ErrNoSealer means no Sealer is registered for the scheme of a seal reference.
var ErrNoSealer = errors.New("no sealer registered for scheme")

// Sealer wraps data keys with an external key service (envelope encryption,
// e.g. AWS KMS GenerateDataKey/Decrypt) for sealed local key files. ref is
// the full seal reference ("awskms:///alias/x"). Seal returns a fresh 32-byte
// data key and its encrypted form; Unseal returns the 32-byte data key. The
// caller zeroes the data key after use.
type Sealer interface {
	Seal(ctx context.Context, ref string) (dataKey, encryptedDataKey []byte, err error)
	Unseal(ctx context.Context, ref string, encryptedDataKey []byte) ([]byte, error)
}

var sealers = registry.New[Sealer]("signer: sealer for scheme")

// RegisterSealer makes s the sealer for seal references of the given URI
// scheme. Registering a scheme twice panics.
func RegisterSealer(scheme string, s Sealer) { sealers.Register(scheme, s) }

// SealerFor returns the sealer registered for the scheme of the seal
// reference ref, or an error wrapping ErrNoSealer.
func SealerFor(ref string) (Sealer, error) {
	u, err := ParseURI(ref)
	if err != nil {
		return nil, err
	}
	s, ok := sealers.Lookup(u.Scheme)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrNoSealer, u.Scheme)
	}
	return s, nil
}
