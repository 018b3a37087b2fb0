package signer

import (
	"net/url"
	"strings"
	"testing"
)

const pin = "424242"

// Finding 3 of issue 11: redact compared the raw query key, so
// pin%2Dvalue=424242 (which url.ParseQuery decodes to pin-value and the
// PKCS#11 backend uses) and PIN-VALUE=424242 were printed as given. A value
// is printed only when its decoded name, in any letter case, is one known
// to hold no secret.
func TestURI_RedactedHidesSecretsInEveryCaseAndEncoding(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"pkcs11:token=t;object=o?module-path=/m.so&pin-value=" + pin, "pkcs11:token=t;object=o?module-path=/m.so&pin-value=REDACTED"},
		{"pkcs11:token=t;object=o?module-path=/m.so&pin%2Dvalue=" + pin, "pkcs11:token=t;object=o?module-path=/m.so&pin%2Dvalue=REDACTED"},
		{"pkcs11:token=t;object=o?module-path=/m.so&pin%2dvalue=" + pin, ""},
		{"pkcs11:token=t;object=o?module-path=/m.so&%70in-value=" + pin, ""},
		{"pkcs11:token=t;object=o?module-path=/m.so&PIN-VALUE=" + pin, "pkcs11:token=t;object=o?module-path=/m.so&PIN-VALUE=REDACTED"},
		{"pkcs11:token=t;object=o?module-path=/m.so&Pin-Value=" + pin, ""},
		{"pkcs11:token=t;object=o?pin-value=42%34242&module-path=/m.so", "pkcs11:token=t;object=o?pin-value=REDACTED&module-path=/m.so"},
		{"pkcs11:token=t;object=o?module-path=/m.so;pin-value=" + pin, ""},
		{"pkcs11:token=t;object=o;" + pin + "?module-path=/m.so", ""},
		{"pkcs11:token=t;object=o?module-path=/m.so&" + pin, ""},
		{"pkcs11:token=t;object=o?module-path=/m.so&pin-value=" + pin + "#x", ""},
		{"pkcs11:token=t;object=o?module-path=/m.so&pin_value=" + pin, ""},
		{"pkcs11:token=t;object=o?module-path=/m.so&pin+value=" + pin, ""},
		{"pkcs11:token=t;object=o?module-path=/m.so&pin-value=" + pin + "&pin-value=" + pin, ""},
		{"pkcs11:token=t;object=o;pin-value=" + pin + "?module-path=/m.so", "pkcs11:token=t;object=o;pin-value=REDACTED?module-path=/m.so"},
		{"pkcs11:token=t;object=o;PIN%2DVALUE=" + pin, ""},
		{"pkcs11:token=t;object=o?module-path=/m.so&pin-source=/run/pin", "pkcs11:token=t;object=o?module-path=/m.so&pin-source=/run/pin"},
		{"file:///k.json?passphrase=" + pin, "file:///k.json?passphrase=REDACTED"},
		{"file:///k.json?PassPhrase=" + pin, ""},
		{"file:///k.json?passphrase-source=/run/p", "file:///k.json?passphrase-source=/run/p"},
		{"file:///k.json#" + pin, "file:///k.json#REDACTED"},
		{"awskms:///alias/baker?region=eu-west-1&token=" + pin, "awskms:///alias/baker?region=eu-west-1&token=REDACTED"},
		{"awskms:///alias/baker?aws_secret_access_key=" + pin, ""},
		{"awskms://keyward:" + pin + "@127.0.0.1:4599/alias/x", "awskms://REDACTED@127.0.0.1:4599/alias/x"},
		{"awskms://keyward:42/42?4#2@127.0.0.1:4599/alias/x", "awskms://REDACTED"},
		{"awskms://keyward:42@42@127.0.0.1:4599/alias/x", "awskms://REDACTED@127.0.0.1:4599/alias/x"},
		{"awskms://127.0.0.1:4599/alias/x?token=42/42@y", ""},
		// An "@" after a "/", "?" or "#": nothing after the scheme is printed.
		{"awskms:///alias/x?endpoint=https://u:" + pin + "@kms.example", "awskms://REDACTED"},
		{"awskms:///alias/x?token=" + pin + "@kms", "awskms://REDACTED"},
		{"awskms:///alias/x?endpoint=https%3A%2F%2Fu%3A" + pin + "%40kms.example", ""},
		{"awskms:///alias/x?endpoint=http://127.0.0.1:4599&timeout=5s", "awskms:///alias/x?endpoint=http://127.0.0.1:4599&timeout=5s"},
	} {
		u, err := ParseURI(tc.in)
		var got string
		if err != nil {
			got = err.Error()
		} else {
			got = u.Redacted()
		}
		if strings.Contains(got, pin) || strings.Contains(got, "4%34242") {
			t.Errorf("%s: printed as %s", tc.in, got)
		}
		if tc.want != "" && got != tc.want {
			t.Errorf("%s: printed as %s, want %s", tc.in, got, tc.want)
		}
	}
}

