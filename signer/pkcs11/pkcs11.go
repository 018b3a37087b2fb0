//go:build cgo

package pkcs11

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	p11 "github.com/miekg/pkcs11"

	"github.com/keyward/keyward/signer"
)

// The backend and its Key: opening a key (discovering its curve and public
// key), signing on a pooled session (pool.go), readiness and close.

// PKCS#11 3.0 constants missing from miekg/pkcs11 v1.1.2.
const (
	ckkECEdwards           = 0x40
	ckmECEdwardsKeyPairGen = 0x1055
	ckmEdDSA               = 0x1057
)

func init() { signer.Register(backend{}) }

// backend opens pkcs11: keys.
type backend struct{}

var _ signer.Backend = backend{}

func (backend) Scheme() string { return Scheme }

// Open opens the private key named by u, reads its public key and checks with
// one signature that the pair matches. See the package comment for the URI.
func (backend) Open(ctx context.Context, u *signer.URI) (signer.Key, error) {
	r, err := parseRef(u)
	if err != nil {
		return nil, err
	}
	if err := r.loadPIN(); err != nil {
		return nil, err
	}
	k, err := openKey(ctx, r)
	if err != nil {
		return nil, err
	}
	return k, nil
}

// Key is a private key in a PKCS#11 token. It is safe for concurrent use:
// each signature runs on one of the key's pooled sessions, without a global lock.
type Key struct {
	mod    *module
	sel    *ref          // the token selection, to find a reinserted token again
	slot   atomic.Uint64 // slot holding the token
	token  string        // token label, for errors
	ref    string        // redacted reference
	pin    string
	object string
	id     []byte
	hasID  bool
	pub    signer.PublicKey
	mech   uint

	priv atomic.Uint64 // private key object handle; 0 = look it up again

	// sessions holds poolSize entries: an open, logged-in session or nil
	// (opened on first use). Taking an entry is the only synchronization.
	sessions  chan *session
	poolSize  int
	closeOnce sync.Once
}

var (
	_ signer.Key              = (*Key)(nil)
	_ signer.ReadinessChecker = (*Key)(nil)
	_ signer.Closer           = (*Key)(nil)
)

var errClosed = errors.New("key closed")

func openKey(ctx context.Context, r *ref) (*Key, error) {
	m, err := loadModule(r.modulePath)
	if err != nil {
		return nil, fmt.Errorf("pkcs11 %s: %w", r.redacted, err)
	}
	slot, label, err := m.findSlot(r)
	if err != nil {
		return nil, err
	}
	k := &Key{mod: m, sel: r, token: label, ref: r.redacted, pin: r.pin,
		object: r.object, id: r.id, hasID: r.hasID, poolSize: r.poolSize,
		sessions: make(chan *session, r.poolSize)}
	k.slot.Store(uint64(slot))
	h, err := m.openSession(slot, 0, r.pin)
	if err != nil {
		return nil, fmt.Errorf("pkcs11 %s: token %q: %w", r.redacted, label, err)
	}
	if err := k.discover(h); err != nil {
		_ = m.ctx.CloseSession(h)
		return nil, err
	}
	k.sessions <- &session{h: h}
	for i := 1; i < r.poolSize; i++ {
		k.sessions <- nil
	}
	// One signature proves the private key and the public key read belong together.
	digest := make([]byte, 32)
	_, _ = rand.Read(digest)
	if _, err := signer.SignDigest(ctx, k, digest); err != nil {
		_ = k.Close()
		return nil, fmt.Errorf("pkcs11 %s: self-test signature: %w", r.redacted, err)
	}
	return k, nil
}

// keyTemplate selects the key's objects of class cls by label and/or id.
func (k *Key) keyTemplate(cls uint) []*p11.Attribute {
	t := []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, cls)}
	if k.object != "" {
		t = append(t, p11.NewAttribute(p11.CKA_LABEL, k.object))
	}
	if k.hasID {
		t = append(t, p11.NewAttribute(p11.CKA_ID, k.id))
	}
	return t
}

