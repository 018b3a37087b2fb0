//go:build cgo

package pkcs11

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"

	p11 "github.com/miekg/pkcs11"

	"github.com/keyward/keyward/signer"
)

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

// module is one loaded and initialized PKCS#11 library, shared by every key on it.
type module struct {
	path string
	ctx  *p11.Ctx

	// pins remembers, per slot, the PIN of the last successful login: the
	// login state is shared by every session of the process, so a second key
	// with a wrong PIN would otherwise be accepted silently.
	pinMu sync.Mutex
	pins  map[uint]string
}

var (
	modMu   sync.Mutex
	modules = map[string]*module{}
)

// loadModule loads and initializes the library at path once per process.
func loadModule(path string) (*module, error) {
	path = filepath.Clean(path)
	modMu.Lock()
	defer modMu.Unlock()
	if m, ok := modules[path]; ok {
		return m, nil
	}
	c := p11.New(path)
	if c == nil {
		return nil, fmt.Errorf("%w %s: cannot load the library", ErrModule, path)
	}
	if err := c.Initialize(); err != nil && !errors.Is(err, p11.Error(p11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		c.Destroy()
		return nil, fmt.Errorf("%w %s: C_Initialize: %w", ErrModule, path, err)
	}
	m := &module{path: path, ctx: c, pins: map[uint]string{}}
	modules[path] = m
	return m, nil
}

// findSlot returns the slot holding the one present token that r selects, and its label.
func (m *module) findSlot(r *ref) (uint, string, error) {
	slots, err := m.ctx.GetSlotList(true)
	if err != nil {
		return 0, "", fmt.Errorf("pkcs11 %s: %w: C_GetSlotList: %w", r.redacted, ErrModule, err)
	}
	var found []uint
	var label string
	for _, s := range slots {
		if r.hasSlotID && s != r.slotID {
			continue
		}
		ti, err := m.ctx.GetTokenInfo(s)
		if err != nil {
			continue
		}
		if (r.token != "" && ti.Label != r.token) || (r.serial != "" && ti.SerialNumber != r.serial) ||
			(r.manufacturer != "" && ti.ManufacturerID != r.manufacturer) || (r.model != "" && ti.Model != r.model) {
			continue
		}
		found = append(found, s)
		label = ti.Label
	}
	switch len(found) {
	case 0:
		return 0, "", fmt.Errorf("pkcs11 %s: %w", r.redacted, ErrTokenNotFound)
	case 1:
		return found[0], label, nil
	}
	return 0, "", fmt.Errorf("pkcs11 %s: %w: %d tokens match (add serial= or slot-id=)", r.redacted, ErrAmbiguous, len(found))
}

// openSession opens a session on slot and logs the user in (a token already
// logged in by another session of this process is fine).
func (m *module) openSession(slot uint, flags uint, pin string) (p11.SessionHandle, error) {
	h, err := m.ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION|flags)
	if err != nil {
		return 0, fmt.Errorf("C_OpenSession: %w", err)
	}
	err = m.ctx.Login(h, p11.CKU_USER, pin)
	m.pinMu.Lock()
	switch {
	case err == nil:
		m.pins[slot] = pin
	case errors.Is(err, p11.Error(p11.CKR_USER_ALREADY_LOGGED_IN)):
		if known, ok := m.pins[slot]; ok && known != pin {
			err = fmt.Errorf("%w: the PIN differs from the one the token is logged in with", ErrLogin)
		} else {
			err = nil
		}
	}
	m.pinMu.Unlock()
	if err != nil {
		_ = m.ctx.CloseSession(h)
		if errors.Is(err, ErrLogin) {
			return 0, err
		}
		if isLoginError(err) {
			return 0, fmt.Errorf("%w: %w", ErrLogin, err)
		}
		return 0, fmt.Errorf("C_Login: %w", err)
	}
	return h, nil
}

