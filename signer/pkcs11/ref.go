// Package pkcs11 is the signer backend for keys held in a PKCS#11 token (HSM), named by RFC 7512 "pkcs11:" URIs.
//
// Accepted references (DESIGN §4):
//
//	pkcs11:token=keyward;object=baker?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/run/keyward/pin
//	pkcs11:serial=0123456789abcdef;id=%01%02?module-path=...&pin-value=1234
//	pkcs11:slot-id=3;object=baker;type=private?module-path=...&pin-source=file:/run/pin&pool-size=8
//
// Path attributes: the token is chosen by token (label), serial, slot-id,
// manufacturer and/or model (at least one); the key by object (label) and/or
// id (percent-encoded bytes); type, if given, must be "private". Query
// parameters: module-path (required), pin-source (a file readable only by its
// owner; "file:" URIs accepted) or pin-value, pool-size (sessions per key,
// default 4). Unknown attributes and parameters are errors.
//
// Keys are secp256k1 (tz2, Ethereum) and P-256 (tz3) ECDSA keys signed with
// CKM_ECDSA, and Ed25519 (tz1) keys signed with CKM_EDDSA. Each key keeps a
// pool of logged-in sessions; a session the module reports broken is dropped
// and replaced on demand. A build without cgo registers a stub that reports
// ErrNotSupported.
package pkcs11

import (
	"bytes"
	"encoding/asn1"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/keyward/keyward/signer"
)

// Scheme is the URI scheme this backend serves.
const Scheme = "pkcs11"

// DefaultPoolSize is the number of sessions per key when ?pool-size= is absent.
const DefaultPoolSize = 4

// maxPoolSize bounds ?pool-size=.
const maxPoolSize = 256

// Errors returned by the backend. Check with errors.Is. Signing-path errors
// wrap signer.ErrUnavailable instead.
var (
	// ErrNotSupported means keyward was built without cgo and cannot load PKCS#11 modules.
	ErrNotSupported = errors.New("built without PKCS#11 support")
	// ErrBadRef means the pkcs11: URI is malformed or incomplete.
	ErrBadRef = errors.New("invalid pkcs11 key reference")
	// ErrPINFileMode means the pin-source file is readable by group or others.
	ErrPINFileMode = errors.New("PIN file is readable by group or others (chmod 600 it)")
	// ErrModule means the PKCS#11 module could not be loaded or initialized.
	ErrModule = errors.New("cannot load PKCS#11 module")
	// ErrTokenNotFound means no present token matches the reference.
	ErrTokenNotFound = errors.New("token not found")
	// ErrAmbiguous means the reference matches more than one token or key.
	ErrAmbiguous = errors.New("reference matches more than one token or key")
	// ErrLogin means the user login to the token failed (wrong or locked PIN).
	ErrLogin = errors.New("login to token failed")
	// ErrKeyNotFound means no private key (or no matching public key) matches the reference.
	ErrKeyNotFound = errors.New("key not found on token")
	// ErrUnsupportedKey means the key is not a secp256k1, P-256 or Ed25519 key.
	ErrUnsupportedKey = errors.New("unsupported key type (want secp256k1, P-256 or Ed25519)")
	// ErrKeyExists means CreateKey found an object with the requested label or id.
	ErrKeyExists = errors.New("an object with this label or id already exists on the token")
)

// ref is a parsed pkcs11: reference. pin is a secret: never print it.
type ref struct {
	redacted     string
	modulePath   string
	token        string // CKA label of the token
	serial       string
	slotID       uint
	hasSlotID    bool
	manufacturer string
	model        string
	object       string // CKA_LABEL of the key
	id           []byte // CKA_ID of the key
	hasID        bool
	pinSource    string
	pin          string
	poolSize     int
}

var (
	knownAttrs = map[string]bool{"token": true, "serial": true, "slot-id": true, "manufacturer": true,
		"model": true, "object": true, "id": true, "type": true}
	knownParams = map[string]bool{"module-path": true, "pin-source": true, "pin-value": true, "pool-size": true}
)

