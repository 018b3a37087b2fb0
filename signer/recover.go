package signer

import (
	"errors"
	"fmt"
	"math/big"

	"filippo.io/nistec"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// ErrNotRecoverable means no public key can be recovered from an ECDSA
// signature with the given recovery id: r or s out of range, no curve point
// with that x coordinate, or a result at infinity.
var ErrNotRecoverable = errors.New("no public key recovers from the signature")

// P-256 constants (FIPS 186-4, D.1.2.3): the field prime and the group order.
var (
	p256P, _ = new(big.Int).SetString("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff", 16)
	p256N, _ = new(big.Int).SetString("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", 16)
)

// p256Point decodes a SEC1 compressed (33-byte) or uncompressed (65-byte)
// P-256 point, refusing the point at infinity and points off the curve.
func p256Point(b []byte) (*nistec.P256Point, error) {
	if len(b) != 33 && len(b) != 65 {
		return nil, fmt.Errorf("invalid P-256 point: %d bytes", len(b))
	}
	p, err := nistec.NewP256Point().SetBytes(b)
	if err != nil {
		return nil, fmt.Errorf("invalid P-256 point: %w", err)
	}
	return p, nil
}

// Recover returns the public key for which sig (r‖s) over the 32-byte digest
// verifies, chosen by recID as in SEC 1 §4.1.6: bit 0 is the parity of R's y
// coordinate, bit 1 says R's x coordinate is r+n. It is for secp256k1 and
// P-256 keys; a recID that fits no point is ErrNotRecoverable.
func Recover(c Curve, digest, sig []byte, recID byte) (PublicKey, error) {
	if len(digest) != 32 {
		return PublicKey{}, ErrBadDigest
	}
	if len(sig) != 64 {
		return PublicKey{}, fmt.Errorf("%w: signature is %d bytes, want 64", ErrNotRecoverable, len(sig))
	}
	if recID > 3 {
		return PublicKey{}, fmt.Errorf("%w: recovery id %d (want 0 to 3)", ErrNotRecoverable, recID)
	}
	switch c {
	case Secp256k1:
		compact := make([]byte, 65)
		compact[0] = 27 + 4 + recID // compressed-key flag, then the id
		copy(compact[1:], sig)
		pk, _, err := secpecdsa.RecoverCompact(compact, digest)
		if err != nil {
			return PublicKey{}, fmt.Errorf("%w: %v", ErrNotRecoverable, err)
		}
		return PublicKey{Curve: c, Bytes: pk.SerializeCompressed()}, nil
	case P256:
		return recoverP256(digest, sig, recID)
	}
	return PublicKey{}, fmt.Errorf("%w: no recovery for %v keys", ErrNotRecoverable, c)
}

// RecoverPublicKeys returns every public key (one per valid recovery id) for
// which sig (r‖s) over digest verifies: secp256k1 and P-256 only.
func RecoverPublicKeys(c Curve, digest, sig []byte) []PublicKey {
	var out []PublicKey
	for id := byte(0); id < 4; id++ {
		if pub, err := Recover(c, digest, sig, id); err == nil {
			out = append(out, pub)
		}
	}
	return out
}

// recoverP256 computes Q = r⁻¹(sR − eG) = u1·G + u2·R with u1 = −e·r⁻¹ and
// u2 = s·r⁻¹ (mod n), where R is the point recID names.
func recoverP256(digest, sig []byte, recID byte) (PublicKey, error) {
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	if r.Sign() == 0 || s.Sign() == 0 || r.Cmp(p256N) >= 0 || s.Cmp(p256N) >= 0 {
		return PublicKey{}, fmt.Errorf("%w: r or s out of range", ErrNotRecoverable)
	}
	x := new(big.Int).Set(r)
	if recID&2 != 0 {
		if x.Add(x, p256N); x.Cmp(p256P) >= 0 {
			return PublicKey{}, fmt.Errorf("%w: r+n is not a field element", ErrNotRecoverable)
		}
	}
	comp := make([]byte, 33)
	comp[0] = 2 + recID&1
	x.FillBytes(comp[1:])
	R, err := p256Point(comp)
	if err != nil {
		return PublicKey{}, fmt.Errorf("%w: no curve point has x = r", ErrNotRecoverable)
	}
	rInv := new(big.Int).ModInverse(r, p256N) // n is prime and 0 < r < n
	e := new(big.Int).SetBytes(digest)
	u1 := e.Neg(e).Mul(e, rInv).Mod(e, p256N)
	u2 := s.Mul(s, rInv).Mod(s, p256N)
	var b1, b2 [32]byte
	u1G, err := nistec.NewP256Point().ScalarBaseMult(u1.FillBytes(b1[:]))
	if err != nil {
		return PublicKey{}, err
	}
	u2R, err := nistec.NewP256Point().ScalarMult(R, u2.FillBytes(b2[:]))
	if err != nil {
		return PublicKey{}, err
	}
	q := u1G.Add(u1G, u2R)
	if q.IsInfinity() == 1 {
		return PublicKey{}, fmt.Errorf("%w: the result is the point at infinity", ErrNotRecoverable)
	}
	return PublicKey{Curve: P256, Bytes: q.BytesCompressed()}, nil
}