// ParseURI's errors name the reference redacted, and quote no part of it
// from the URL parser (whose errors hold the whole input or the bad escape).
func TestParseURI_ErrorsNeverEchoSecrets(t *testing.T) {
	for _, in := range []string{
		"pkcs11:token=t;object=o?module-path=/m.so&pin-value=4242%zz42",
		"pkcs11:token=t;object=o?module-path=/m.so&PIN-VALUE=4242%zz42",
		"pkcs11:token=t;object=o?module-path=/m.so;pin-value=424242",
		"pkcs11:token=t;object=o;pin-value=4242%zz42",
		"pkcs11:token=t;object=o;424242",
		"file:///k.json?passphrase=4242%zz42",
		"file:///k.json?pass%zzphrase=424242",
		"awskms://keyward:4242%zz42@127.0.0.1:4599/alias/x",
		"file:///k.json?module-path=/m.so;passphrase=424242",
		"awskms://keyward:424242@127.0.0.1:4599/alias/x\x7f",
		"bad scheme:pin-value=424242",
		"pin-value=424242",
	} {
		_, err := ParseURI(in)
		if err == nil {
			t.Errorf("%q: accepted", in)
			continue
		}
		if strings.Contains(err.Error(), "4242") {
			t.Errorf("%q: error %q echoes the secret", in, err)
		}
	}
}

// FuzzURI_Redacted: a parameter whose decoded, lower-cased name is not one
// of printableParams never has its value printed, by Redacted or in an error.
func FuzzURI_Redacted(f *testing.F) {
	for _, s := range []string{"pin-value", "pin%2Dvalue", "PIN-VALUE", "pin-source", "module-path", "%zz", "passphrase", "x y", "Module%2DPath"} {
		f.Add("pkcs11:token=t;object=o?module-path=/m.so&", s)
		f.Add("file:///k.json?", s)
	}
	const secret = "Zq7SecretValue"
	f.Fuzz(func(t *testing.T, prefix, name string) {
		// name=secret must be one whole query pair.
		if strings.ContainsAny(prefix, "#") || !strings.Contains(prefix, "?") || !strings.HasSuffix(prefix, "?") && !strings.HasSuffix(prefix, "&") ||
			strings.ContainsAny(name, "&;#=?") || strings.Contains(prefix+name, secret[:4]) {
			t.Skip()
		}
		in := prefix + name + "=" + secret
		dec, err := url.QueryUnescape(name)
		if err == nil && printableParams[strings.ToLower(dec)] {
			t.Skip()
		}
		var got string
		if u, err := ParseURI(in); err != nil {
			got = err.Error()
		} else {
			got = u.Redacted()
		}
		if strings.Contains(got, secret[:4]) {
			t.Fatalf("%q printed as %q", in, got)
		}
	})
}

// FuzzURI_RedactedUserinfo: a secret in a hierarchical reference's
// userinfo, written with or without %-escapes, is never printed.
func FuzzURI_RedactedUserinfo(f *testing.F) {
	for _, s := range []string{"s3cret", "pa/ss", "a?b#c", "x@y", "p:q", "%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, secret string) {
		if len(secret) < 4 || strings.ContainsAny(secret, " \t\r\n\x00") {
			t.Skip()
		}
		for _, in := range []string{
			"awskms://keyward:" + secret + "@127.0.0.1:4599/alias/x?region=eu-west-1",
			"awskms://keyward:" + url.PathEscape(secret) + "@127.0.0.1:4599/alias/x",
			"file://" + secret + "@/k.json",
		} {
			if strings.Contains(redactURI(strings.ReplaceAll(in, secret, "x")), secret) {
				continue // the secret is a piece of the rest of the reference
			}
			var got string
			if u, err := ParseURI(in); err != nil {
				got = err.Error()
			} else {
				got = u.Redacted()
			}
			if strings.Contains(got, secret) {
				t.Fatalf("%q printed as %q", in, got)
			}
		}
	})
}