// discover finds the private key, identifies its curve and reads its public key.
func (k *Key) discover(h p11.SessionHandle) error {
	c := k.mod.ctx
	objs, err := k.mod.findObjects(h, k.keyTemplate(p11.CKO_PRIVATE_KEY), 2)
	if err != nil {
		return fmt.Errorf("pkcs11 %s: %w", k.ref, err)
	}
	switch len(objs) {
	case 0:
		return fmt.Errorf("pkcs11 %s: token %q: %w", k.ref, k.token, ErrKeyNotFound)
	case 2:
		return fmt.Errorf("pkcs11 %s: token %q: %w: several private keys match (add id=)", k.ref, k.token, ErrAmbiguous)
	}
	priv := objs[0]
	attrs, err := c.GetAttributeValue(h, priv, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_KEY_TYPE, nil), p11.NewAttribute(p11.CKA_EC_PARAMS, nil), p11.NewAttribute(p11.CKA_ID, nil)})
	if err != nil {
		return fmt.Errorf("pkcs11 %s: %w: reading key type and CKA_EC_PARAMS: %w", k.ref, ErrUnsupportedKey, err)
	}
	kt := attrUint(attrs[0].Value)
	if kt != p11.CKK_EC && kt != ckkECEdwards {
		return fmt.Errorf("pkcs11 %s: %w: CKA_KEY_TYPE 0x%x", k.ref, ErrUnsupportedKey, kt)
	}
	curve, err := curveFromECParams(attrs[1].Value)
	if err != nil {
		return fmt.Errorf("pkcs11 %s: %w", k.ref, err)
	}
	if (curve == signer.Ed25519) != (kt == ckkECEdwards) {
		return fmt.Errorf("pkcs11 %s: %w: key type 0x%x with %v parameters", k.ref, ErrUnsupportedKey, kt, curve)
	}
	k.mech = p11.CKM_ECDSA
	if curve == signer.Ed25519 {
		k.mech = ckmEdDSA
	}
	pub, err := k.readPublic(h, priv, curve, attrs[2].Value)
	if err != nil {
		return err
	}
	k.pub = pub
	k.priv.Store(uint64(priv))
	return nil
}

// readPublic reads CKA_EC_POINT from the matching public key object (same
// CKA_ID when the private key has one, else same label), or from the private
// key object itself on modules that put it there.
func (k *Key) readPublic(h p11.SessionHandle, priv p11.ObjectHandle, curve signer.Curve, id []byte) (signer.PublicKey, error) {
	c := k.mod.ctx
	tmpl := []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY)}
	if len(id) > 0 {
		tmpl = append(tmpl, p11.NewAttribute(p11.CKA_ID, id))
	} else if k.object != "" {
		tmpl = append(tmpl, p11.NewAttribute(p11.CKA_LABEL, k.object))
	}
	objs, err := k.mod.findObjects(h, tmpl, 2)
	if err != nil {
		return signer.PublicKey{}, fmt.Errorf("pkcs11 %s: %w", k.ref, err)
	}
	if len(objs) == 2 {
		return signer.PublicKey{}, fmt.Errorf("pkcs11 %s: token %q: %w: several public keys match", k.ref, k.token, ErrAmbiguous)
	}
	src := priv
	if len(objs) == 1 {
		src = objs[0]
	}
	attrs, err := c.GetAttributeValue(h, src, []*p11.Attribute{p11.NewAttribute(p11.CKA_EC_POINT, nil)})
	if err != nil {
		return signer.PublicKey{}, fmt.Errorf("pkcs11 %s: token %q: %w: no public key object with CKA_EC_POINT (%w)", k.ref, k.token, ErrKeyNotFound, err)
	}
	pub, err := publicKeyFromECPoint(curve, attrs[0].Value)
	if err != nil {
		return signer.PublicKey{}, fmt.Errorf("pkcs11 %s: %w", k.ref, err)
	}
	return pub, nil
}

// attrUint decodes a CK_ULONG attribute value (native byte order).
func attrUint(b []byte) uint {
	switch len(b) {
	case 8:
		return uint(binary.NativeEndian.Uint64(b))
	case 4:
		return uint(binary.NativeEndian.Uint32(b))
	}
	return ^uint(0)
}

// PublicKey returns the key's public key, read when the key was opened.
func (k *Key) PublicKey() signer.PublicKey { return k.pub }

// Token returns the label of the token holding the key.
func (k *Key) Token() string { return k.token }

