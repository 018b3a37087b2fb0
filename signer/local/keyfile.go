package local

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/scrypt"

	"github.com/keyward/keyward/signer"
)

// Errors returned when writing and loading key files. Check with errors.Is.
var (
	// ErrInsecurePermissions means a key or passphrase file is readable or
	// writable by group or others; the error names the chmod that fixes it.
	ErrInsecurePermissions = errors.New("file is accessible by group or others")
	// ErrWrongPassphrase means the key file did not decrypt with the
	// passphrase: the passphrase is wrong or the file was modified.
	ErrWrongPassphrase = errors.New("wrong passphrase, or key file modified (authentication failed)")
	// ErrNoPassphrase means an encrypted key needs a passphrase and none was given.
	ErrNoPassphrase = errors.New("key file is encrypted and no passphrase was given")
	// ErrBadKeyFile means the key file is malformed or of an unsupported version.
	ErrBadKeyFile = errors.New("malformed key file")
	// ErrPublicKeyMismatch means the secret in a key file does not match its public_key field.
	ErrPublicKeyMismatch = errors.New("key file secret does not match its public key")
	// ErrUnsealFailed means a sealed key file's data key could not be
	// unsealed or did not decrypt the file.
	ErrUnsealFailed = errors.New("sealed key file could not be unsealed")
)

// Key file format (version 1):
//
//	{"version":1,"curve":"secp256k1","public_key":"02…",
//	 "crypto":{"kdf":"scrypt","kdf_params":{"n":32768,"r":8,"p":1},"salt":"…",
//	           "cipher":"xchacha20poly1305","nonce":"…","ciphertext":"…"}}
//
// kdf "none" (dev mode only) holds "plaintext"; kdf "sealed" holds
// "seal_ref" and "encrypted_data_key" and encrypts with a data key obtained
// from the signer.Sealer registered for seal_ref's scheme. All byte fields are hex.
// The curve and public key are the AEAD's associated data.
const (
	fileVersion = 1
	kdfScrypt   = "scrypt"
	kdfNone     = "none"
	kdfSealed   = "sealed"
	cipherXC20  = "xchacha20poly1305"
)

// Scrypt cost for new files: N=2^15, r=8, p=1 (32 MiB, tens of milliseconds).
var defaultScrypt = scryptParams{N: 1 << 15, R: 8, P: 1}

// Bounds accepted when loading, so that a hostile file cannot make us
// allocate unbounded memory; weaker than the default is still loaded.
const (
	minScryptN = 1 << 10
	maxScryptP = 16
)

// maxScryptMemory bounds 128*N*r (a variable so the fuzz test can lower it).
var maxScryptMemory int64 = 256 << 20

type scryptParams struct {
	N int `json:"n"`
	R int `json:"r"`
	P int `json:"p"`
}

// valid reports whether the parameters are within the bounds accepted on load.
func (p *scryptParams) valid() bool {
	if p == nil || p.N < minScryptN || p.N > 1<<24 || p.N&(p.N-1) != 0 ||
		p.R < 1 || p.R > 64 || p.P < 1 || p.P > maxScryptP {
		return false
	}
	return int64(p.N)*int64(p.R)*128 <= maxScryptMemory
}

type cryptoSection struct {
	KDF              string        `json:"kdf"`
	KDFParams        *scryptParams `json:"kdf_params,omitempty"`
	Salt             hexBytes      `json:"salt,omitempty"`
	SealRef          string        `json:"seal_ref,omitempty"`
	EncryptedDataKey hexBytes      `json:"encrypted_data_key,omitempty"`
	Cipher           string        `json:"cipher,omitempty"`
	Nonce            hexBytes      `json:"nonce,omitempty"`
	Ciphertext       hexBytes      `json:"ciphertext,omitempty"`
	Plaintext        hexBytes      `json:"plaintext,omitempty"`
}