// parseRef validates u and extracts the token, key and module selection. It
// reads no files: the PIN from pin-source is loaded by loadPIN.
func parseRef(u *signer.URI) (*ref, error) {
	r := &ref{redacted: u.Redacted(), poolSize: DefaultPoolSize}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("pkcs11 %s: %w: %s", r.redacted, ErrBadRef, fmt.Sprintf(format, a...))
	}
	if u.Scheme != Scheme {
		return nil, bad("scheme %q is not %q", u.Scheme, Scheme)
	}
	if u.Attrs == nil {
		return nil, bad("want the opaque form pkcs11:token=...;object=...")
	}
	for k := range u.Attrs {
		if !knownAttrs[k] {
			return nil, bad("unknown attribute %q", k)
		}
	}
	for k, v := range u.Query {
		if !knownParams[k] {
			return nil, bad("unknown query parameter %q", k)
		}
		if len(v) != 1 {
			return nil, bad("query parameter %q given %d times", k, len(v))
		}
	}
	r.token = u.Attrs["token"]
	r.serial = u.Attrs["serial"]
	r.manufacturer = u.Attrs["manufacturer"]
	r.model = u.Attrs["model"]
	if s, ok := u.Attrs["slot-id"]; ok {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, bad("slot-id %q is not a decimal number", s)
		}
		r.slotID, r.hasSlotID = uint(n), true
	}
	if r.token == "" && r.serial == "" && !r.hasSlotID && r.manufacturer == "" && r.model == "" {
		return nil, bad("no token selected (give token=, serial= or slot-id=)")
	}
	r.object = u.Attrs["object"]
	if id, ok := u.Attrs["id"]; ok {
		if id == "" {
			return nil, bad("empty id")
		}
		r.id, r.hasID = []byte(id), true
	}
	if r.object == "" && !r.hasID {
		return nil, bad("no key selected (give object= and/or id=)")
	}
	if t, ok := u.Attrs["type"]; ok && t != "private" {
		return nil, bad("type=%q: only private keys sign", t)
	}
	r.modulePath = u.Param("module-path")
	if r.modulePath == "" {
		return nil, bad("module-path is required")
	}
	r.pinSource, r.pin = u.Param("pin-source"), u.Param("pin-value")
	_, hasPV := u.Query["pin-value"]
	switch {
	case r.pinSource != "" && hasPV:
		return nil, bad("give pin-source or pin-value, not both")
	case r.pinSource == "" && r.pin == "":
		return nil, bad("no PIN (give pin-source=FILE or pin-value=)")
	}
	if s := u.Param("pool-size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPoolSize {
			return nil, bad("pool-size %q: want 1..%d", s, maxPoolSize)
		}
		r.poolSize = n
	}
	return r, nil
}

// loadPIN fills r.pin from pin-source when the reference names one.
func (r *ref) loadPIN() error {
	if r.pinSource == "" {
		return nil
	}
	pin, err := readPINFile(r.pinSource)
	if err != nil {
		return fmt.Errorf("pkcs11 %s: %w", r.redacted, err)
	}
	r.pin = pin
	return nil
}

