//go:build cgo

package pkcs11

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	p11 "github.com/miekg/pkcs11"

	"github.com/keyward/keyward/signer"
)

// generatedIDLen is the length of the random CKA_ID given to a new key pair.
const generatedIDLen = 8

// CreateKey generates a key pair of curve c inside the token named by ref (a
// pkcs11: URI whose object= is the new key's label; id= optional, random
// otherwise) and returns it opened. The private key is a token object,
// sensitive and not extractable, and can only sign. It refuses with
// ErrKeyExists when an object with that label (or the given id) exists.
func CreateKey(ctx context.Context, refStr string, c signer.Curve) (signer.Key, error) {
	u, err := signer.ParseURI(refStr)
	if err != nil {
		return nil, err
	}
	r, err := parseRef(u)
	if err != nil {
		return nil, err
	}
	if r.object == "" {
		return nil, fmt.Errorf("pkcs11 %s: %w: object= (the new key's label) is required", r.redacted, ErrBadRef)
	}
	params, err := ecParams(c)
	if err != nil {
		return nil, fmt.Errorf("pkcs11 %s: %w", r.redacted, err)
	}
	if err := r.loadPIN(); err != nil {
		return nil, err
	}
	m, err := loadModule(r.modulePath)
	if err != nil {
		return nil, fmt.Errorf("pkcs11 %s: %w", r.redacted, err)
	}
	slot, label, err := m.findSlot(r)
	if err != nil {
		return nil, err
	}
	h, err := m.openSession(slot, p11.CKF_RW_SESSION, r.pin)
	if err != nil {
		return nil, fmt.Errorf("pkcs11 %s: token %q: %w", r.redacted, label, err)
	}
	defer func() { _ = m.ctx.CloseSession(h) }()

	taken := [][]*p11.Attribute{{p11.NewAttribute(p11.CKA_LABEL, r.object)}}
	if r.hasID {
		taken = append(taken, []*p11.Attribute{p11.NewAttribute(p11.CKA_ID, r.id)})
	}
	for _, tmpl := range taken {
		objs, err := m.findObjects(h, tmpl, 1)
		if err != nil {
			return nil, fmt.Errorf("pkcs11 %s: token %q: %w", r.redacted, label, err)
		}
		if len(objs) > 0 {
			return nil, fmt.Errorf("pkcs11 %s: token %q: %w", r.redacted, label, ErrKeyExists)
		}
	}
	id := r.id
	if !r.hasID {
		id = make([]byte, generatedIDLen)
		if _, err := rand.Read(id); err != nil {
			return nil, err
		}
	}
	keyType, mech := uint(p11.CKK_EC), uint(p11.CKM_EC_KEY_PAIR_GEN)
	if c == signer.Ed25519 {
		keyType, mech = ckkECEdwards, ckmECEdwardsKeyPairGen
	}
	pubTmpl := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, keyType),
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_PRIVATE, false),
		p11.NewAttribute(p11.CKA_VERIFY, true),
		p11.NewAttribute(p11.CKA_EC_PARAMS, params),
		p11.NewAttribute(p11.CKA_LABEL, r.object),
		p11.NewAttribute(p11.CKA_ID, id),
	}
	privTmpl := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, keyType),
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
		p11.NewAttribute(p11.CKA_SIGN, true),
		p11.NewAttribute(p11.CKA_DECRYPT, false),
		p11.NewAttribute(p11.CKA_DERIVE, false),
		p11.NewAttribute(p11.CKA_LABEL, r.object),
		p11.NewAttribute(p11.CKA_ID, id),
	}
	if _, _, err := m.ctx.GenerateKeyPair(h, []*p11.Mechanism{p11.NewMechanism(mech, nil)}, pubTmpl, privTmpl); err != nil {
		if errors.Is(err, p11.Error(p11.CKR_MECHANISM_INVALID)) || errors.Is(err, p11.Error(p11.CKR_CURVE_NOT_SUPPORTED)) ||
			errors.Is(err, p11.Error(p11.CKR_DOMAIN_PARAMS_INVALID)) || errors.Is(err, p11.Error(p11.CKR_TEMPLATE_INCONSISTENT)) {
			err = fmt.Errorf("%w: %v not supported by the token: %w", ErrUnsupportedKey, c, err)
		}
		return nil, fmt.Errorf("pkcs11 %s: token %q: C_GenerateKeyPair: %w", r.redacted, label, err)
	}
	r.id, r.hasID = id, true
	k, err := openKey(ctx, r)
	if err != nil {
		return nil, err
	}
	return k, nil
}