type keyFile struct {
	Version   int           `json:"version"`
	Curve     string        `json:"curve"`
	PublicKey hexBytes      `json:"public_key"`
	Crypto    cryptoSection `json:"crypto"`
}

type hexBytes []byte

func (h hexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }

func (h *hexBytes) UnmarshalText(b []byte) error {
	s := strings.TrimPrefix(string(b), "0x")
	out, err := hex.DecodeString(s)
	if err != nil {
		return errors.New("invalid hex")
	}
	*h = out
	return nil
}

// WriteOptions chooses how WriteKeyFile protects the secret; exactly one of
// Passphrase, Plaintext and SealWith is set.
type WriteOptions struct {
	// Passphrase encrypts the key with scrypt and XChaCha20-Poly1305.
	Passphrase []byte
	// Plaintext stores the secret unencrypted: for development only; every
	// load logs a warning.
	Plaintext bool
	// SealWith is a seal reference ("awskms:///alias/x"): the key is
	// encrypted with a data key from the signer.Sealer registered for its scheme.
	SealWith string
}

// associatedData binds the curve and public key to the ciphertext.
func associatedData(curve string, pub []byte) []byte {
	return []byte("keyward-keyfile-v1\x00" + curve + "\x00" + hex.EncodeToString(pub))
}

// WriteKeyFile writes k to a new file at path with mode 0600. It refuses to
// overwrite an existing file (the error matches fs.ErrExist).
func WriteKeyFile(ctx context.Context, path string, k *PrivateKey, opts WriteOptions) error {
	modes := 0
	if len(opts.Passphrase) > 0 {
		modes++
	}
	if opts.Plaintext {
		modes++
	}
	if opts.SealWith != "" {
		modes++
	}
	if modes != 1 {
		return errors.New("local: write key file: give exactly one of a passphrase, plaintext (dev mode) or a seal reference")
	}
	kf := keyFile{Version: fileVersion, Curve: k.curve.String(), PublicKey: k.pub.Bytes}
	secret := k.secret()
	defer zero(secret)
	ad := associatedData(kf.Curve, kf.PublicKey)
	switch {
	case opts.Plaintext:
		kf.Crypto = cryptoSection{KDF: kdfNone, Plaintext: append(hexBytes(nil), secret...)}
	case opts.SealWith != "":
		s, err := signer.SealerFor(opts.SealWith)
		if err != nil {
			return fmt.Errorf("local: write key file: %w", err)
		}
		dk, edk, err := s.Seal(ctx, opts.SealWith)
		if err != nil {
			return fmt.Errorf("local: write key file: seal with %s: %w", opts.SealWith, err)
		}
		defer zero(dk)
		if len(dk) != chacha20poly1305.KeySize || len(edk) == 0 {
			return fmt.Errorf("local: write key file: sealer for %s returned a %d-byte data key (want 32) and a %d-byte encrypted key", opts.SealWith, len(dk), len(edk))
		}
		nonce, ct, err := seal(dk, secret, ad)
		if err != nil {
			return fmt.Errorf("local: write key file: %w", err)
		}
		kf.Crypto = cryptoSection{KDF: kdfSealed, SealRef: opts.SealWith, EncryptedDataKey: edk, Cipher: cipherXC20, Nonce: nonce, Ciphertext: ct}
	default:
		salt := make([]byte, 32)
		if _, err := io.ReadFull(rand.Reader, salt); err != nil {
			return fmt.Errorf("local: write key file: %w", err)
		}
		p := defaultScrypt
		key, err := scrypt.Key(opts.Passphrase, salt, p.N, p.R, p.P, chacha20poly1305.KeySize)
		if err != nil {
			return fmt.Errorf("local: write key file: scrypt: %w", err)
		}
		defer zero(key)
		nonce, ct, err := seal(key, secret, ad)
		if err != nil {
			return fmt.Errorf("local: write key file: %w", err)
		}
		kf.Crypto = cryptoSection{KDF: kdfScrypt, KDFParams: &p, Salt: salt, Cipher: cipherXC20, Nonce: nonce, Ciphertext: ct}
	}
	data, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return fmt.Errorf("local: write key file: %w", err)
	}
	data = append(data, '\n')
	defer zero(data) // holds the plaintext secret in dev mode
	if opts.Plaintext {
		zero(kf.Crypto.Plaintext)
	}
	return writeNew(path, data)
}

