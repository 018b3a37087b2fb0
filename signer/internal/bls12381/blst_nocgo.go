//go:build !cgo

package bls12381

// Available reports whether this build can use BLS12-381 keys.
const Available = false

// SecretKey is a BLS12-381 secret key; a build without cgo has none.
type SecretKey struct{}

// SecretKeyFromLE fails with ErrUnavailable in a build without cgo.
func SecretKeyFromLE([]byte) (*SecretKey, error) { return nil, ErrUnavailable }

// KeyGen fails with ErrUnavailable in a build without cgo.
func KeyGen([]byte) (*SecretKey, error) { return nil, ErrUnavailable }

// LE is never called: no SecretKey exists without cgo.
func (*SecretKey) LE() []byte { return nil }

// PublicKey is never called: no SecretKey exists without cgo.
func (*SecretKey) PublicKey() []byte { return nil }

// Sign is never called: no SecretKey exists without cgo.
func (*SecretKey) Sign(_, _, _ []byte) []byte { return nil }

// Zero does nothing: no SecretKey exists without cgo.
func (*SecretKey) Zero() {}

// PublicKey is a validated public key; a build without cgo has none.
type PublicKey struct{}

// ParsePublicKey fails with ErrUnavailable in a build without cgo.
func ParsePublicKey([]byte) (*PublicKey, error) { return nil, ErrUnavailable }

// Prepared is the public-key half of a verification; a build without cgo has none.
type Prepared struct{}

// Prepare is never called: no PublicKey exists without cgo.
func (*PublicKey) Prepare(_, _, _ []byte) *Prepared { return &Prepared{} }

// Check is false: no signature verifies without cgo.
func (*Prepared) Check([]byte) bool { return false }

// Verify is false: no signature verifies without cgo.
func (*PublicKey) Verify(_, _, _, _ []byte) bool { return false }
