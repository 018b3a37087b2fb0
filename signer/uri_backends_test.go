package signer_test

import (
	"context"
	"strings"
	"testing"

	"github.com/keyward/keyward/signer"
	_ "github.com/keyward/keyward/signer/awskms"
	_ "github.com/keyward/keyward/signer/local"
	_ "github.com/keyward/keyward/signer/pkcs11"
)

// Finding 3 of issue 11: a backend refusing a reference at start-up (here
// for a parameter in the wrong letter case or spelling, whose value the
// backend does not read) printed the reference with the secret.
func TestOpen_StartUpErrorsNeverEchoSecrets(t *testing.T) {
	const secret = "424242"
	for _, ref := range []string{
		"pkcs11:token=t;object=o?module-path=/nonexistent.so&PIN-VALUE=" + secret,
		"pkcs11:token=t;object=o?module-path=/nonexistent.so&pin%2Dvalue=" + secret + "&pin-source=/run/pin",
		"pkcs11:token=t;object=o;pin-value=" + secret + "?module-path=/nonexistent.so",
		"file:///nonexistent/k.json?Passphrase=" + secret,
		"awskms:///alias/x?region=eu-west-1&session-token=" + secret,
	} {
		_, err := signer.Open(context.Background(), ref)
		if err == nil {
			t.Errorf("%s: opened", ref)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: start-up error %q echoes the secret", ref, err)
		}
	}
}
