//go:build cgo

package pkcs11

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	p11 "github.com/miekg/pkcs11"
)

// The module cache: each PKCS#11 library is loaded and initialized once per
// process and shared by every key on it, with the token lookup, login and
// object search every key uses.

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
