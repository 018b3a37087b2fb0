//go:build cgo

package pkcs11

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	p11 "github.com/miekg/pkcs11"

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

// newToken initializes a fresh token in the shared token directory and
// returns its label. SoftHSM does not rescan its directory after
// C_Initialize, so tokens are initialized in-process (C_InitToken on the free
// slot SoftHSM always offers, then C_InitPIN), as softhsm2-util would.
func newToken(t testing.TB) string {
	t.Helper()
	setupSoftHSM(t)
	tokenMu.Lock()
	defer tokenMu.Unlock()
	tokenSeq++
	label := fmt.Sprintf("kw%d-%s", tokenSeq, strings.NewReplacer("/", "-", "_", "").Replace(t.Name()))
	if len(label) > 32 {
		label = label[:32]
	}
	m, err := loadModule(hsmModule)
	if err != nil {
		t.Fatal(err)
	}
	slots, err := m.ctx.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	free := -1
	for _, s := range slots {
		ti, err := m.ctx.GetTokenInfo(s)
		if err == nil && ti.Flags&p11.CKF_TOKEN_INITIALIZED == 0 {
			free = int(s)
			break
		}
	}
	if free < 0 {
		t.Fatal("SoftHSM offers no free slot")
	}
	if err := m.ctx.InitToken(uint(free), testSOPIN, label); err != nil {
		t.Fatalf("C_InitToken: %v", err)
	}
	h, err := m.ctx.OpenSession(uint(free), p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	defer m.ctx.CloseSession(h)
	if err := m.ctx.Login(h, p11.CKU_SO, testSOPIN); err != nil {
		t.Fatalf("SO login: %v", err)
	}
	if err := m.ctx.InitPIN(h, testPIN); err != nil {
		t.Fatalf("C_InitPIN: %v", err)
	}
	if err := m.ctx.Logout(h); err != nil {
		t.Fatal(err)
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
		x, y := elliptic.UnmarshalCompressed(elliptic.P256(), pub.Bytes)
		if x == nil {
			t.Fatal("invalid P-256 public key")
		}
		pk, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x.FillBytes(make([]byte, 32))...), y.FillBytes(make([]byte, 32))...))
		if err != nil {
			t.Fatal(err)
		}
		if !ecdsa.Verify(pk, d, new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			t.Fatal("crypto/ecdsa rejects the P-256 signature")
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

func TestCreateKey_PrivateKeyIsSensitiveAndNotExtractable(t *testing.T) {
	token := newToken(t)
	ctx := context.Background()
	k, err := CreateKey(ctx, keyRef(token, "guarded", ""), signer.Secp256k1)
	if err != nil {
		t.Fatal(err)
	}
	defer k.(signer.Closer).Close()
	pk := k.(*Key)
	s, err := pk.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer pk.release(s)
	attrs, err := pk.mod.ctx.GetAttributeValue(s.h, p11.ObjectHandle(pk.priv.Load()), []*p11.Attribute{
		p11.NewAttribute(p11.CKA_TOKEN, nil), p11.NewAttribute(p11.CKA_SENSITIVE, nil),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, nil), p11.NewAttribute(p11.CKA_SIGN, nil), p11.NewAttribute(p11.CKA_ID, nil)})
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{1, 1, 0, 1}
	for i, w := range want {
		if len(attrs[i].Value) != 1 || attrs[i].Value[0] != w {
			t.Errorf("attribute 0x%x = %v, want %d", attrs[i].Type, attrs[i].Value, w)
		}
	}
	if n := len(attrs[4].Value); n < 8 || n > 16 {
		t.Errorf("CKA_ID is %d bytes, want 8..16", n)
	}
	// The private value cannot be read.
	if _, err := pk.mod.ctx.GetAttributeValue(s.h, p11.ObjectHandle(pk.priv.Load()),
		[]*p11.Attribute{p11.NewAttribute(p11.CKA_VALUE, nil)}); err == nil {
		t.Error("CKA_VALUE of the private key is readable")
	}
}

