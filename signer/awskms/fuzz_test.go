package awskms

import (
	"bytes"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/keyward/keyward/signer"
)

func FuzzParseDERSignature(f *testing.F) {
	sk, _ := secp256k1.GeneratePrivateKey()
	f.Add(secpecdsa.Sign(sk, make([]byte, 32)).Serialize())
	f.Add([]byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, der []byte) {
		sig, err := parseDERSignature(der)
		if err != nil {
			return
		}
		if len(sig) != 64 || bytes.Equal(sig[:32], make([]byte, 32)) || bytes.Equal(sig[32:], make([]byte, 32)) {
			t.Fatalf("accepted %x as %x", der, sig)
		}
	})
}

func FuzzParseSPKI(f *testing.F) {
	sk, _ := secp256k1.GeneratePrivateKey()
	f.Add(marshalSPKI(oidSecp256k1, sk.PubKey().SerializeUncompressed()), true)
	f.Add(marshalSPKI(oidP256, sk.PubKey().SerializeUncompressed()), false)
	f.Fuzz(func(t *testing.T, der []byte, secp bool) {
		c := signer.P256
		if secp {
			c = signer.Secp256k1
		}
		pub, err := parseSPKI(der, c)
		if err != nil {
			return
		}
		if pub.Curve != c || len(pub.Bytes) != 33 {
			t.Fatalf("accepted %x as %v %x", der, pub.Curve, pub.Bytes)
		}
		if _, err := pub.Uncompressed(); err != nil {
			t.Fatalf("accepted an invalid point: %v", err)
		}
	})
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{
		"awskms:///alias/baker?region=eu-west-1",
		"awskms://127.0.0.1:4599/alias/x?timeout=1s",
		"awskms:///arn:aws:kms:eu-west-1:111122223333:key/abcd",
		"awskms:///alias/x?endpoint=https://h",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := signer.ParseURI(s)
		if err != nil {
			return
		}
		r, err := parseRef(u)
		if err != nil {
			return
		}
		if r.keyID == "" || r.timeout <= 0 {
			t.Fatalf("accepted %q as %+v", s, r)
		}
	})
}
