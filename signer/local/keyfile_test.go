package local

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/internal/bls12381"
)

var (
	digestCurves = []signer.Curve{signer.Secp256k1, signer.P256, signer.Ed25519}
	allCurves    = func() []signer.Curve {
		if !bls12381.Available { // a build without cgo has no BLS12-381
			return digestCurves
		}
		return append(append([]signer.Curve(nil), digestCurves...), signer.BLS12381)
	}()
)

// signsFor has k sign through keyward's one path for its curve (SignMessage
// for BLS12-381, SignDigest otherwise) and checks the signature against pub.
func signsFor(t testing.TB, k signer.Key, pub signer.PublicKey, msg string) {
	t.Helper()
	ctx := context.Background()
	if pub.Curve == signer.BLS12381 {
		sig, err := signer.SignMessage(ctx, k, signer.BLSProofOfPossession, []byte(msg))
		if err != nil || !signer.VerifyBLS(pub, signer.BLSProofOfPossession, []byte(msg), sig) {
			t.Fatalf("BLS signature: %v", err)
		}
		return
	}
	d := digest(msg)
	sig, err := signer.SignDigest(ctx, k, d)
	if err != nil || !signer.Verify(pub, d, sig) {
		t.Fatalf("signature: %v", err)
	}
	if pub.Curve != signer.Ed25519 && !signer.IsLowS(pub.Curve, sig) {
		t.Fatal("SignDigest returned high-S")
	}
}

func digest(s string) []byte { d := sha256.Sum256([]byte(s)); return d[:] }

func writeTemp(t *testing.T, k *PrivateKey, opts WriteOptions) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.json")
	if err := WriteKeyFile(context.Background(), path, k, opts); err != nil {
		t.Fatalf("WriteKeyFile: %v", err)
	}
	return path
}

func TestKeyFile_RoundTripAllCurves(t *testing.T) {
	ctx := context.Background()
	for _, c := range allCurves {
		t.Run(c.String(), func(t *testing.T) {
			k, err := Generate(c)
			if err != nil {
				t.Fatal(err)
			}
			path := writeTemp(t, k, WriteOptions{Passphrase: []byte("correct horse")})
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("mode %#o, want 0600", st.Mode().Perm())
			}
			raw, _ := os.ReadFile(path)
			if bytes.Contains(raw, []byte(`"plaintext"`)) {
				t.Errorf("encrypted key file holds a plaintext field: %s", raw)
			}
			got, err := LoadKeyFile(ctx, path, []byte("correct horse"))
			if err != nil {
				t.Fatalf("LoadKeyFile: %v", err)
			}
			if got.Curve() != c || !bytes.Equal(got.Public().Bytes, k.Public().Bytes) {
				t.Fatalf("loaded key %v %x, want %v %x", got.Curve(), got.Public().Bytes, c, k.Public().Bytes)
			}
			signsFor(t, got, k.PublicKey(), "round trip")
		})
	}
}

func TestKeyFile_RefusesGroupOrOtherReadable(t *testing.T) {
	k, _ := Generate(signer.Secp256k1)
	path := writeTemp(t, k, WriteOptions{Plaintext: true})
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o602} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadKeyFile(context.Background(), path, nil)
		if !errors.Is(err, ErrInsecurePermissions) {
			t.Errorf("mode %#o: err = %v, want ErrInsecurePermissions", mode, err)
		}
		if err != nil && !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("mode %#o: error does not give the fix: %v", mode, err)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyFile(context.Background(), path, nil); err != nil {
		t.Errorf("mode 0400 refused: %v", err)
	}
}

func TestKeyFile_WrongPassphrase(t *testing.T) {
	k, _ := Generate(signer.P256)
	path := writeTemp(t, k, WriteOptions{Passphrase: []byte("right")})
	_, err := LoadKeyFile(context.Background(), path, []byte("wrong"))
	if !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("err = %v, want ErrWrongPassphrase", err)
	}
	_, err = LoadKeyFile(context.Background(), path, nil)
	if !errors.Is(err, ErrNoPassphrase) {
		t.Fatalf("no passphrase: err = %v, want ErrNoPassphrase", err)
	}
}

