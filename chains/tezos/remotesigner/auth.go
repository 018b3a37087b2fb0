package remotesigner

import (
	"errors"
	"fmt"
	"strings"

	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/signer"
)

// Authorizer checks Octez request authentication: a signature over
// 0x04 ‖ 0x01 ‖ pkh (21 bytes) ‖ payload by one of the authorized keys.
type Authorizer struct {
	pkhs []string                    // as listed by GET /authorized_keys
	keys map[string]signer.PublicKey // pkh → public key when known
	hash map[string]bool             // pkh given only as a hash (tz2/tz3: the key is recovered from the signature)
}

// Errors of authentication.
var (
	ErrAuthMissing = errors.New("authentication required: add ?authentication=<signature> by an authorized key")
	ErrAuthInvalid = errors.New("authentication signature is not by an authorized key")
)

// NewAuthorizer parses tz1/tz2/tz3 public keys (edpk/sppk/p2pk) or key
// hashes. tz1 hashes are refused: an Ed25519 public key cannot be recovered
// from a signature, so the edpk must be given.
func NewAuthorizer(entries []string) (*Authorizer, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	a := &Authorizer{keys: map[string]signer.PublicKey{}, hash: map[string]bool{}}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if pub, err := tezos.ParsePublicKey(e); err == nil {
			pkh, _ := tezos.PublicKeyHash(pub)
			if _, dup := a.keys[pkh]; !dup {
				a.pkhs = append(a.pkhs, pkh)
			}
			a.keys[pkh] = pub
			continue
		}
		c, _, err := tezos.ParsePublicKeyHash(e)
		if err != nil {
			return nil, fmt.Errorf("tezos.authorized_keys: %q is neither a public key nor a tz1/tz2/tz3 address", e)
		}
		if c == signer.Ed25519 {
			return nil, fmt.Errorf("tezos.authorized_keys: %s: give the edpk public key of a tz1 key, not its hash (Ed25519 keys cannot be recovered from a signature)", e)
		}
		if !a.hash[e] {
			a.pkhs = append(a.pkhs, e)
		}
		a.hash[e] = true
	}
	return a, nil
}

// PKHs lists the authorized key hashes.
func (a *Authorizer) PKHs() []string { return a.pkhs }

// Check verifies sigText over the request for (target pkh, payload) and
// returns the authenticating pkh.
func (a *Authorizer) Check(sigText string, target []byte, payload []byte) (string, error) {
	if sigText == "" {
		return "", ErrAuthMissing
	}
	curve, sig, err := tezos.DecodeSignature(sigText)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrAuthInvalid, err)
	}
	msg := make([]byte, 0, 2+len(target)+len(payload))
	msg = append(msg, 0x04, 0x01)
	msg = append(msg, target...)
	msg = append(msg, payload...)
	d := tezos.Digest(msg)
	for _, pkh := range a.pkhs {
		if pub, ok := a.keys[pkh]; ok {
			if curve != signer.CurveUnknown && curve != pub.Curve {
				continue
			}
			if signer.Verify(pub, d[:], sig) {
				return pkh, nil
			}
		}
	}
	// Hash-only entries: recover candidate keys from the signature.
	for _, c := range []signer.Curve{signer.Secp256k1, signer.P256} {
		if curve != signer.CurveUnknown && curve != c {
			continue
		}
		for _, pub := range signer.RecoverPublicKeys(c, d[:], sig) {
			pkh, err := tezos.PublicKeyHash(pub)
			if err == nil && a.hash[pkh] && signer.Verify(pub, d[:], sig) {
				return pkh, nil
			}
		}
	}
	return "", ErrAuthInvalid
}