func isLoginError(err error) bool {
	for _, rv := range []uint{p11.CKR_PIN_INCORRECT, p11.CKR_PIN_INVALID, p11.CKR_PIN_LEN_RANGE,
		p11.CKR_PIN_LOCKED, p11.CKR_PIN_EXPIRED} {
		if errors.Is(err, p11.Error(rv)) {
			return true
		}
	}
	return false
}

// findObjects returns up to max handles of objects matching tmpl.
func (m *module) findObjects(h p11.SessionHandle, tmpl []*p11.Attribute, max int) ([]p11.ObjectHandle, error) {
	if err := m.ctx.FindObjectsInit(h, tmpl); err != nil {
		return nil, fmt.Errorf("C_FindObjectsInit: %w", err)
	}
	objs, _, err := m.ctx.FindObjects(h, max)
	if ferr := m.ctx.FindObjectsFinal(h); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return nil, fmt.Errorf("C_FindObjects: %w", err)
	}
	return objs, nil
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

type session struct{ h p11.SessionHandle }

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

// unavailable wraps a module error for the signing path.
func (k *Key) unavailable(err error) error {
	return fmt.Errorf("pkcs11 token %q: %w: %w", k.token, signer.ErrUnavailable, err)
}

// acquire takes a session from the pool, opening and logging in a new one for
// an empty entry. The caller must give it back with release or drop.
func (k *Key) acquire(ctx context.Context) (*session, error) {
	var s *session
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case e, ok := <-k.sessions:
		if !ok {
			return nil, k.unavailable(errClosed)
		}
		s = e
	}
	if s != nil {
		return s, nil
	}
	h, err := k.openSession()
	if err != nil {
		k.sessions <- nil
		return nil, k.unavailable(err)
	}
	return &session{h: h}, nil
}

// openSession opens and logs in a session for the pool. When the token is no
// longer in its slot (removed, or reinserted where the module gave it a new
// slot id), it looks the token up again by the reference's selection.
func (k *Key) openSession() (p11.SessionHandle, error) {
	slot := uint(k.slot.Load())
	h, err := k.mod.openSession(slot, 0, k.pin)
	if err == nil || !tokenMoved(err) {
		return h, err
	}
	ns, _, ferr := k.mod.findSlot(k.sel)
	if ferr != nil || ns == slot {
		return 0, err
	}
	slog.Info("pkcs11 token found in a new slot", "token", k.token, "slot", ns)
	k.slot.Store(uint64(ns))
	k.priv.Store(0)
	return k.mod.openSession(ns, 0, k.pin)
}

func tokenMoved(err error) bool {
	for _, rv := range []uint{p11.CKR_SLOT_ID_INVALID, p11.CKR_TOKEN_NOT_PRESENT, p11.CKR_TOKEN_NOT_RECOGNIZED, p11.CKR_DEVICE_REMOVED} {
		if errors.Is(err, p11.Error(rv)) {
			return true
		}
	}
	return false
}

func (k *Key) release(s *session) { k.sessions <- s }

// drop discards a session the module reported as failed and frees its pool
// entry, so the next request opens a fresh one.
func (k *Key) drop(s *session, cause error) {
	if !sessionGone(cause) {
		_ = k.mod.ctx.CloseSession(s.h)
	}
	if staleHandle(cause) {
		k.priv.Store(0)
	}
	slog.Warn("pkcs11 session dropped", "token", k.token, "object", k.object, "err", cause)
	k.sessions <- nil
}

// sessionGone reports errors after which the session handle is no longer
// valid, so it must not be closed (the number may be reused).
func sessionGone(err error) bool {
	for _, rv := range []uint{p11.CKR_SESSION_HANDLE_INVALID, p11.CKR_SESSION_CLOSED,
		p11.CKR_DEVICE_REMOVED, p11.CKR_TOKEN_NOT_PRESENT, p11.CKR_CRYPTOKI_NOT_INITIALIZED} {
		if errors.Is(err, p11.Error(rv)) {
			return true
		}
	}
	return false
}

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
