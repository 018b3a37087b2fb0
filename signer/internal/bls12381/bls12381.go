// Package bls12381 holds keyward's BLS12-381 primitives (MinPk, as Tezos tz4 keys use them): secret and public keys, signing under a ciphersuite and verification, through blst.
package bls12381

import "errors"

// Sizes of the encodings (compressed points; the secret is a scalar).
const (
	SecretKeySize = 32 // little-endian scalar, as in Octez BLsk
	PublicKeySize = 48 // compressed G1 point
	SignatureSize = 96 // compressed G2 point
)

// Domain separation tags of the ciphersuites Octez uses
// (src/lib_bls12_381_signature/bls12_381_signature.ml, MinPk).
var (
	// DSTPop is the proof-of-possession scheme's signature ciphersuite (MinPk.Pop.sign).
	DSTPop = []byte("BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_")
	// DSTAug is the message-augmentation scheme's ciphersuite (MinPk.Aug.sign).
	DSTAug = []byte("BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_AUG_")
	// DSTProof is the ciphersuite of proofs of possession (MinPk.Pop.pop_prove).
	DSTProof = []byte("BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_")
)

// Errors. Check with errors.Is.
var (
	// ErrUnavailable means this build has no BLS12-381 (blst needs cgo).
	ErrUnavailable = errors.New("BLS12-381 keys need a keyward built with cgo (blst)")
	// ErrBadSecret means a secret is not a scalar in [1, r-1] of 32 bytes.
	ErrBadSecret = errors.New("not a BLS12-381 scalar in [1, r-1]")
	// ErrBadPublicKey means bytes are not a compressed G1 point of the prime-order subgroup other than the identity.
	ErrBadPublicKey = errors.New("not a canonical compressed G1 point of the prime-order subgroup other than the identity")
)
