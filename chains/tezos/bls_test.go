package tezos

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/keyward/keyward/signer"
)

// A tz4 key from Octez's key_encoding_vectors.ml.
const (
	testTz4  = "tz4TFJdv9Jd44FtBMAxi3KQT7AtazhVyaPa6"
	testBLsk = "BLsk1eGhiPQXKtvvkBeXzmtVVJs6KPhEF45drF7MLjoCDcSnTGuyjL"
)

// blsNotInSubgroup is a G1 point on the curve outside the prime-order
// subgroup (Octez test_signature.ml, pk_not_in_subgroup).
const blsNotInSubgroup = "a4c9678ad327129f4388e7f7ff781fc8e98d181add820b79d15facdca422b3ee7fb20f7082a7f9b7c7915053191cb013"

func TestKeys_BLSEncodings(t *testing.T) {
	pub, err := ParsePublicKey(testBLpk)
	if err != nil {
		t.Fatal(err)
	}
	if pub.Curve != signer.BLS12381 || len(pub.Bytes) != 48 {
		t.Fatalf("ParsePublicKey = %v, %d bytes", pub.Curve, len(pub.Bytes))
	}
	if pkh, err := PublicKeyHash(pub); err != nil || pkh != testTz4 {
		t.Fatalf("PublicKeyHash = %q, %v", pkh, err)
	}
	if enc, err := EncodePublicKey(pub); err != nil || enc != testBLpk {
		t.Fatalf("EncodePublicKey = %q, %v", enc, err)
	}
	c, h, err := ParsePublicKeyHash(testTz4)
	if err != nil || c != signer.BLS12381 {
		t.Fatalf("ParsePublicKeyHash: %v %v", c, err)
	}
	if raw, _ := PKHBytes(pub); raw[0] != 3 || !bytes.Equal(raw[1:], h) {
		t.Fatalf("PKHBytes = %x", raw)
	}
	sc, secret, err := ParseSecretKey(testBLsk)
	if err != nil || sc != signer.BLS12381 || len(secret) != 32 {
		t.Fatalf("ParseSecretKey: %v %v", sc, err)
	}
	if back, _ := EncodeSecretKey(sc, secret); back != testBLsk {
		t.Fatalf("EncodeSecretKey = %q", back)
	}
}

func TestParsePublicKey_RefusesInvalidBLSPoints(t *testing.T) {
	outside, _ := hex.DecodeString(blsNotInSubgroup)
	for name, b := range map[string][]byte{
		"outside the subgroup": outside,
		"identity":             append([]byte{0xc0}, make([]byte, 47)...),
		"not on the curve":     append([]byte{0x80}, make([]byte, 47)...),
	} {
		s := B58Encode(PrefixBLpk, b)
		if _, err := ParsePublicKey(s); !errors.Is(err, signer.ErrBadBLSPublicKey) {
			t.Errorf("%s: err = %v, want signer.ErrBadBLSPublicKey", name, err)
		}
	}
}

func TestSignature_BLSEncodeDecode(t *testing.T) {
	sig := bytes.Repeat([]byte{0xa5}, 96)
	s, err := EncodeSignature(signer.BLS12381, sig)
	if err != nil || s[:5] != "BLsig" {
		t.Fatalf("EncodeSignature = %q, %v", s, err)
	}
	c, b, err := DecodeSignature(s)
	if err != nil || c != signer.BLS12381 || !bytes.Equal(b, sig) {
		t.Fatalf("DecodeSignature: %v %x %v", c, b, err)
	}
	for _, n := range []int{64, 95, 97} {
		if _, err := EncodeSignature(signer.BLS12381, make([]byte, n)); err == nil {
			t.Errorf("%d-byte BLS signature encoded", n)
		}
	}
	if _, err := EncodeSignature(signer.Ed25519, sig); err == nil {
		t.Error("96-byte Ed25519 signature encoded")
	}
}

func TestBLSSchemeForVersion_MapsOctezVersions(t *testing.T) {
	for v, want := range map[string]signer.BLSScheme{"": signer.BLSProofOfPossession, "1": signer.BLSAugmented, "2": signer.BLSProofOfPossession, "3": signer.BLSProofOfPossession} {
		if got, err := BLSSchemeForVersion(v); err != nil || got != want {
			t.Errorf("version %q: %v, %v; want %v", v, got, err, want)
		}
	}
	if _, err := BLSSchemeForVersion("0"); !errors.Is(err, ErrVersionWithoutBLS) {
		t.Errorf("version 0: err = %v, want ErrVersionWithoutBLS", err)
	}
	for _, v := range []string{"4", "03", " 3", "3 ", "-1", "v3", "latest", "99999999999999999999"} {
		if _, err := BLSSchemeForVersion(v); !errors.Is(err, ErrBadVersion) {
			t.Errorf("version %q: err = %v, want ErrBadVersion", v, err)
		}
	}
}

// generic wraps operation contents in a 0x03 request.
func generic(contents ...[]byte) []byte {
	p := append([]byte{MagicGeneric}, make([]byte, 32)...)
	for _, c := range contents {
		p = append(p, c...)
	}
	return p
}