// rewrite edits the JSON of a key file in place, keeping mode 0600.
func rewrite(t *testing.T, path string, edit func(kf map[string]any)) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kf map[string]any
	if err := json.Unmarshal(raw, &kf); err != nil {
		t.Fatal(err)
	}
	edit(kf)
	out, _ := json.Marshal(kf)
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestKeyFile_RefusesSwappedPublicKey(t *testing.T) {
	ctx := context.Background()
	k, _ := Generate(signer.Secp256k1)
	other, _ := Generate(signer.Secp256k1)
	otherPub := other.Public().Bytes
	swap := func(kf map[string]any) { kf["public_key"] = hexEncode(otherPub) }

	path := writeTemp(t, k, WriteOptions{Passphrase: []byte("pw")})
	rewrite(t, path, swap)
	if _, err := LoadKeyFile(ctx, path, []byte("pw")); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("encrypted: err = %v, want ErrWrongPassphrase (AEAD failure)", err)
	}

	path = writeTemp(t, k, WriteOptions{Plaintext: true})
	rewrite(t, path, swap)
	if _, err := LoadKeyFile(ctx, path, nil); !errors.Is(err, ErrPublicKeyMismatch) {
		t.Errorf("plaintext: err = %v, want ErrPublicKeyMismatch", err)
	}

	path = writeTemp(t, k, WriteOptions{Passphrase: []byte("pw")})
	rewrite(t, path, func(kf map[string]any) { kf["curve"] = "p256" })
	if _, err := LoadKeyFile(ctx, path, []byte("pw")); err == nil {
		t.Error("curve changed: loaded anyway")
	}
}

func TestKeyFile_RefusesMalformed(t *testing.T) {
	k, _ := Generate(signer.Ed25519)
	tests := []struct {
		name string
		edit func(kf map[string]any)
	}{
		{"version 2", func(kf map[string]any) { kf["version"] = 2 }},
		{"unknown field", func(kf map[string]any) { kf["extra"] = 1 }},
		{"unknown kdf", func(kf map[string]any) { kf["crypto"].(map[string]any)["kdf"] = "pbkdf2" }},
		{"huge scrypt N", func(kf map[string]any) {
			kf["crypto"].(map[string]any)["kdf_params"] = map[string]any{"n": 1 << 30, "r": 8, "p": 1}
		}},
		{"bad cipher", func(kf map[string]any) { kf["crypto"].(map[string]any)["cipher"] = "aes-gcm" }},
		{"bad hex", func(kf map[string]any) { kf["crypto"].(map[string]any)["nonce"] = "zz" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeTemp(t, k, WriteOptions{Passphrase: []byte("pw")})
			rewrite(t, path, tc.edit)
			if _, err := LoadKeyFile(context.Background(), path, []byte("pw")); !errors.Is(err, ErrBadKeyFile) {
				t.Errorf("err = %v, want ErrBadKeyFile", err)
			}
		})
	}
}

func TestWriteKeyFile_RefusesOverwrite(t *testing.T) {
	k, _ := Generate(signer.Ed25519)
	path := writeTemp(t, k, WriteOptions{Plaintext: true})
	before, _ := os.ReadFile(path)
	err := WriteKeyFile(context.Background(), path, k, WriteOptions{Plaintext: true})
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("err = %v, want fs.ErrExist", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("existing file modified")
	}
}

func TestWriteKeyFile_RequiresExactlyOneProtection(t *testing.T) {
	k, _ := Generate(signer.Ed25519)
	for _, opts := range []WriteOptions{
		{},
		{Passphrase: []byte("x"), Plaintext: true},
		{Passphrase: []byte("x"), SealWith: "fake:///k"},
	} {
		path := filepath.Join(t.TempDir(), "k.json")
		if err := WriteKeyFile(context.Background(), path, k, opts); err == nil {
			t.Errorf("%+v accepted", opts)
		}
		if _, err := os.Stat(path); err == nil {
			t.Errorf("%+v: file created", opts)
		}
	}
}

func TestKeyFile_PlaintextDevModeLoads(t *testing.T) {
	k, _ := Generate(signer.Secp256k1)
	path := writeTemp(t, k, WriteOptions{Plaintext: true})
	got, err := LoadKeyFile(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Public().Bytes, k.Public().Bytes) {
		t.Fatal("public key differs")
	}
}

// fakeSealer wraps data keys by XOR with a fixed key-encryption key and
// counts calls.
type fakeSealer struct {
	mu      sync.Mutex
	kek     [32]byte
	unseals int
	fail    error
}

func (f *fakeSealer) Seal(_ context.Context, ref string) ([]byte, []byte, error) {
	dk := make([]byte, 32)
	rand.Read(dk)
	edk := append([]byte(ref+"|"), xor(dk, f.kek[:])...)
	return dk, edk, nil
}

func (f *fakeSealer) Unseal(_ context.Context, ref string, edk []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unseals++
	if f.fail != nil {
		return nil, f.fail
	}
	prefix := []byte(ref + "|")
	if !bytes.HasPrefix(edk, prefix) {
		return nil, errors.New("fake: encrypted data key is for another ref")
	}
	return xor(edk[len(prefix):], f.kek[:]), nil
}

