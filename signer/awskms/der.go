package awskms

import (
	encasn1 "encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/keyward/keyward/signer"
)

var (
	oidECPublicKey = encasn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidSecp256k1   = encasn1.ObjectIdentifier{1, 3, 132, 0, 10}
	oidP256        = encasn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
)

// parseSPKI parses a DER SubjectPublicKeyInfo holding an EC point on curve
// want (Go's crypto/x509 rejects secp256k1, so it is parsed here): the
// algorithm must be id-ecPublicKey and the named curve must match want.
func parseSPKI(der []byte, want signer.Curve) (signer.PublicKey, error) {
	var (
		in            = cryptobyte.String(der)
		spki, algo    cryptobyte.String
		algOID, curve encasn1.ObjectIdentifier
		bits          encasn1.BitString
	)
	if !in.ReadASN1(&spki, asn1.SEQUENCE) || !in.Empty() ||
		!spki.ReadASN1(&algo, asn1.SEQUENCE) ||
		!algo.ReadASN1ObjectIdentifier(&algOID) ||
		!spki.ReadASN1BitString(&bits) || !spki.Empty() {
		return signer.PublicKey{}, errors.New("malformed SubjectPublicKeyInfo")
	}
	if !algOID.Equal(oidECPublicKey) {
		return signer.PublicKey{}, fmt.Errorf("public key algorithm %v is not id-ecPublicKey", algOID)
	}
	if !algo.ReadASN1ObjectIdentifier(&curve) || !algo.Empty() {
		return signer.PublicKey{}, errors.New("EC parameters are not a named curve")
	}
	var got signer.Curve
	switch {
	case curve.Equal(oidSecp256k1):
		got = signer.Secp256k1
	case curve.Equal(oidP256):
		got = signer.P256
	default:
		return signer.PublicKey{}, fmt.Errorf("unsupported named curve %v", curve)
	}
	if got != want {
		return signer.PublicKey{}, fmt.Errorf("public key is on %v, key spec says %v", got, want)
	}
	if bits.BitLength != 8*len(bits.Bytes) {
		return signer.PublicKey{}, errors.New("public key bit string is not whole bytes")
	}
	return signer.PublicKeyFromPoint(got, bits.Bytes)
}

// parseDERSignature turns a DER ECDSA-Sig-Value (SEQUENCE { r INTEGER, s
// INTEGER }) into r||s, each left-padded to 32 bytes. It checks only the
// encoding and ranges 0 < r, s < 2^256; signer.SignDigest normalizes low-S and
// verifies against the key.
func parseDERSignature(der []byte) ([]byte, error) {
	var (
		in    = cryptobyte.String(der)
		inner cryptobyte.String
		r, s  = new(big.Int), new(big.Int)
	)
	if !in.ReadASN1(&inner, asn1.SEQUENCE) || !in.Empty() ||
		!inner.ReadASN1Integer(r) || !inner.ReadASN1Integer(s) || !inner.Empty() {
		return nil, errors.New("malformed DER ECDSA signature")
	}
	if r.Sign() <= 0 || s.Sign() <= 0 || r.BitLen() > 256 || s.BitLen() > 256 {
		return nil, errors.New("ECDSA signature value out of range")
	}
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out, nil
}