// TestParseRequest_DALEntrapmentEvidenceLayouts: Ushuaia's
// dal_entrapment_evidence has an optional lag_index between slot_index and
// shard_with_proof; Tallinn's has none. Both decode; bytes that decode to
// different operations in the two layouts are refused.
func TestParseRequest_DALEntrapmentEvidenceLayouts(t *testing.T) {
	head := func() *enc { return (&enc{}).raw(24).dyn(consensusOp(21)).u16(7).raw(3) }
	seedNonce := (&enc{}).raw(1).i32(5).zeros(32).b // 37 bytes
	// Tallinn: shard index 0, empty share, a proof whose first byte is 36.
	// Read as Ushuaia (presence byte 0x00): shard index 0, a 36-byte share
	// swallowing the proof, then a proof made of the seed nonce revelation.
	ambiguous := head().zeros(8).raw(36).zeros(47).raw(seedNonce...).b
	tests := []struct {
		name  string
		p     []byte
		kinds []string // nil: malformed
	}{
		{"Ushuaia with lag_index", generic(head().raw(0xff, 2).i32(9).dyn([]byte{1, 2, 3}).zeros(48).b), []string{"dal_entrapment_evidence"}},
		{"Ushuaia without lag_index", generic(head().raw(0x00).i32(1<<24 | 1).dyn([]byte{1, 2, 3}).zeros(48).b), []string{"dal_entrapment_evidence"}},
		{"Tallinn", generic(head().i32(9).dyn([]byte{1, 2, 3}).zeros(48).b), []string{"dal_entrapment_evidence"}},
		{"Ushuaia then a transaction", generic(head().raw(0xff, 0).i32(9).dyn(nil).zeros(48).b, kindTail()), []string{"dal_entrapment_evidence", "transaction"}},
		{"Tallinn then a transaction", generic(head().i32(1<<24|9).dyn([]byte{4}).zeros(48).b, kindTail()), []string{"dal_entrapment_evidence", "transaction"}},
		{"ambiguous between the layouts", generic(ambiguous, kindTail()), nil},
		{"bad lag_index presence byte", generic(head().raw(0x01, 2).i32(1<<24 | 9).dyn(nil).zeros(48).b), nil},
		{"lag_index missing", generic(head().raw(0xff).b), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := ParseRequest(tc.p)
			if tc.kinds == nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("err = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, op := range req.Operations {
				got = append(got, op.Kind)
			}
			if len(got) != len(tc.kinds) {
				t.Fatalf("operations %v, want %v", got, tc.kinds)
			}
			for i := range got {
				if got[i] != tc.kinds[i] {
					t.Fatalf("operations %v, want %v", got, tc.kinds)
				}
			}
		})
	}
	// The ambiguous bytes do decode in each layout on its own.
	for _, tallinn := range []bool{false, true} {
		r := newReader(generic(ambiguous, kindTail()))
		r.off, r.tallinn = 1, tallinn
		var req Request
		parseGeneric(r, &req)
		if r.err != nil || r.off != len(r.b) {
			t.Fatalf("tallinn=%v: %v at %d", tallinn, r.err, r.off)
		}
	}
}

// TestParseRequest_KeyUpdatesCarryTheKeyAndProof: update_consensus_key,
// update_companion_key and reveal decode the new key (a tz4 key validated)
// and its BLS proof, so a policy allowing them by name sees what they carry.
func TestParseRequest_KeyUpdatesCarryTheKeyAndProof(t *testing.T) {
	proof := func(e *enc) *enc { return e.raw(0xff).dyn(bytes.Repeat([]byte{1}, 96)) }
	edpk := (&enc{}).raw(0).zeros(32).b
	for _, tc := range []struct {
		name, kind string
		body       []byte
		proof      bool
	}{
		{"tz4 consensus key with proof", "update_consensus_key", proof((&enc{}).manager(114).raw(blsKey()...)).b, true},
		{"tz4 companion key with proof", "update_companion_key", proof((&enc{}).manager(115).raw(blsKey()...)).b, true},
		{"tz4 reveal with proof", "reveal", proof((&enc{}).manager(107).raw(blsKey()...)).b, true},
		{"tz4 consensus key without proof", "update_consensus_key", (&enc{}).manager(114).raw(blsKey()...).raw(0).b, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := ParseRequest(generic(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			op := req.Operations[0]
			if op.Kind != tc.kind || op.PublicKey != testBLpk || op.Proof != tc.proof || op.Source == "" {
				t.Fatalf("%+v", op)
			}
		})
	}
	req, err := ParseRequest(generic((&enc{}).manager(114).raw(edpk...).raw(0).b))
	if err != nil || req.Operations[0].PublicKey[:4] != "edpk" || req.Operations[0].Proof {
		t.Fatalf("tz1 consensus key: %+v, %v", req, err)
	}
	outside, _ := hex.DecodeString(blsNotInSubgroup)
	for name, body := range map[string][]byte{
		"proof with a tz1 key":       proof((&enc{}).manager(114).raw(edpk...)).b,
		"tz4 key outside the group":  proof((&enc{}).manager(114).raw(3).raw(outside...)).b,
		"proof of 95 bytes":          (&enc{}).manager(115).raw(blsKey()...).raw(0xff).dyn(make([]byte, 95)).b,
		"unknown public key tag 5":   (&enc{}).manager(114).raw(5).zeros(48).raw(0).b,
		"tz4 key, proof truncated":   (&enc{}).manager(114).raw(blsKey()...).raw(0xff).i32(96).zeros(95).b,
		"companion key tag 3 zeroes": (&enc{}).manager(115).raw(3).zeros(48).raw(0).b,
	} {
		if _, err := ParseRequest(generic(body)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}
