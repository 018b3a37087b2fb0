package tezos

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/keyward/keyward/signer"
)

type realVector struct {
	Name       string   `json:"name"`
	Source     string   `json:"source"`
	Hex        string   `json:"hex"`
	Kind       Kind     `json:"kind"`
	ChainID    string   `json:"chain_id"`
	Level      int64    `json:"level"`
	Round      int64    `json:"round"`
	Operations []string `json:"operations"`
	First      *struct {
		Source, Fee, Amount, Destination, Entrypoint string
	} `json:"first"`
}

func loadReal(t testing.TB) []realVector {
	t.Helper()
	b, err := os.ReadFile("testdata/real_requests.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []realVector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

type forgedOp struct {
	Kind, Source, Fee, Amount, Destination, Entrypoint string
}

type forgedFile struct {
	Operations []struct {
		Name   string `json:"name"`
		Hex    string `json:"hex"`
		Expect struct {
			Branch     string     `json:"branch"`
			Operations []forgedOp `json:"operations"`
		} `json:"expect"`
	} `json:"operations"`
	Consensus []struct {
		Name   string `json:"name"`
		Hex    string `json:"hex"`
		Expect struct {
			Kind      Kind   `json:"kind"`
			ChainID   string `json:"chain_id"`
			Level     int64  `json:"level"`
			Round     int64  `json:"round"`
			Branch    string `json:"branch"`
			Operation string `json:"operation"`
		} `json:"expect"`
	} `json:"consensus"`
	Signatures []struct {
		Curve     string `json:"curve"`
		Message   string `json:"message"`
		Digest    string `json:"digest"`
		PublicKey string `json:"public_key"`
		PKH       string `json:"pkh"`
		Signature string `json:"signature"`
	} `json:"signatures"`
}

func loadForged(t testing.TB) *forgedFile {
	t.Helper()
	b, err := os.ReadFile("testdata/taquito_forged.json")
	if err != nil {
		t.Fatal(err)
	}
	var f forgedFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return &f
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func bigStr(t testing.TB, v interface{ String() string }, isNil bool) string {
	if isNil {
		return ""
	}
	return v.String()
}

func TestParseRequest_RealPayloads(t *testing.T) {
	for _, v := range loadReal(t) {
		t.Run(v.Name, func(t *testing.T) {
			p := mustHex(t, v.Hex)
			req, err := ParseRequest(p)
			if err != nil {
				t.Fatalf("%s: %v", v.Source, err)
			}
			if req.Kind != v.Kind || req.ChainID != v.ChainID || req.Magic != p[0] {
				t.Fatalf("kind %q chain %q magic %x; want %q %q", req.Kind, req.ChainID, req.Magic, v.Kind, v.ChainID)
			}
			if req.Kind.Consensus() && (req.Level != v.Level || req.Round != v.Round) {
				t.Fatalf("level/round %d/%d, want %d/%d", req.Level, req.Round, v.Level, v.Round)
			}
			if len(req.Operations) != len(v.Operations) {
				t.Fatalf("%d operations, want %d", len(req.Operations), len(v.Operations))
			}
			for i, k := range v.Operations {
				if req.Operations[i].Kind != k {
					t.Errorf("operation %d kind %q, want %q", i, req.Operations[i].Kind, k)
				}
			}
			if f := v.First; f != nil {
				op := req.Operations[0]
				got := [5]string{op.Source, bigStr(t, op.Fee, op.Fee == nil), bigStr(t, op.Amount, op.Amount == nil), op.Destination, op.Entrypoint}
				want := [5]string{f.Source, f.Fee, f.Amount, f.Destination, f.Entrypoint}
				if got != want {
					t.Fatalf("first operation %v, want %v", got, want)
				}
			}
			if &req.Payload[0] != &p[0] || len(req.Payload) != len(p) {
				t.Fatal("Payload is not the payload given")
			}
		})
	}
}

func TestParseRequest_TaquitoForgedOperations(t *testing.T) {
	f := loadForged(t)
	if len(f.Operations) < 20 {
		t.Fatalf("only %d forged operation vectors", len(f.Operations))
	}
	for _, v := range f.Operations {
		t.Run(v.Name, func(t *testing.T) {
			req, err := ParseRequest(mustHex(t, v.Hex))
			if err != nil {
				t.Fatal(err)
			}
			if req.Kind != KindGeneric || req.Branch != v.Expect.Branch || req.ChainID != "" {
				t.Fatalf("kind %q branch %q", req.Kind, req.Branch)
			}
			if len(req.Operations) != len(v.Expect.Operations) {
				t.Fatalf("%d operations, want %d", len(req.Operations), len(v.Expect.Operations))
			}
			for i, want := range v.Expect.Operations {
				op := req.Operations[i]
				got := forgedOp{Kind: op.Kind, Source: op.Source, Destination: op.Destination, Entrypoint: op.Entrypoint}
				if op.Fee != nil {
					got.Fee = op.Fee.String()
				}
				if op.Amount != nil {
					got.Amount = op.Amount.String()
				}
				if got != want {
					t.Errorf("operation %d = %+v, want %+v", i, got, want)
				}
			}
		})
	}
}

func TestParseRequest_TaquitoForgedConsensus(t *testing.T) {
	for _, v := range loadForged(t).Consensus {
		t.Run(v.Name, func(t *testing.T) {
			req, err := ParseRequest(mustHex(t, v.Hex))
			if err != nil {
				t.Fatal(err)
			}
			e := v.Expect
			if req.Kind != e.Kind || req.ChainID != e.ChainID || req.Level != e.Level || req.Round != e.Round || req.Branch != e.Branch {
				t.Fatalf("got %s %s %d/%d %s, want %+v", req.Kind, req.ChainID, req.Level, req.Round, req.Branch, e)
			}
			if len(req.Operations) != 1 || req.Operations[0].Kind != e.Operation {
				t.Fatalf("operations %+v, want one %s", req.Operations, e.Operation)
			}
		})
	}
}

func TestSignature_VerifiesTaquitoVectors(t *testing.T) {
	for _, v := range loadForged(t).Signatures {
		t.Run(v.Curve, func(t *testing.T) {
			msg := mustHex(t, v.Message)
			d := Digest(msg)
			if hex.EncodeToString(d[:]) != v.Digest {
				t.Fatalf("digest %x, want %s", d, v.Digest)
			}
			pub, err := ParsePublicKey(v.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			if pkh, _ := PublicKeyHash(pub); pkh != v.PKH {
				t.Fatalf("pkh %s, want %s", pkh, v.PKH)
			}
			c, sig, err := DecodeSignature(v.Signature)
			if err != nil || c != pub.Curve {
				t.Fatalf("DecodeSignature: %v %v", c, err)
			}
			if !signer.Verify(pub, d[:], sig) {
				t.Fatal("signature does not verify")
			}
			if s, _ := EncodeSignature(c, sig); s != v.Signature {
				t.Fatalf("EncodeSignature = %s", s)
			}
		})
	}
}

func TestParseRequest_BlockRoundIsFitnessRound(t *testing.T) {
	// The real block above with fitness round 3 and payload round 1.
	p := mustHex(t, loadReal(t)[2].Hex)
	// fitness round: last 4 bytes of the fitness; payload round follows the payload hash.
	fit := 1 + 4 + 4 + 1 + 32 + 8 + 1 + 32 + 4 + 33 - 4
	p[fit+3] = 3
	pr := len(p) - 1 - 1 - 8 - 4
	p[pr+3] = 1
	req, err := ParseRequest(p)
	if err != nil {
		t.Fatal(err)
	}
	if req.Round != 3 {
		t.Fatalf("block round %d, want the fitness round 3", req.Round)
	}
}

func TestParseRequest_RejectsTruncationAtEveryOffset(t *testing.T) {
	var all [][]byte
	for _, v := range loadReal(t) {
		all = append(all, mustHex(t, v.Hex))
	}
	f := loadForged(t)
	for _, v := range f.Operations {
		all = append(all, mustHex(t, v.Hex))
	}
	for _, v := range f.Consensus {
		all = append(all, mustHex(t, v.Hex))
	}
	for _, p := range all {
		for n := 0; n < len(p); n++ {
			_, err := ParseRequest(p[:n])
			if !errors.Is(err, ErrMalformed) {
				// A 0x03 batch cut exactly between two contents is a valid shorter batch.
				if err == nil && p[0] == MagicGeneric {
					continue
				}
				t.Fatalf("payload %x cut at %d: err = %v, want ErrMalformed", p[:min(len(p), 8)], n, err)
			}
		}
	}
}

func TestParseRequest_RejectsTrailingBytes(t *testing.T) {
	for _, v := range loadReal(t) {
		p := append(mustHex(t, v.Hex), 0x00)
		if _, err := ParseRequest(p); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s with a trailing byte: err = %v", v.Name, err)
		}
	}
}

func TestParseRequest_RejectsBadInput(t *testing.T) {
	branch := "00000000000000000000000000000000000000000000000000000000000000ff"
	for name, tc := range map[string]struct {
		hex  string
		want error
	}{
		"empty":                          {"", ErrMalformed},
		"legacy block":                   {"01" + "7a06a770", ErrLegacyMagic},
		"legacy endorsement":             {"02" + "7a06a770", ErrLegacyMagic},
		"unknown magic":                  {"04aa", ErrUnsupportedMagic},
		"magic 0x00":                     {"00", ErrUnsupportedMagic},
		"generic without contents":       {"03" + branch, ErrMalformed},
		"generic unknown tag":            {"03" + branch + "07", ErrMalformed},
		"generic BLS-mode attestation":   {"03" + branch + "29" + "00000001" + "00000000" + branch, ErrMalformed},
		"attestation tag in 0x12":        {"127a06a770" + branch + "15" + "0000" + "00000001" + "00000000" + branch, ErrMalformed},
		"negative round":                 {"137a06a770" + branch + "15" + "0000" + "00000001" + "ffffffff" + branch, ErrMalformed},
		"two attestations":               {"137a06a770" + branch + "15" + "0000" + "00000001" + "00000000" + branch + "15", ErrMalformed},
		"bad boolean":                    {"03" + branch + "6e" + "00" + "0000000000000000000000000000000000000000" + "00000001", ErrMalformed},
		"zarith trailing zero":           {"03" + branch + "6e" + "00" + "0000000000000000000000000000000000000000" + "8000000000", ErrMalformed},
		"unknown pkh tag":                {"03" + branch + "6e" + "09" + "0000000000000000000000000000000000000000" + "00000000", ErrMalformed},
		"dynamic length beyond payload":  {"03" + branch + "11" + "000000ff" + "00", ErrMalformed},
		"dynamic length over 2^30":       {"03" + branch + "11" + "ffffffff", ErrMalformed},
		"micheline unknown node":         {"050b", ErrMalformed},
		"micheline two expressions":      {"05030b030b", ErrMalformed},
		"micheline sequence overrun":     {"0502000000020100000005", ErrMalformed},
		"micheline empty":                {"05", ErrMalformed},
		"block with non-tenderbake fit.": {"117a06a770" + "00000001" + "00" + branch + "0000000000000000" + "00" + branch + "00000000" + branch, ErrMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseRequest(mustHex(t, tc.hex))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			for _, other := range []error{ErrMalformed, ErrUnsupportedMagic, ErrLegacyMagic} {
				if other != tc.want && errors.Is(err, other) {
					t.Fatalf("err %v also matches %v", err, other)
				}
			}
		})
	}
}

func TestParseRequest_MichelsonData(t *testing.T) {
	for name, h := range map[string]string{
		"unit":             "05030b",
		"int":              "0500a401",
		"string":           "050100000003616263",
		"pair with annots": "05080701000000075854582d555344009cd1fe020000000325616e",
		"empty sequence":   "050200000000",
		"nested sequence":  "05020000001002000000050200000000030b0080897a",
		"generic prim":     "0509000000000b" + "02000000020001" + "0000" + "030b" + "00000003256162",
		"bytes":            "050a00000002cafe",
		"negative int":     "050041",
	} {
		t.Run(name, func(t *testing.T) {
			req, err := ParseRequest(mustHex(t, h))
			if err != nil {
				t.Fatal(err)
			}
			if req.Kind != KindMichelsonData || req.Operations != nil {
				t.Fatalf("kind %q", req.Kind)
			}
		})
	}
}

func TestParseRequest_DeepMichelineDoesNotExhaustStack(t *testing.T) {
	// Some (Some (... Unit)) nested 200000 deep.
	const depth = 200000
	p := make([]byte, 0, 1+2*depth+2)
	p = append(p, MagicMichelson)
	for i := 0; i < depth; i++ {
		p = append(p, mPrim1, 9)
	}
	p = append(p, mPrim0, 11)
	if _, err := ParseRequest(p); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseRequest(p[:len(p)-1]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated deep value: %v", err)
	}
}

func TestZarith_LargeValues(t *testing.T) {
	// 2^70 as an n: 11 bytes of 7 bits.
	raw := []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}
	z := zarithValue(raw, false)
	if z.String() != "1180591620717411303424" {
		t.Fatalf("n = %s", z)
	}
	// 2^63 needs 10 bytes (the first path beyond 64 bits).
	if z := zarithValue(raw[1:], false); z.String() != "9223372036854775808" {
		t.Fatalf("n = %s", z)
	}
	// 2^63-1 fits the fast path.
	if z := zarithValue([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, false); z.String() != "9223372036854775807" {
		t.Fatalf("n = %s", z)
	}
	// -(2^6) as z: first byte sign bit, 6 zero bits, continuation; then 1.
	z = zarithValue([]byte{0xc0, 0x01}, true)
	if z.String() != "-64" {
		t.Fatalf("z = %s", z)
	}
	r := newReader([]byte{0xff, 0xff})
	if r.zarith("x", false, true); !errors.Is(r.err, ErrMalformed) {
		t.Fatalf("unterminated zarith: %v", r.err)
	}
}

func TestOperationKinds_AreKnown(t *testing.T) {
	for _, k := range OperationKinds() {
		if !IsOperationKind(k) {
			t.Errorf("%s not known", k)
		}
	}
	for _, k := range []string{"stake", "transaction", "attestation_with_dal", "zk_rollup_update"} {
		if !IsOperationKind(k) {
			t.Errorf("%s not known", k)
		}
	}
	if IsOperationKind("endorsement") || IsOperationKind("") {
		t.Error("unknown kind accepted")
	}
}