func xor(a, b []byte) []byte {
	out := make([]byte, len(a))
	for i := range a {
		out[i] = a[i] ^ b[i%len(b)]
	}
	return out
}

var testSealer = func() *fakeSealer {
	f := &fakeSealer{}
	rand.Read(f.kek[:])
	signer.RegisterSealer("fakekms", f)
	return f
}()

func TestKeyFile_SealedRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, c := range allCurves {
		t.Run(c.String(), func(t *testing.T) {
			k, _ := Generate(c)
			path := writeTemp(t, k, WriteOptions{SealWith: "fakekms:///alias/x"})
			raw, _ := os.ReadFile(path)
			if !bytes.Contains(raw, []byte(`"sealed"`)) || !bytes.Contains(raw, []byte(`"fakekms:///alias/x"`)) {
				t.Fatalf("not a sealed key file: %s", raw)
			}
			got, err := LoadKeyFile(ctx, path, nil)
			if err != nil {
				t.Fatal(err)
			}
			signsFor(t, got, k.PublicKey(), "sealed")
		})
	}
}

func TestKeyFile_SealedRefusals(t *testing.T) {
	ctx := context.Background()
	k, _ := Generate(signer.Secp256k1)

	if err := WriteKeyFile(ctx, filepath.Join(t.TempDir(), "k.json"), k, WriteOptions{SealWith: "nokms:///x"}); !errors.Is(err, signer.ErrNoSealer) {
		t.Errorf("unregistered sealer on write: err = %v, want ErrNoSealer", err)
	}

	path := writeTemp(t, k, WriteOptions{SealWith: "fakekms:///alias/x"})
	rewrite(t, path, func(kf map[string]any) { kf["crypto"].(map[string]any)["seal_ref"] = "nokms:///alias/x" })
	if _, err := LoadKeyFile(ctx, path, nil); !errors.Is(err, signer.ErrNoSealer) {
		t.Errorf("unregistered sealer on load: err = %v, want ErrNoSealer", err)
	}

	path = writeTemp(t, k, WriteOptions{SealWith: "fakekms:///alias/x"})
	other, _ := Generate(signer.Secp256k1)
	rewrite(t, path, func(kf map[string]any) { kf["public_key"] = hexEncode(other.Public().Bytes) })
	if _, err := LoadKeyFile(ctx, path, nil); !errors.Is(err, ErrUnsealFailed) {
		t.Errorf("swapped public key: err = %v, want ErrUnsealFailed", err)
	}

	path = writeTemp(t, k, WriteOptions{SealWith: "fakekms:///alias/x"})
	down := errors.New("kms down")
	testSealer.mu.Lock()
	testSealer.fail = down
	testSealer.mu.Unlock()
	_, err := LoadKeyFile(ctx, path, nil)
	testSealer.mu.Lock()
	testSealer.fail = nil
	testSealer.mu.Unlock()
	if !errors.Is(err, ErrUnsealFailed) || !errors.Is(err, down) {
		t.Errorf("sealer failure: err = %v, want ErrUnsealFailed wrapping the sealer's error", err)
	}
}

func TestReadPassphraseFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
		wantErr error
	}{
		{"trailing LF trimmed", "s3cret\n", 0o600, "s3cret", nil},
		{"trailing CRLF trimmed", "s3cret\r\n", 0o600, "s3cret", nil},
		{"only one newline trimmed", "s3cret\n\n", 0o600, "s3cret\n", nil},
		{"inner spaces kept", " a b ", 0o400, " a b ", nil},
		{"group readable refused", "s3cret", 0o640, "", ErrInsecurePermissions},
		{"world readable refused", "s3cret", 0o644, "", ErrInsecurePermissions},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, string(rune('a'+i)))
			if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			os.Chmod(p, tc.mode)
			got, err := ReadPassphraseFile(p)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err == nil && string(got) != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestBackend_OpenWithPassphraseSourceOrEnv(t *testing.T) {
	ctx := context.Background()
	k, _ := Generate(signer.Secp256k1)
	path := writeTemp(t, k, WriteOptions{Passphrase: []byte("from file")})
	pf := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(pf, []byte("from file\n"), 0o600)

	t.Setenv(PassphraseEnv, "not this one")
	key, err := signer.Open(ctx, "file://"+path+"?passphrase-source="+pf)
	if err != nil {
		t.Fatalf("passphrase-source: %v", err)
	}
	if !bytes.Equal(key.PublicKey().Bytes, k.Public().Bytes) {
		t.Fatal("wrong key")
	}
	d := digest("backend")
	if _, err := signer.SignDigest(ctx, key, d); err != nil {
		t.Fatal(err)
	}

	t.Setenv(PassphraseEnv, "from file")
	if _, err := signer.Open(ctx, "file://"+path); err != nil {
		t.Fatalf("env: %v", err)
	}

	os.Chmod(pf, 0o644)
	if _, err := signer.Open(ctx, "file://"+path+"?passphrase-source="+pf); !errors.Is(err, ErrInsecurePermissions) {
		t.Fatalf("readable passphrase file: err = %v, want ErrInsecurePermissions", err)
	}
}