func TestCreateKey_RefusesExistingLabelOrID(t *testing.T) {
	token := newToken(t)
	ctx := context.Background()
	k, err := CreateKey(ctx, keyRef(token, "taken", "")+"", signer.P256)
	if err != nil {
		t.Fatal(err)
	}
	k.(signer.Closer).Close()
	withID := "pkcs11:token=" + url.PathEscape(token) + ";object=fresh;id=%01%02?module-path=" + hsmModule + "&pin-value=" + testPIN
	k, err = CreateKey(ctx, withID, signer.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	k.(signer.Closer).Close()
	for name, ref := range map[string]string{
		"same label": keyRef(token, "taken", ""),
		"same id":    "pkcs11:token=" + url.PathEscape(token) + ";object=other;id=%01%02?module-path=" + hsmModule + "&pin-value=" + testPIN,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := CreateKey(ctx, ref, signer.Secp256k1); !errors.Is(err, ErrKeyExists) {
				t.Fatalf("err = %v, want ErrKeyExists", err)
			}
		})
	}
	// The key created with an explicit id opens by id alone.
	byID := "pkcs11:token=" + url.PathEscape(token) + ";id=%01%02?module-path=" + hsmModule + "&pin-value=" + testPIN
	k, err = signer.Open(ctx, byID)
	if err != nil {
		t.Fatalf("open by id: %v", err)
	}
	defer k.(signer.Closer).Close()
	if k.PublicKey().Curve != signer.Ed25519 {
		t.Fatalf("curve %v", k.PublicKey().Curve)
	}
}

func writePINFile(t *testing.T, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(p, []byte(testPIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpen_StartupErrorsNameTheCause(t *testing.T) {
	token := newToken(t)
	ctx := context.Background()
	k, err := CreateKey(ctx, keyRef(token, "present", ""), signer.Secp256k1)
	if err != nil {
		t.Fatal(err)
	}
	k.(signer.Closer).Close()
	base := "pkcs11:token=" + url.PathEscape(token) + ";object=present?module-path=" + hsmModule
	tests := []struct {
		name string
		ref  string
		want error
	}{
		{"wrong PIN", base + "&pin-value=9999", ErrLogin},
		{"missing token", "pkcs11:token=no-such-token;object=present?module-path=" + hsmModule + "&pin-value=" + testPIN, ErrTokenNotFound},
		{"missing object", "pkcs11:token=" + url.PathEscape(token) + ";object=absent?module-path=" + hsmModule + "&pin-value=" + testPIN, ErrKeyNotFound},
		{"world-readable PIN file", base + "&pin-source=" + writePINFile(t, 0o604), ErrPINFileMode},
		{"group-readable PIN file", base + "&pin-source=" + writePINFile(t, 0o640), ErrPINFileMode},
		{"missing module", "pkcs11:token=x;object=y?module-path=/nonexistent/libnone.so&pin-value=1", ErrModule},
		{"unknown attribute", base + "&pin-value=" + testPIN + "&slot=1", ErrBadRef},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := signer.Open(ctx, tt.ref)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if k != nil {
				t.Fatal("key returned with an error")
			}
			if strings.Contains(err.Error(), "pin-value="+testPIN) || strings.Contains(err.Error(), "9999") {
				t.Fatalf("error leaks the PIN: %v", err)
			}
		})
	}
	t.Run("wrong PIN while another key keeps the token logged in", func(t *testing.T) {
		held, err := signer.Open(ctx, base+"&pin-value="+testPIN)
		if err != nil {
			t.Fatal(err)
		}
		defer held.(signer.Closer).Close()
		if _, err := signer.Open(ctx, base+"&pin-value=9999"); !errors.Is(err, ErrLogin) {
			t.Fatalf("err = %v, want ErrLogin", err)
		}
	})
	t.Run("owner-only PIN file opens", func(t *testing.T) {
		k, err := signer.Open(ctx, base+"&pin-source="+writePINFile(t, 0o600))
		if err != nil {
			t.Fatal(err)
		}
		k.(signer.Closer).Close()
	})
}

func TestOpen_RefusesUnsupportedCurve(t *testing.T) {
	token := newToken(t)
	setupSoftHSM(t)
	m, err := loadModule(hsmModule)
	if err != nil {
		t.Fatal(err)
	}
	slot, _, err := m.findSlot(&ref{token: token})
	if err != nil {
		t.Fatal(err)
	}
	h, err := m.openSession(slot, p11.CKF_RW_SESSION, testPIN)
	if err != nil {
		t.Fatal(err)
	}
	defer m.ctx.CloseSession(h)
	p384 := []byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22} // secp384r1
	_, _, err = m.ctx.GenerateKeyPair(h, []*p11.Mechanism{p11.NewMechanism(p11.CKM_EC_KEY_PAIR_GEN, nil)},
		[]*p11.Attribute{p11.NewAttribute(p11.CKA_TOKEN, true), p11.NewAttribute(p11.CKA_EC_PARAMS, p384),
			p11.NewAttribute(p11.CKA_LABEL, "p384"), p11.NewAttribute(p11.CKA_ID, []byte{9})},
		[]*p11.Attribute{p11.NewAttribute(p11.CKA_TOKEN, true), p11.NewAttribute(p11.CKA_SIGN, true),
			p11.NewAttribute(p11.CKA_LABEL, "p384"), p11.NewAttribute(p11.CKA_ID, []byte{9})})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signer.Open(context.Background(), keyRef(token, "p384", "")); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("err = %v, want ErrUnsupportedKey", err)
	}
}

