package local

import (
	"context"
	"fmt"
	"os"

	"github.com/keyward/keyward/signer"
)

// PassphraseEnv is the environment variable holding the key file passphrase
// when the key URI has no passphrase-source parameter.
const PassphraseEnv = "KEYWARD_PASSPHRASE"

// Backend opens key files for the "file" scheme:
//
//	file:///var/lib/keyward/keys/baker.json
//	file:///var/lib/keyward/keys/baker.json?passphrase-source=/run/keyward/passphrase
//
// The passphrase comes from the passphrase-source file (mode 0600 or
// stricter, one trailing newline trimmed), else from $KEYWARD_PASSPHRASE. It
// is read only for passphrase-encrypted files, not for sealed or dev-mode
// plaintext files.
type Backend struct{}

var _ signer.Backend = Backend{}

func init() { signer.Register(Backend{}) }

// Scheme returns "file".
func (Backend) Scheme() string { return "file" }

// Open loads the key file named by u.
func (Backend) Open(ctx context.Context, u *signer.URI) (signer.Key, error) {
	if u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Errorf("local: key ref %q: file URIs name a local path (file:///path), not host %q", u.Redacted(), u.Host)
	}
	if u.Path == "" {
		return nil, fmt.Errorf("local: key ref %q: no path", u.Redacted())
	}
	for name := range u.Query {
		if name != "passphrase-source" {
			return nil, fmt.Errorf("local: key ref %q: unknown parameter %q (known: passphrase-source)", u.Redacted(), name)
		}
	}
	kf, curve, err := parseKeyFile(u.Path)
	if err != nil {
		return nil, err
	}
	var pass []byte
	if kf.Crypto.KDF == kdfScrypt {
		if src := u.Param("passphrase-source"); src != "" {
			pass, err = ReadPassphraseFile(src)
			if err != nil {
				return nil, err
			}
		} else if v, ok := os.LookupEnv(PassphraseEnv); ok {
			pass = []byte(v)
		} else {
			return nil, fmt.Errorf("local: key file %s: %w (set ?passphrase-source=FILE in the key ref or $%s)", u.Path, ErrNoPassphrase, PassphraseEnv)
		}
		defer zero(pass)
	}
	return decryptKeyFile(ctx, u.Path, kf, curve, pass)
}