func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("local: write key file: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("local: write key file %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func seal(key, plaintext, ad []byte) (nonce, ciphertext []byte, err error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, nil, err
	}
	nonce = make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, nil, err
	}
	return nonce, aead.Seal(nil, nonce, plaintext, ad), nil
}

func open(key []byte, c *cryptoSection, ad []byte) ([]byte, bool, error) {
	if c.Cipher != cipherXC20 {
		return nil, false, fmt.Errorf("%w: unsupported cipher %q", ErrBadKeyFile, c.Cipher)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrBadKeyFile, err)
	}
	if len(c.Nonce) != aead.NonceSize() {
		return nil, false, fmt.Errorf("%w: nonce is %d bytes, want %d", ErrBadKeyFile, len(c.Nonce), aead.NonceSize())
	}
	pt, err := aead.Open(nil, c.Nonce, c.Ciphertext, ad)
	if err != nil {
		return nil, false, nil
	}
	return pt, true, nil
}

// readPrivateFile reads a file that must not be accessible by group or
// others. The check is made on the opened file, not the path.
func readPrivateFile(path, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s is not a regular file", what, path)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s %s has mode %#o: %w; fix with: chmod 600 %s", what, path, st.Mode().Perm(), ErrInsecurePermissions, path)
	}
	const maxSize = 1 << 20
	data, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxSize {
		return nil, fmt.Errorf("%s %s is larger than %d bytes", what, path, maxSize)
	}
	return data, nil
}

// ReadPassphraseFile reads a passphrase from a file that must not be
// accessible by group or others, trimming one trailing newline (LF or CRLF).
func ReadPassphraseFile(path string) ([]byte, error) { return ReadSecretFile(path, "passphrase file") }

// ReadSecretFile is ReadPassphraseFile for any secret text; what names the
// file in errors ("secret key file").
func ReadSecretFile(path, what string) ([]byte, error) {
	data, err := readPrivateFile(path, what)
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	n := len(data)
	if n > 0 && data[n-1] == '\n' {
		n--
		if n > 0 && data[n-1] == '\r' {
			n--
		}
	}
	out := append([]byte(nil), data[:n]...)
	zero(data)
	return out, nil
}

// parseKeyFile reads and decodes the key file at path, checking its
// permissions and structure but not decrypting it.
func parseKeyFile(path string) (*keyFile, signer.Curve, error) {
	data, err := readPrivateFile(path, "key file")
	if err != nil {
		return nil, 0, fmt.Errorf("local: %w", err)
	}
	defer zero(data)
	kf, curve, err := decodeKeyFile(data)
	if err != nil {
		return nil, 0, fmt.Errorf("local: key file %s: %w", path, err)
	}
	return kf, curve, nil
}

// decodeKeyFile decodes and checks the structure of a key file.
func decodeKeyFile(data []byte) (*keyFile, signer.Curve, error) {
	var kf keyFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&kf); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrBadKeyFile, err)
	}
	if dec.More() {
		return nil, 0, fmt.Errorf("%w: data after the JSON object", ErrBadKeyFile)
	}
	if kf.Version != fileVersion {
		return nil, 0, fmt.Errorf("%w: version %d (this keyward reads version %d)", ErrBadKeyFile, kf.Version, fileVersion)
	}
	curve, err := signer.ParseCurve(kf.Curve)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrBadKeyFile, err)
	}
	pk, err := signer.PublicKeyFromPoint(curve, kf.PublicKey)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: public_key: %v", ErrBadKeyFile, err)
	}
	if !bytesEqual(pk.Bytes, kf.PublicKey) {
		return nil, 0, fmt.Errorf("%w: public_key must be in compact (compressed) form", ErrBadKeyFile)
	}
	return &kf, curve, nil
}