// readPINFile reads a PIN from a file that only its owner may read. The file
// may be given as a path or a file: URI; one trailing newline is ignored.
func readPINFile(src string) (string, error) {
	path := src
	if strings.HasPrefix(src, "file:") {
		pu, err := url.Parse(src)
		if err != nil || pu.Path == "" || (pu.Host != "" && pu.Host != "localhost") {
			return "", fmt.Errorf("%w: pin-source %q is not a local file", ErrBadRef, src)
		}
		path = pu.Path
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("pin-source: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("pin-source: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%w: pin-source %s is not a regular file", ErrBadRef, path)
	}
	if fi.Mode().Perm()&0o044 != 0 {
		return "", fmt.Errorf("pin-source %s (mode %v): %w", path, fi.Mode().Perm(), ErrPINFileMode)
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(f); err != nil {
		return "", fmt.Errorf("pin-source: %w", err)
	}
	pin := strings.TrimSuffix(strings.TrimSuffix(b.String(), "\n"), "\r")
	if pin == "" {
		return "", fmt.Errorf("%w: pin-source %s is empty", ErrBadRef, path)
	}
	return pin, nil
}

// Object identifiers of the curves keyward signs with.
var (
	oidSecp256k1 = asn1.ObjectIdentifier{1, 3, 132, 0, 10}
	oidP256      = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidEd25519   = asn1.ObjectIdentifier{1, 3, 101, 112}
)

// ecParams returns the DER CKA_EC_PARAMS value that names curve c (the OID form).
func ecParams(c signer.Curve) ([]byte, error) {
	var oid asn1.ObjectIdentifier
	switch c {
	case signer.Secp256k1:
		oid = oidSecp256k1
	case signer.P256:
		oid = oidP256
	case signer.Ed25519:
		oid = oidEd25519
	default:
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, c)
	}
	return asn1.Marshal(oid)
}

// curveFromECParams identifies the curve named by a DER CKA_EC_PARAMS value:
// a named-curve OID, or for Ed25519 also the PrintableString "edwards25519"
// used by PKCS#11 3.0 tokens.
func curveFromECParams(b []byte) (signer.Curve, error) {
	var raw asn1.RawValue
	rest, err := asn1.Unmarshal(b, &raw)
	if err != nil || len(rest) != 0 || raw.Class != asn1.ClassUniversal {
		return signer.CurveUnknown, fmt.Errorf("%w: CKA_EC_PARAMS is not a named curve", ErrUnsupportedKey)
	}
	switch raw.Tag {
	case asn1.TagOID:
		var oid asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(b, &oid); err != nil {
			return signer.CurveUnknown, fmt.Errorf("%w: CKA_EC_PARAMS: %v", ErrUnsupportedKey, err)
		}
		switch {
		case oid.Equal(oidSecp256k1):
			return signer.Secp256k1, nil
		case oid.Equal(oidP256):
			return signer.P256, nil
		case oid.Equal(oidEd25519):
			return signer.Ed25519, nil
		}
		return signer.CurveUnknown, fmt.Errorf("%w: curve OID %v", ErrUnsupportedKey, oid)
	case asn1.TagPrintableString, asn1.TagUTF8String:
		if string(raw.Bytes) == "edwards25519" {
			return signer.Ed25519, nil
		}
		return signer.CurveUnknown, fmt.Errorf("%w: curve name %q", ErrUnsupportedKey, raw.Bytes)
	}
	return signer.CurveUnknown, fmt.Errorf("%w: CKA_EC_PARAMS tag %d is not a named curve", ErrUnsupportedKey, raw.Tag)
}

// pointLenOK reports whether n is a valid public key length for curve c.
func pointLenOK(c signer.Curve, n int) bool {
	if c == signer.Ed25519 {
		return n == 32
	}
	return n == 33 || n == 65
}

// publicKeyFromECPoint decodes a CKA_EC_POINT value: the DER OCTET STRING the
// standard asks for, or the raw point some modules return.
func publicKeyFromECPoint(c signer.Curve, b []byte) (signer.PublicKey, error) {
	point := b
	var inner []byte
	if rest, err := asn1.Unmarshal(b, &inner); err == nil && len(rest) == 0 && pointLenOK(c, len(inner)) {
		point = inner
	} else if !pointLenOK(c, len(b)) {
		return signer.PublicKey{}, fmt.Errorf("%w: CKA_EC_POINT of %d bytes for a %v key", ErrUnsupportedKey, len(b), c)
	}
	pub, err := signer.PublicKeyFromPoint(c, point)
	if err != nil {
		return signer.PublicKey{}, fmt.Errorf("%w: CKA_EC_POINT: %v", ErrUnsupportedKey, err)
	}
	return pub, nil
}
