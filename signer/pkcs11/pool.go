//go:build cgo

package pkcs11

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	p11 "github.com/miekg/pkcs11"

	"github.com/keyward/keyward/signer"
)

// The key session pool: each Key holds poolSize logged-in sessions, opened on
// first use, taken for one signature at a time and dropped when the module
// reports them failed.

// session is one open, logged-in session of a key's pool.
type session struct{ h p11.SessionHandle }

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
