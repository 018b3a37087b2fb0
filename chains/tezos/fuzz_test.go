package tezos

import (
	"errors"
	"testing"
)

func FuzzParseRequest(f *testing.F) {
	for _, v := range loadReal(f) {
		f.Add(mustHex(f, v.Hex))
	}
	forged := loadForged(f)
	for _, v := range forged.Operations {
		f.Add(mustHex(f, v.Hex))
	}
	for _, v := range forged.Consensus {
		f.Add(mustHex(f, v.Hex))
	}
	for _, v := range everyKindVectors() {
		f.Add(kindPayload(v.body))
	}
	f.Add([]byte{})
	f.Add([]byte{0x05, 0x02, 0x00, 0x00, 0x00, 0x02, 0x03, 0x0b})
	f.Fuzz(func(t *testing.T, p []byte) {
		req, err := ParseRequest(p)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedMagic) && !errors.Is(err, ErrLegacyMagic) {
				t.Fatalf("error %v matches no sentinel", err)
			}
			if req != nil {
				t.Fatal("request returned with an error")
			}
			return
		}
		if len(p) == 0 || req.Magic != p[0] || len(req.Payload) != len(p) {
			t.Fatal("magic or payload mismatch")
		}
		switch req.Kind {
		case KindBlock, KindPreattestation, KindAttestation:
			if req.Level < 0 || req.Round < 0 || len(req.ChainID) == 0 {
				t.Fatalf("consensus request %+v", req)
			}
			if req.Kind != KindBlock && (len(req.Operations) != 1 || req.Branch == "") {
				t.Fatalf("consensus operation %+v", req)
			}
		case KindGeneric:
			if len(req.Operations) == 0 || req.Branch == "" || req.ChainID != "" {
				t.Fatalf("generic request %+v", req)
			}
			for _, op := range req.Operations {
				if !IsOperationKind(op.Kind) {
					t.Fatalf("unknown kind %q", op.Kind)
				}
				if op.IsManager() && (op.Fee == nil || op.Fee.Sign() < 0 || op.Source == "") {
					t.Fatalf("manager operation %+v", op)
				}
				if op.Amount != nil && op.Amount.Sign() < 0 {
					t.Fatalf("negative amount %+v", op)
				}
			}
		case KindMichelsonData:
			if req.Operations != nil {
				t.Fatal("operations in Michelson data")
			}
		default:
			t.Fatalf("kind %q", req.Kind)
		}
	})
}

func FuzzB58Decode(f *testing.F) {
	f.Add("tz1W7Hs43hbxDJY9DPS3XRoon96RHN6CpV2Y", 0)
	f.Add("sppk7aFpmJLm3ZxMd3F4osvGBq77R1NeSpiJVnof3Wiv4mt84EBE9aX", 1)
	f.Add("NetXdQprcVkpaWU", 2)
	f.Add("1111", 3)
	f.Add("", 0)
	f.Add(testBLpk, 4)
	f.Add(testBLsk, 5)
	f.Add(testTz4, 0)
	prefixes := [][]byte{PrefixTz1, PrefixSppk, PrefixNet, nil, PrefixBLpk, PrefixBLsk}
	lens := []int{20, 33, 4, -1, 48, 32}
	f.Fuzz(func(t *testing.T, s string, i int) {
		if i < 0 {
			i = -i
		}
		i %= len(prefixes)
		data, err := B58Decode(s, prefixes[i], lens[i])
		if err != nil {
			if !errors.Is(err, ErrBase58) {
				t.Fatalf("error %v is not ErrBase58", err)
			}
			return
		}
		if lens[i] >= 0 && len(data) != lens[i] {
			t.Fatalf("%d bytes", len(data))
		}
		back := B58Encode(prefixes[i], data)
		again, err := B58Decode(back, prefixes[i], lens[i])
		if err != nil || string(again) != string(data) {
			t.Fatalf("round trip of %q failed", s)
		}
		// The encoding is canonical except for what decodes identically.
		if back != s {
			t.Fatalf("decoded %q but re-encodes as %q", s, back)
		}
		// Keys and signatures never panic either.
		ParsePublicKey(s)
		ParsePublicKeyHash(s)
		DecodeSignature(s)
		ParseSecretKey(s)
	})
}
