package pkcs11

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyward/keyward/signer"
)

func mustParse(t *testing.T, s string) *signer.URI {
	t.Helper()
	u, err := signer.ParseURI(s)
	if err != nil {
		t.Fatalf("ParseURI(%q): %v", s, err)
	}
	return u
}

func TestParseRef_AcceptsRFC7512Selections(t *testing.T) {
	tests := []struct {
		name string
		ref  string
		want ref
	}{
		{"token and object", "pkcs11:token=keyward;object=baker?module-path=/m.so&pin-value=1234",
			ref{modulePath: "/m.so", token: "keyward", object: "baker", pin: "1234", poolSize: 4}},
		{"serial and percent-encoded id", "pkcs11:serial=abc123;id=%01%ff?module-path=/m.so&pin-value=1",
			ref{modulePath: "/m.so", serial: "abc123", id: []byte{1, 0xff}, hasID: true, pin: "1", poolSize: 4}},
		{"slot id, type private, pool size", "pkcs11:slot-id=7;object=a%20b;type=private?module-path=/m.so&pin-source=/run/pin&pool-size=9",
			ref{modulePath: "/m.so", slotID: 7, hasSlotID: true, object: "a b", pinSource: "/run/pin", poolSize: 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRef(mustParse(t, tt.ref))
			if err != nil {
				t.Fatal(err)
			}
			got.redacted = ""
			if got.modulePath != tt.want.modulePath || got.token != tt.want.token || got.serial != tt.want.serial ||
				got.slotID != tt.want.slotID || got.hasSlotID != tt.want.hasSlotID || got.object != tt.want.object ||
				!bytes.Equal(got.id, tt.want.id) || got.hasID != tt.want.hasID || got.pin != tt.want.pin ||
				got.pinSource != tt.want.pinSource || got.poolSize != tt.want.poolSize {
				t.Fatalf("got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestParseRef_RejectsIncompleteOrUnknown(t *testing.T) {
	for name, s := range map[string]string{
		"hierarchical form":     "pkcs11://token/object?module-path=/m.so&pin-value=1",
		"no token":              "pkcs11:object=k?module-path=/m.so&pin-value=1",
		"no key":                "pkcs11:token=t?module-path=/m.so&pin-value=1",
		"no module":             "pkcs11:token=t;object=k?pin-value=1",
		"no pin":                "pkcs11:token=t;object=k?module-path=/m.so",
		"both pins":             "pkcs11:token=t;object=k?module-path=/m.so&pin-value=1&pin-source=/p",
		"unknown attribute":     "pkcs11:token=t;object=k;colour=red?module-path=/m.so&pin-value=1",
		"unknown parameter":     "pkcs11:token=t;object=k?module-path=/m.so&pin-value=1&pin=1",
		"repeated parameter":    "pkcs11:token=t;object=k?module-path=/m.so&module-path=/n.so&pin-value=1",
		"bad slot id":           "pkcs11:slot-id=x;object=k?module-path=/m.so&pin-value=1",
		"public type":           "pkcs11:token=t;object=k;type=public?module-path=/m.so&pin-value=1",
		"pool size zero":        "pkcs11:token=t;object=k?module-path=/m.so&pin-value=1&pool-size=0",
		"pool size not numeric": "pkcs11:token=t;object=k?module-path=/m.so&pin-value=1&pool-size=many",
		"empty id":              "pkcs11:token=t;id=?module-path=/m.so&pin-value=1",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseRef(mustParse(t, s))
			if !errors.Is(err, ErrBadRef) {
				t.Fatalf("err = %v, want ErrBadRef", err)
			}
		})
	}
}

func TestParseRef_ErrorsHideThePIN(t *testing.T) {
	_, err := parseRef(mustParse(t, "pkcs11:token=t?module-path=/m.so&pin-value=s3cret"))
	if err == nil || bytes.Contains([]byte(err.Error()), []byte("s3cret")) {
		t.Fatalf("err = %v", err)
	}
}

func TestReadPINFile_RefusesFilesOthersCanRead(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		mode os.FileMode
		want error
	}{
		{0o600, nil}, {0o400, nil}, {0o640, ErrPINFileMode}, {0o604, ErrPINFileMode}, {0o644, ErrPINFileMode},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			p := filepath.Join(dir, "pin-"+tt.mode.String())
			if err := os.WriteFile(p, []byte("1234\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tt.mode); err != nil {
				t.Fatal(err)
			}
			pin, err := readPINFile(p)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.want == nil && pin != "1234" {
				t.Fatalf("pin %q", pin)
			}
			if tt.want == nil {
				if pin, err := readPINFile("file://" + p); err != nil || pin != "1234" {
					t.Fatalf("file: URI: %q, %v", pin, err)
				}
			}
		})
	}
	if _, err := readPINFile(filepath.Join(dir, "absent")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func unhex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCurveFromECParams_RecognizesNamedCurves(t *testing.T) {
	tests := []struct {
		name, der string
		want      signer.Curve
		err       error
	}{
		{"secp256k1 OID", "06052b8104000a", signer.Secp256k1, nil},
		{"prime256v1 OID", "06082a8648ce3d030107", signer.P256, nil},
		{"Ed25519 OID", "06032b6570", signer.Ed25519, nil},
		{"edwards25519 PrintableString", "130c656477617264733235353139", signer.Ed25519, nil},
		{"secp384r1 OID", "06052b81040022", signer.CurveUnknown, ErrUnsupportedKey},
		{"Ed448 OID", "06032b6571", signer.CurveUnknown, ErrUnsupportedKey},
		{"edwards448 string", "130a65647761726473343438", signer.CurveUnknown, ErrUnsupportedKey},
		{"trailing bytes", "06032b657000", signer.CurveUnknown, ErrUnsupportedKey},
		{"explicit parameters", "3003020101", signer.CurveUnknown, ErrUnsupportedKey},
		{"empty", "", signer.CurveUnknown, ErrUnsupportedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := curveFromECParams(unhex(t, tt.der))
			if got != tt.want || !errors.Is(err, tt.err) {
				t.Fatalf("got %v, %v; want %v, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestECParams_RoundTrips(t *testing.T) {
	for _, c := range []signer.Curve{signer.Secp256k1, signer.P256, signer.Ed25519} {
		der, err := ecParams(c)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := curveFromECParams(der); err != nil || got != c {
			t.Fatalf("%v: got %v, %v", c, got, err)
		}
	}
	if _, err := ecParams(signer.CurveUnknown); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatal(err)
	}
}

const (
	// secp256k1 generator point G.
	secpG = "0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8"
	// An Ed25519 public key (RFC 8032 test 1).
	edPub = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
)

func TestPublicKeyFromECPoint_UnwrapsDEROrAcceptsRaw(t *testing.T) {
	g := unhex(t, secpG)
	ed := unhex(t, edPub)
	compressedG := append([]byte{0x02}, g[1:33]...)
	tests := []struct {
		name  string
		curve signer.Curve
		in    []byte
		want  []byte
		err   bool
	}{
		{"secp256k1 DER-wrapped uncompressed", signer.Secp256k1, append([]byte{0x04, 0x41}, g...), compressedG, false},
		{"secp256k1 raw uncompressed", signer.Secp256k1, g, compressedG, false},
		{"secp256k1 raw compressed", signer.Secp256k1, compressedG, compressedG, false},
		{"Ed25519 DER-wrapped", signer.Ed25519, append([]byte{0x04, 0x20}, ed...), ed, false},
		{"Ed25519 raw", signer.Ed25519, ed, ed, false},
		{"Ed25519 raw starting like DER", signer.Ed25519, append([]byte{0x04, 0x1e}, ed[2:]...), append([]byte{0x04, 0x1e}, ed[2:]...), false},
		{"secp256k1 point not on curve", signer.Secp256k1, append(append([]byte{}, g[:64]...), g[64]^1), nil, true},
		{"truncated", signer.Secp256k1, g[:40], nil, true},
		{"DER wrapping a short point", signer.Ed25519, []byte{0x04, 0x02, 1, 2}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub, err := publicKeyFromECPoint(tt.curve, tt.in)
			if tt.err {
				if !errors.Is(err, ErrUnsupportedKey) {
					t.Fatalf("err = %v, want ErrUnsupportedKey", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pub.Curve != tt.curve || !bytes.Equal(pub.Bytes, tt.want) {
				t.Fatalf("got %v %x, want %x", pub.Curve, pub.Bytes, tt.want)
			}
		})
	}
}

func FuzzCurveFromECParams(f *testing.F) {
	for _, s := range []string{"06052b8104000a", "06082a8648ce3d030107", "06032b6570", "130c656477617264733235353139", "3003020101"} {
		f.Add(unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := curveFromECParams(b)
		if (err == nil) != (c != signer.CurveUnknown) {
			t.Fatalf("curve %v with err %v", c, err)
		}
		if err == nil {
			der, _ := ecParams(c)
			if c != signer.Ed25519 && !bytes.Equal(der, b) {
				t.Fatalf("%x accepted as %v but encodes as %x", b, c, der)
			}
		}
	})
}

func FuzzPublicKeyFromECPoint(f *testing.F) {
	f.Add(uint8(1), unhex(f, secpG))
	f.Add(uint8(1), append([]byte{0x04, 0x41}, unhex(f, secpG)...))
	f.Add(uint8(3), append([]byte{0x04, 0x20}, unhex(f, edPub)...))
	f.Add(uint8(2), []byte{0x04, 0x21, 0x02})
	f.Fuzz(func(t *testing.T, curve uint8, b []byte) {
		c := signer.Curve(curve % 4)
		pub, err := publicKeyFromECPoint(c, b)
		if err != nil {
			return
		}
		if pub.Curve != c || !pointLenOK(c, len(pub.Bytes)) {
			t.Fatalf("accepted %x as %v %x", b, pub.Curve, pub.Bytes)
		}
	})
}

func FuzzParseRef(f *testing.F) {
	f.Add("pkcs11:token=keyward;object=baker?module-path=/m.so&pin-value=1234")
	f.Add("pkcs11:slot-id=7;id=%01%02?module-path=/m.so&pin-source=/p&pool-size=3")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := signer.ParseURI(s)
		if err != nil {
			return
		}
		r, err := parseRef(u)
		if err != nil {
			if !errors.Is(err, ErrBadRef) {
				t.Fatalf("error %v does not wrap ErrBadRef", err)
			}
			return
		}
		if r.modulePath == "" || (r.pin == "" && r.pinSource == "") || r.poolSize < 1 || r.poolSize > maxPoolSize ||
			(r.object == "" && !r.hasID) {
			t.Fatalf("incomplete ref accepted: %+v", r)
		}
	})
}
