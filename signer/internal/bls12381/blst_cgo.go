//go:build cgo

package bls12381

import (
	"bytes"

	blst "github.com/supranational/blst/bindings/go"
)

// Available reports whether this build can use BLS12-381 keys.
const Available = true

// SecretKey is a BLS12-381 secret scalar with its public key, derived once.
type SecretKey struct {
	sk blst.SecretKey
	pk []byte // compressed G1
}

// SecretKeyFromLE builds a key from its 32-byte little-endian encoding
// (Octez's BLsk form), refusing 0 and values not below the group order.
// le is not retained.
func SecretKeyFromLE(le []byte) (*SecretKey, error) {
	if len(le) != SecretKeySize {
		return nil, ErrBadSecret
	}
	var be [SecretKeySize]byte
	for i := range be {
		be[i] = le[SecretKeySize-1-i]
	}
	k := &SecretKey{}
	ok := k.sk.Deserialize(be[:]) != nil // checks 0 < s < r
	clear(be[:])
	if !ok {
		k.Zero()
		return nil, ErrBadSecret
	}
	k.pk = new(blst.P1Affine).From(&k.sk).Compress()
	return k, nil
}

// KeyGen derives a key from at least 32 bytes of input keying material with
// the IETF KeyGen (empty key_info), as Octez's Bls.generate_key does.
func KeyGen(ikm []byte) (*SecretKey, error) {
	sk := blst.KeyGen(ikm)
	if sk == nil {
		return nil, ErrBadSecret
	}
	k := &SecretKey{sk: *sk}
	sk.Zeroize()
	k.pk = new(blst.P1Affine).From(&k.sk).Compress()
	return k, nil
}

// LE returns a copy of the 32-byte little-endian secret; the caller zeroes it.
func (k *SecretKey) LE() []byte {
	be := k.sk.Serialize()
	le := make([]byte, SecretKeySize)
	for i := range le {
		le[i] = be[SecretKeySize-1-i]
	}
	clear(be)
	return le
}

// PublicKey returns the 48-byte compressed public key (do not modify).
func (k *SecretKey) PublicKey() []byte { return k.pk }

// Sign hashes aug ‖ msg to G2 under dst and returns the 96-byte compressed
// signature. blst's signing multiplies in constant time.
func (k *SecretKey) Sign(aug, msg, dst []byte) []byte {
	return new(blst.P2Affine).Sign(&k.sk, msg, dst, aug).Compress()
}

// Zero overwrites the secret scalar.
func (k *SecretKey) Zero() { k.sk.Zeroize() }

// PublicKey is a validated public key: a point of G1's prime-order subgroup
// other than the identity.
type PublicKey struct {
	p blst.P1Affine
}

// ParsePublicKey decodes a canonical 48-byte compressed G1 point and checks
// it is in the prime-order subgroup and not the identity (blst KeyValidate).
func ParsePublicKey(b []byte) (*PublicKey, error) {
	if len(b) != PublicKeySize {
		return nil, ErrBadPublicKey
	}
	pk := &PublicKey{}
	if pk.p.Uncompress(b) == nil || !pk.p.KeyValidate() || !bytes.Equal(pk.p.Compress(), b) {
		return nil, ErrBadPublicKey
	}
	return pk, nil
}

// g1 is the generator of G1.
var g1 = blst.P1Generator().ToAffine()

// Prepared is the public-key half of a verification: the pairing of pk with
// aug ‖ msg hashed to G2, computed before (or while) the signature is made.
type Prepared struct {
	ctx blst.Pairing
}

// Prepare hashes aug ‖ msg to G2 under dst and pairs it with pk (a Miller
// loop); Check then completes the verification of a signature.
func (pk *PublicKey) Prepare(aug, msg, dst []byte) *Prepared {
	ctx := blst.PairingCtx(true, dst)
	if blst.PairingAggregatePkInG1(ctx, &pk.p, false, nil, false, msg, aug) != 0 {
		return &Prepared{}
	}
	blst.PairingCommit(ctx)
	return &Prepared{ctx: ctx}
}

// Check reports whether the 96-byte compressed signature sig verifies:
// sig must decode to a point of G2's prime-order subgroup and satisfy
// e(pk, H(aug ‖ msg)) = e(g1, sig).
func (p *Prepared) Check(sig []byte) bool {
	if p.ctx == nil || len(sig) != SignatureSize {
		return false
	}
	s := new(blst.P2Affine).Uncompress(sig)
	if s == nil || !s.SigValidate(false) {
		return false
	}
	return blst.PairingFinalVerify(p.ctx, blst.Fp12MillerLoop(s, g1))
}

// Verify checks a 96-byte compressed signature over aug ‖ msg under dst
// with a pairing check (Prepare then Check).
func (pk *PublicKey) Verify(aug, msg, sig, dst []byte) bool {
	return pk.Prepare(aug, msg, dst).Check(sig)
}