func TestBackend_OpenRefusals(t *testing.T) {
	ctx := context.Background()
	k, _ := Generate(signer.Ed25519)
	path := writeTemp(t, k, WriteOptions{Passphrase: []byte("pw")})
	os.Unsetenv(PassphraseEnv)
	tests := []struct {
		name    string
		ref     string
		wantErr error
	}{
		{"no passphrase anywhere", "file://" + path, ErrNoPassphrase},
		{"remote host", "file://example.com" + path, nil},
		{"unknown parameter", "file://" + path + "?passphrase=pw", nil},
		{"missing file", "file://" + path + ".missing", fs.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := signer.Open(ctx, tc.ref)
			if err == nil {
				t.Fatal("opened")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "passphrase=pw") {
				t.Fatalf("error leaks the passphrase: %v", err)
			}
		})
	}
}

func TestBackend_PlaintextAndSealedNeedNoPassphrase(t *testing.T) {
	ctx := context.Background()
	t.Setenv(PassphraseEnv, "")
	os.Unsetenv(PassphraseEnv)
	k, _ := Generate(signer.P256)
	for _, opts := range []WriteOptions{{Plaintext: true}, {SealWith: "fakekms:///alias/y"}} {
		path := writeTemp(t, k, opts)
		if _, err := signer.Open(ctx, "file://"+path); err != nil {
			t.Errorf("%+v: %v", opts, err)
		}
	}
}

func TestSign_RejectsBadDigestLength(t *testing.T) {
	for _, c := range digestCurves {
		k, _ := Generate(c)
		if _, err := k.Sign(context.Background(), make([]byte, 31)); !errors.Is(err, signer.ErrBadDigest) {
			t.Errorf("%v: err = %v, want ErrBadDigest", c, err)
		}
	}
}

// countingHandler counts slog records at warning level or above.
type countingHandler struct {
	mu    sync.Mutex
	warns int
	msgs  []string
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Level >= slog.LevelWarn {
		h.warns++
	}
	line := r.Message
	r.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
	h.msgs = append(h.msgs, line)
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

func TestKeyFile_PlaintextWarnsOnEveryLoad(t *testing.T) {
	h := &countingHandler{}
	old := slog.Default()
	slog.SetDefault(slog.New(h))
	t.Cleanup(func() { slog.SetDefault(old) })

	k, _ := Generate(signer.Secp256k1)
	path := writeTemp(t, k, WriteOptions{Plaintext: true})
	secretHex := hexEncode(k.secret())
	for range 2 {
		if _, err := LoadKeyFile(context.Background(), path, nil); err != nil {
			t.Fatal(err)
		}
	}
	if h.warns != 2 {
		t.Fatalf("%d warnings for 2 loads, want 2", h.warns)
	}
	for _, m := range h.msgs {
		if strings.Contains(m, secretHex) {
			t.Fatal("log line contains the secret")
		}
	}
}

func TestWriteKeyFile_UsesDefaultScryptCost(t *testing.T) {
	k, _ := Generate(signer.Ed25519)
	path := writeTemp(t, k, WriteOptions{Passphrase: []byte("pw")})
	raw, _ := os.ReadFile(path)
	var kf keyFile
	if err := json.Unmarshal(raw, &kf); err != nil {
		t.Fatal(err)
	}
	c := kf.Crypto
	if c.KDF != "scrypt" || c.KDFParams == nil || *c.KDFParams != (scryptParams{N: 1 << 15, R: 8, P: 1}) ||
		c.Cipher != "xchacha20poly1305" || len(c.Salt) != 32 || len(c.Nonce) != 24 || len(c.Ciphertext) != 32+16 {
		t.Fatalf("unexpected crypto section: %+v", c)
	}
	if kf.Curve != "ed25519" || !bytes.Equal(kf.PublicKey, k.Public().Bytes) {
		t.Fatalf("curve %q public key %x", kf.Curve, kf.PublicKey)
	}
}

func TestSign_ConcurrentUseIsSafe(t *testing.T) {
	for _, c := range allCurves {
		k, _ := Generate(c)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range 20 {
					signsFor(t, k, k.PublicKey(), string(rune(i*100+j)))
				}
			}()
		}
		wg.Wait()
	}
}