func TestOpen_KeysShareOneModule(t *testing.T) {
	token := newToken(t)
	ctx := context.Background()
	a, err := CreateKey(ctx, keyRef(token, "a", ""), signer.Secp256k1)
	if err != nil {
		t.Fatal(err)
	}
	defer a.(signer.Closer).Close()
	b, err := CreateKey(ctx, keyRef(token, "b", ""), signer.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	defer b.(signer.Closer).Close()
	if a.(*Key).mod != b.(*Key).mod {
		t.Fatal("two keys on one module path loaded it twice")
	}
}

func TestSign_ConcurrentSignersOverAPoolOfFour(t *testing.T) {
	token := newToken(t)
	ctx := context.Background()
	for _, c := range allCurves {
		t.Run(c.String(), func(t *testing.T) {
			k, err := CreateKey(ctx, keyRef(token, "conc-"+c.String(), "pool-size=4"), c)
			if err != nil {
				t.Fatal(err)
			}
			defer k.(signer.Closer).Close()
			if n := cap(k.(*Key).sessions); n != 4 {
				t.Fatalf("pool of %d sessions, want 4", n)
			}
			const signers, each = 64, 8
			var wg sync.WaitGroup
			errs := make(chan error, signers*each)
			for i := 0; i < signers; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := 0; j < each; j++ {
						d := make([]byte, 32)
						rand.Read(d)
						sig, err := signer.SignDigest(ctx, k, d)
						if err != nil {
							errs <- err
							continue
						}
						if !signer.Verify(k.PublicKey(), d, sig) {
							errs <- errors.New("invalid signature")
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

func TestSign_SessionInvalidatedUnderLoadFailsOnlyThatRequest(t *testing.T) {
	token := newToken(t)
	ctx := context.Background()
	k, err := CreateKey(ctx, keyRef(token, "flaky", "pool-size=4"), signer.Secp256k1)
	if err != nil {
		t.Fatal(err)
	}
	defer k.(signer.Closer).Close()
	pk := k.(*Key)

	// Close one pooled session behind the pool's back, once, under load.
	var once sync.Once
	var closed p11.SessionHandle
	testHookBeforeSign = func(kk *Key, h p11.SessionHandle) {
		once.Do(func() {
			closed = h
			if err := kk.mod.ctx.CloseSession(h); err != nil {
				t.Errorf("closing session behind the pool: %v", err)
			}
		})
	}
	const workers, each = 16, 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				d := make([]byte, 32)
				rand.Read(d)
				if _, err := signer.SignDigest(ctx, k, d); err != nil {
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	testHookBeforeSign = nil
	if closed == 0 {
		t.Fatal("hook never ran")
	}
	if len(failures) != 1 {
		t.Fatalf("%d failed requests, want exactly 1: %v", len(failures), failures)
	}
	if !errors.Is(failures[0], signer.ErrUnavailable) || !errors.Is(failures[0], p11.Error(p11.CKR_SESSION_HANDLE_INVALID)) {
		t.Fatalf("failure %v does not wrap ErrUnavailable and CKR_SESSION_HANDLE_INVALID", failures[0])
	}
	if !strings.Contains(failures[0].Error(), token) {
		t.Fatalf("failure %v does not name the token", failures[0])
	}
	// The pool healed: every following request succeeds and Ready says so.
	for i := 0; i < 32; i++ {
		if _, err := signer.SignDigest(ctx, k, digest(t)); err != nil {
			t.Fatalf("after the invalidated session: %v", err)
		}
	}
	if err := pk.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
}

func TestReady_ReplacesASessionClosedBehindThePool(t *testing.T) {
	token := newToken(t)
	ctx := context.Background()
	k, err := CreateKey(ctx, keyRef(token, "ready", "pool-size=1"), signer.P256)
	if err != nil {
		t.Fatal(err)
	}
	defer k.(signer.Closer).Close()
	pk := k.(*Key)
	s, err := pk.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pk.mod.ctx.CloseSession(s.h)
	pk.release(s)
	if err := pk.Ready(ctx); !errors.Is(err, signer.ErrUnavailable) {
		t.Fatalf("Ready on a dead session = %v, want ErrUnavailable", err)
	}
	if err := pk.Ready(ctx); err != nil {
		t.Fatalf("Ready after replacement: %v", err)
	}
	if _, err := signer.SignDigest(ctx, k, digest(t)); err != nil {
		t.Fatal(err)
	}
}

func TestSign_AfterCloseFailsWithUnavailable(t *testing.T) {
	token := newToken(t)
	ctx := context.Background()
	k, err := CreateKey(ctx, keyRef(token, "closing", ""), signer.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	k.(signer.Closer).Close()
	k.(signer.Closer).Close()
	if _, err := k.Sign(ctx, digest(t)); !errors.Is(err, signer.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

// benchmarkSign measures Key.Sign throughput from 4 goroutines per CPU
// through a pool of the given size, for each curve.
func benchmarkSign(b *testing.B, pool int) {
	token := newToken(b)
	ctx := context.Background()
	for _, c := range allCurves {
		k, err := CreateKey(ctx, keyRef(token, "bench-"+c.String(), fmt.Sprintf("pool-size=%d", pool)), c)
		if err != nil {
			b.Fatal(err)
		}
		defer k.(signer.Closer).Close()
		d := digest(b)
		b.Run(c.String(), func(b *testing.B) {
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := k.Sign(ctx, d); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkSign_Pool1(b *testing.B) { benchmarkSign(b, 1) }
func BenchmarkSign_Pool2(b *testing.B) { benchmarkSign(b, 2) }
func BenchmarkSign_Pool4(b *testing.B) { benchmarkSign(b, 4) }

// TestOpen_FindsEd25519KeyNamedByPrintableString generates an Ed25519 pair
// whose CKA_EC_PARAMS is the PKCS#11 3.0 PrintableString "edwards25519"
// form, as OpenSC and some HSMs write it.
func TestOpen_FindsEd25519KeyNamedByPrintableString(t *testing.T) {
	token := newToken(t)
	m, err := loadModule(hsmModule)
	if err != nil {
		t.Fatal(err)
	}
	slot, _, err := m.findSlot(&ref{token: token})
	if err != nil {
		t.Fatal(err)
	}
	h, err := m.openSession(slot, p11.CKF_RW_SESSION, testPIN)
	if err != nil {
		t.Fatal(err)
	}
	defer m.ctx.CloseSession(h)
	params := append([]byte{0x13, 12}, "edwards25519"...)
	_, _, err = m.ctx.GenerateKeyPair(h, []*p11.Mechanism{p11.NewMechanism(ckmECEdwardsKeyPairGen, nil)},
		[]*p11.Attribute{p11.NewAttribute(p11.CKA_TOKEN, true), p11.NewAttribute(p11.CKA_EC_PARAMS, params),
			p11.NewAttribute(p11.CKA_LABEL, "ed-string"), p11.NewAttribute(p11.CKA_ID, []byte{7})},
		[]*p11.Attribute{p11.NewAttribute(p11.CKA_TOKEN, true), p11.NewAttribute(p11.CKA_SIGN, true),
			p11.NewAttribute(p11.CKA_LABEL, "ed-string"), p11.NewAttribute(p11.CKA_ID, []byte{7})})
	if err != nil {
		testutil.Need(t, "a SoftHSM that generates Ed25519 keys named by the edwards25519 string", err)
	}
	k, err := signer.Open(context.Background(), keyRef(token, "ed-string", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer k.(signer.Closer).Close()
	d := digest(t)
	sig, err := signer.SignDigest(context.Background(), k, d)
	if err != nil {
		t.Fatal(err)
	}
	verifyIndependently(t, k.PublicKey(), d, sig)
}