// privateHandle returns the private key handle, looking it up again on s
// after the module invalidated it.
func (k *Key) privateHandle(s *session) (p11.ObjectHandle, error) {
	if h := k.priv.Load(); h != 0 {
		return p11.ObjectHandle(h), nil
	}
	objs, err := k.mod.findObjects(s.h, k.keyTemplate(p11.CKO_PRIVATE_KEY), 2)
	if err != nil {
		return 0, err
	}
	if len(objs) != 1 {
		return 0, fmt.Errorf("%w (object %q, %d matches)", ErrKeyNotFound, k.object, len(objs))
	}
	k.priv.Store(uint64(objs[0]))
	return objs[0], nil
}

// Sign signs a 32-byte digest: CKM_ECDSA returning raw r||s for secp256k1 and
// P-256 keys (callers normalize with signer.SignDigest), CKM_EDDSA over the
// digest taken as the message for Ed25519. A failing session is dropped and
// the error, naming the token, wraps signer.ErrUnavailable.
func (k *Key) Sign(ctx context.Context, digest []byte) ([]byte, error) {
	if len(digest) != 32 {
		return nil, signer.ErrBadDigest
	}
	s, err := k.acquire(ctx)
	if err != nil {
		return nil, err
	}
	sig, err := k.signOn(s, digest)
	if err != nil {
		k.drop(s, err)
		return nil, k.unavailable(err)
	}
	k.release(s)
	if len(sig) != 64 {
		return nil, fmt.Errorf("pkcs11 token %q: %w: %d-byte signature", k.token, signer.ErrBadSignature, len(sig))
	}
	return sig, nil
}

func (k *Key) signOn(s *session, digest []byte) ([]byte, error) {
	if testHookBeforeSign != nil {
		testHookBeforeSign(k, s.h)
	}
	mech := []*p11.Mechanism{p11.NewMechanism(k.mech, nil)}
	obj, err := k.privateHandle(s)
	if err != nil {
		return nil, err
	}
	err = k.mod.ctx.SignInit(s.h, mech, obj)
	if staleHandle(err) {
		// Handles of private objects die with the login state (when every
		// session of the token closed); find the key again once.
		k.priv.CompareAndSwap(uint64(obj), 0)
		if obj, err = k.privateHandle(s); err != nil {
			return nil, err
		}
		err = k.mod.ctx.SignInit(s.h, mech, obj)
	}
	if err != nil {
		return nil, fmt.Errorf("C_SignInit: %w", err)
	}
	sig, err := k.mod.ctx.Sign(s.h, digest)
	if err != nil {
		return nil, fmt.Errorf("C_Sign: %w", err)
	}
	return sig, nil
}

func staleHandle(err error) bool {
	return errors.Is(err, p11.Error(p11.CKR_KEY_HANDLE_INVALID)) || errors.Is(err, p11.Error(p11.CKR_OBJECT_HANDLE_INVALID))
}

// testHookBeforeSign, when set by a test, runs on the session about to sign.
var testHookBeforeSign func(k *Key, h p11.SessionHandle)

// Ready reports whether the token is present and a pooled session is logged in.
func (k *Key) Ready(ctx context.Context) error {
	if _, err := k.mod.ctx.GetTokenInfo(uint(k.slot.Load())); err != nil {
		return k.unavailable(err)
	}
	s, err := k.acquire(ctx)
	if err != nil {
		return err
	}
	info, err := k.mod.ctx.GetSessionInfo(s.h)
	if err == nil && info.State != p11.CKS_RO_USER_FUNCTIONS && info.State != p11.CKS_RW_USER_FUNCTIONS {
		err = p11.Error(p11.CKR_USER_NOT_LOGGED_IN)
	}
	if err != nil {
		k.drop(s, err)
		return k.unavailable(err)
	}
	k.release(s)
	return nil
}

// Close waits for in-flight signatures and closes the key's sessions. The
// module stays loaded for other keys. Sign after Close fails.
func (k *Key) Close() error {
	k.closeOnce.Do(func() {
		for i := 0; i < k.poolSize; i++ {
			if s := <-k.sessions; s != nil {
				_ = k.mod.ctx.CloseSession(s.h)
			}
		}
		close(k.sessions)
	})
	return nil
}
