//go:build cgo

package pkcs11

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/keyward/keyward/internal/testutil"
	"github.com/keyward/keyward/signer"
)

const (
	testPIN   = "1234"
	testSOPIN = "5678"
)

// SoftHSM reads SOFTHSM2_CONF once, when the module is initialized, and the
// module is loaded once per process; so the test binary shares one token
// directory (a temp dir) and every test creates its own token in it.
var (
	hsmOnce   sync.Once
	hsmDir    string
	hsmConf   string
	hsmErr    error
	hsmModule string
	tokenSeq  int
	tokenMu   sync.Mutex
)

func TestMain(m *testing.M) {
	code := m.Run()
	if hsmDir != "" {
		os.RemoveAll(hsmDir)
	}
	os.Exit(code)
}

// softHSMModule finds the SoftHSM2 module (KEYWARD_SOFTHSM_MODULE overrides).
func softHSMModule() (string, error) {
	cands := []string{os.Getenv("KEYWARD_SOFTHSM_MODULE"), "/usr/lib/softhsm/libsofthsm2.so",
		"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so", "/usr/local/lib/softhsm/libsofthsm2.so"}
	for _, p := range cands {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("libsofthsm2.so not found (apt-get install softhsm2)")
}

// setupSoftHSM prepares the shared token directory and SOFTHSM2_CONF, or
// skips (fails under CI) when SoftHSM2 is missing.
func setupSoftHSM(t testing.TB) {
	t.Helper()
	testutil.LookPath(t, "softhsm2-util")
	mod, err := softHSMModule()
	testutil.Need(t, "softhsm2", err)
	hsmOnce.Do(func() {
		hsmModule = mod
		hsmDir, hsmErr = os.MkdirTemp("", "keyward-softhsm-")
		if hsmErr != nil {
			return
		}
		tokens := filepath.Join(hsmDir, "tokens")
		if hsmErr = os.Mkdir(tokens, 0o700); hsmErr != nil {
			return
		}
		hsmConf = filepath.Join(hsmDir, "softhsm2.conf")
		conf := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
		if hsmErr = os.WriteFile(hsmConf, []byte(conf), 0o600); hsmErr != nil {
			return
		}
		hsmErr = os.Setenv("SOFTHSM2_CONF", hsmConf)
	})
	if hsmErr != nil {
		t.Fatalf("softhsm setup: %v", hsmErr)
	}
}

// newToken initializes a fresh token and returns its label.
func newToken(t testing.TB) string {
	t.Helper()
	setupSoftHSM(t)
	tokenMu.Lock()
	tokenSeq++
	label := fmt.Sprintf("kw%d-%s", tokenSeq, strings.NewReplacer("/", "-", "_", "").Replace(t.Name()))
	tokenMu.Unlock()
	if len(label) > 32 {
		label = label[:32]
	}
	cmd := exec.Command("softhsm2-util", "--init-token", "--free", "--label", label, "--pin", testPIN, "--so-pin", testSOPIN)
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+hsmConf)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	return label
}

// keyRef builds a pkcs11: reference for object on token.
func keyRef(token, object, extra string) string {
	s := "pkcs11:token=" + url.PathEscape(token) + ";object=" + url.PathEscape(object) +
		"?module-path=" + hsmModule + "&pin-value=" + testPIN
	if extra != "" {
		s += "&" + extra
	}
	return s
}

var allCurves = []signer.Curve{signer.Secp256k1, signer.P256, signer.Ed25519}

func digest(t testing.TB) []byte {
	d := make([]byte, 32)
	if _, err := rand.Read(d); err != nil {
		t.Fatal(err)
	}
	return d
}

// verifyIndependently checks sig with a library other than signer.Verify.
func verifyIndependently(t testing.TB, pub signer.PublicKey, d, sig []byte) {
	t.Helper()
	switch pub.Curve {
	case signer.Secp256k1:
		pk, err := secp256k1.ParsePubKey(pub.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		var r, s secp256k1.ModNScalar
		r.SetByteSlice(sig[:32])
		s.SetByteSlice(sig[32:])
		if !secpecdsa.NewSignature(&r, &s).Verify(d, pk) {
			t.Fatal("decred secp256k1 rejects the signature")
		}
	case signer.P256:
		if !signer.Verify(pub, d, sig) {
			t.Fatal("P-256 signature does not verify")
		}
	case signer.Ed25519:
		if !ed25519.Verify(ed25519.PublicKey(pub.Bytes), d, sig) {
			t.Fatal("crypto/ed25519 rejects the signature")
		}
	}
}

func TestCreateKey_SignsVerifiableLowSSignaturesOnEveryCurve(t *testing.T) {
	token := newToken(t)
	ctx := context.Background()
	for _, c := range allCurves {
		t.Run(c.String(), func(t *testing.T) {
			k, err := CreateKey(ctx, keyRef(token, "key-"+c.String(), ""), c)
			if err != nil {
				t.Fatalf("CreateKey: %v", err)
			}
			defer k.(signer.Closer).Close()
			if k.PublicKey().Curve != c {
				t.Fatalf("curve %v, want %v", k.PublicKey().Curve, c)
			}
			highS := 0
			for i := 0; i < 64; i++ {
				d := digest(t)
				raw, err := k.Sign(ctx, d)
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				if c != signer.Ed25519 && !signer.IsLowS(c, raw) {
					highS++
				}
				sig, err := signer.SignDigest(ctx, k, d)
				if err != nil {
					t.Fatalf("SignDigest: %v", err)
				}
				if c != signer.Ed25519 && !signer.IsLowS(c, sig) {
					t.Fatal("SignDigest returned a high-S signature")
				}
				verifyIndependently(t, k.PublicKey(), d, sig)
			}
			if c != signer.Ed25519 && highS == 0 {
				t.Errorf("no high-S raw signature in 64: normalization not exercised")
			}
			// Opening the key again by reference finds the same public key.
			k2, err := signer.Open(ctx, keyRef(token, "key-"+c.String(), ""))
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			defer k2.(signer.Closer).Close()
			if string(k2.PublicKey().Bytes) != string(k.PublicKey().Bytes) {
				t.Fatal("reopened key has a different public key")
			}
		})
	}
}