// LoadKeyFile loads the key file at path. passphrase is needed only for
// passphrase-encrypted files; sealed files are opened with the registered
// signer.Sealer; plaintext (dev mode) files log a warning each time they are loaded.
func LoadKeyFile(ctx context.Context, path string, passphrase []byte) (*PrivateKey, error) {
	kf, curve, err := parseKeyFile(path)
	if err != nil {
		return nil, err
	}
	return decryptKeyFile(ctx, path, kf, curve, passphrase)
}

func decryptKeyFile(ctx context.Context, path string, kf *keyFile, curve signer.Curve, passphrase []byte) (*PrivateKey, error) {
	c := &kf.Crypto
	ad := associatedData(kf.Curve, kf.PublicKey)
	var secret []byte
	switch c.KDF {
	case kdfNone:
		slog.Warn("local: loading an UNENCRYPTED key file (dev mode only; never use in production)",
			"path", path, "curve", curve.String(), "public_key", hex.EncodeToString(kf.PublicKey))
		secret = append([]byte(nil), c.Plaintext...)
		zero(c.Plaintext)
	case kdfScrypt:
		p := c.KDFParams
		if !p.valid() || len(c.Salt) < 16 {
			return nil, fmt.Errorf("local: key file %s: %w: scrypt parameters out of bounds", path, ErrBadKeyFile)
		}
		if len(passphrase) == 0 {
			return nil, fmt.Errorf("local: key file %s: %w", path, ErrNoPassphrase)
		}
		key, err := scrypt.Key(passphrase, c.Salt, p.N, p.R, p.P, chacha20poly1305.KeySize)
		if err != nil {
			return nil, fmt.Errorf("local: key file %s: %w: scrypt: %v", path, ErrBadKeyFile, err)
		}
		pt, ok, err := open(key, c, ad)
		zero(key)
		if err != nil {
			return nil, fmt.Errorf("local: key file %s: %w", path, err)
		}
		if !ok {
			return nil, fmt.Errorf("local: key file %s: %w", path, ErrWrongPassphrase)
		}
		secret = pt
	case kdfSealed:
		s, err := signer.SealerFor(c.SealRef)
		if err != nil {
			return nil, fmt.Errorf("local: key file %s: %w", path, err)
		}
		dk, err := s.Unseal(ctx, c.SealRef, c.EncryptedDataKey)
		if err != nil {
			return nil, fmt.Errorf("local: key file %s: %w: %w", path, ErrUnsealFailed, err)
		}
		if len(dk) != chacha20poly1305.KeySize {
			zero(dk)
			return nil, fmt.Errorf("local: key file %s: %w: data key is %d bytes, want 32", path, ErrUnsealFailed, len(dk))
		}
		pt, ok, err := open(dk, c, ad)
		zero(dk)
		if err != nil {
			return nil, fmt.Errorf("local: key file %s: %w", path, err)
		}
		if !ok {
			return nil, fmt.Errorf("local: key file %s: %w: data key does not decrypt the file (modified?)", path, ErrUnsealFailed)
		}
		secret = pt
	default:
		return nil, fmt.Errorf("local: key file %s: %w: unknown kdf %q", path, ErrBadKeyFile, c.KDF)
	}
	defer zero(secret)
	k, err := NewPrivateKey(curve, secret)
	if err != nil {
		return nil, fmt.Errorf("local: key file %s: %w", path, err)
	}
	if !bytesEqual(k.pub.Bytes, kf.PublicKey) {
		k.Zero()
		return nil, fmt.Errorf("local: key file %s: %w", path, ErrPublicKeyMismatch)
	}
	return k, nil
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }
