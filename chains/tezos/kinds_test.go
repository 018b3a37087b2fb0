package tezos

import (
	"encoding/binary"
	"errors"
	"testing"
)

// Hand-built contents for the kinds Taquito does not forge, following the
// octez-codec layouts of protocols Ushuaia and Tallinn. Each is checked
// inside a batch, followed by a transaction, so a wrong length would
// misplace it.

type enc struct{ b []byte }

func (e *enc) raw(b ...byte) *enc    { e.b = append(e.b, b...); return e }
func (e *enc) zeros(n int) *enc      { e.b = append(e.b, make([]byte, n)...); return e }
func (e *enc) u16(v uint16) *enc     { e.b = binary.BigEndian.AppendUint16(e.b, v); return e }
func (e *enc) i32(v int32) *enc      { e.b = binary.BigEndian.AppendUint32(e.b, uint32(v)); return e }
func (e *enc) dyn(b []byte) *enc     { e.i32(int32(len(b))); return e.raw(b...) }
func (e *enc) pkh() *enc             { return e.raw(0).zeros(20) }
func (e *enc) manager(tag byte) *enc { return e.raw(tag).pkh().raw(0x8c, 0x0b, 0x01, 0x90, 0x4e, 0x00) }

// testBLpk is a valid tz4 public key (Octez key_encoding_vectors.ml).
const testBLpk = "BLpk1ur5XXicWYMMzCVZZWyLZhybtyX8Zot2uCzDCZW8KcC5BdZiLVXRZvZzi4GuZYL9SarUvKpE"

// blsKey is the tagged binary form of testBLpk.
func blsKey() []byte {
	b, err := B58Decode(testBLpk, PrefixBLpk, 48)
	if err != nil {
		panic(err)
	}
	return append([]byte{3}, b...)
}

func consensusOp(tag byte) []byte {
	e := (&enc{}).zeros(32).raw(tag).u16(1).i32(100).i32(0).zeros(32)
	if tag == tagAttestationWithDAL {
		e.raw(0x81, 0x01)
	}
	return e.raw(make([]byte, 64)...).b // signature
}

func blockHeader() []byte {
	fit := (&enc{}).dyn([]byte{2}).dyn([]byte{0, 0, 0, 100}).dyn(nil).dyn([]byte{0xff, 0xff, 0xff, 0xff}).dyn([]byte{0, 0, 0, 1}).b
	e := (&enc{}).i32(100).raw(1).zeros(32).zeros(8).raw(4).zeros(32).dyn(fit).zeros(32)
	e.zeros(32).i32(0).zeros(8).raw(0xff).zeros(32).raw(4)
	return e.raw(make([]byte, 64)...).b
}

type kindVector struct {
	kind string
	body []byte
}

// kindTail is a transaction placed after each hand-built content.
func kindTail() []byte { return (&enc{}).manager(108).raw(0x01).raw(0).pkh().raw(0).b }

func kindPayload(body []byte) []byte {
	return append(append(append([]byte{MagicGeneric}, make([]byte, 32)...), body...), kindTail()...)
}

func everyKindVectors() []kindVector {
	mic := []byte{0x07, 0x07, 0x01, 0, 0, 0, 1, 'a', 0x03, 0x0b} // Pair "a" Unit
	return []kindVector{
		{"seed_nonce_revelation", (&enc{}).raw(1).i32(5).zeros(32).b},
		{"double_consensus_operation_evidence", (&enc{}).raw(2).u16(3).dyn(consensusOp(21)).dyn(consensusOp(23)).b},
		{"double_consensus_operation_evidence", (&enc{}).raw(2).u16(3).dyn(consensusOp(20)).dyn(consensusOp(20)).b},
		{"double_baking_evidence", (&enc{}).raw(3).dyn(blockHeader()).dyn(blockHeader()).b},
		{"activate_account", (&enc{}).raw(4).zeros(40).b},
		{"proposals", (&enc{}).raw(5).pkh().i32(7).dyn(make([]byte, 64)).b},
		{"ballot", (&enc{}).raw(6).pkh().i32(7).zeros(32).raw(2).b},
		{"vdf_revelation", (&enc{}).raw(8).zeros(200).b},
		{"drain_delegate", (&enc{}).raw(9).pkh().pkh().pkh().b},
		{"failing_noop", (&enc{}).raw(17).dyn([]byte("hi")).b},
		{"preattestation", (&enc{}).raw(20).u16(1).i32(1).i32(0).zeros(32).b},
		{"attestation", (&enc{}).raw(21).u16(1).i32(1).i32(0).zeros(32).b},
		{"attestation_with_dal", (&enc{}).raw(23).u16(1).i32(1).i32(0).zeros(32).raw(0x05).b},
		{"dal_entrapment_evidence", (&enc{}).raw(24).dyn(consensusOp(21)).u16(2).raw(1).i32(9).dyn([]byte{1, 2, 3}).zeros(48).b},                   // Tallinn
		{"dal_entrapment_evidence", (&enc{}).raw(24).dyn(consensusOp(21)).u16(2).raw(1).raw(0xff, 2).i32(9).dyn([]byte{1, 2, 3}).zeros(48).b},      // Ushuaia, lag_index 2
		{"dal_entrapment_evidence", (&enc{}).raw(24).dyn(consensusOp(23)).u16(2).raw(1).raw(0x00).i32(1<<24 | 1).dyn([]byte{1, 2, 3}).zeros(48).b}, // Ushuaia, no lag_index
		{"preattestations_aggregate", (&enc{}).raw(30).i32(1).i32(0).zeros(32).dyn([]byte{0, 1, 0, 2}).b},
		{"attestations_aggregate", (&enc{}).raw(31).i32(1).i32(0).zeros(32).dyn([]byte{0, 1, 0x00, 0, 2, 0xff, 0x81, 0x01}).b},
		{"reveal", (&enc{}).manager(107).raw(blsKey()...).raw(0xff).dyn(make([]byte, 96)).b},
		{"reveal", (&enc{}).manager(107).raw(1).zeros(33).raw(0).b},
		{"reveal", (&enc{}).manager(107).raw(4).zeros(1312).raw(0).b}, // ML-DSA-44 (tz5)
		{"register_global_constant", (&enc{}).manager(111).dyn(mic).b},
		{"set_deposits_limit", (&enc{}).manager(112).raw(0xff, 0x80, 0x01).b},
		{"increase_paid_storage", (&enc{}).manager(113).raw(0x41).raw(1).zeros(20).raw(0).b},
		{"update_consensus_key", (&enc{}).manager(114).raw(blsKey()...).raw(0xff).dyn(make([]byte, 96)).b},
		{"update_consensus_key", (&enc{}).manager(114).raw(0).zeros(32).raw(0).b},
		{"update_companion_key", (&enc{}).manager(115).raw(blsKey()...).raw(0).b},
		{"transfer_ticket", (&enc{}).manager(158).dyn(mic).dyn(mic).raw(1).zeros(21).raw(5).raw(0).pkh().dyn([]byte("default")).b},
		{"smart_rollup_originate", (&enc{}).manager(200).raw(1).dyn([]byte{0, 'a', 's', 'm'}).dyn(mic).raw(0xff).dyn(make([]byte, 42)).b},
		{"smart_rollup_add_messages", (&enc{}).manager(201).dyn((&enc{}).dyn([]byte("m1")).dyn(nil).b).b},
		{"smart_rollup_cement", (&enc{}).manager(202).zeros(20).b},
		{"smart_rollup_publish", (&enc{}).manager(203).zeros(20).zeros(76).b},
		{"smart_rollup_refute", (&enc{}).manager(204).zeros(20).pkh().raw(0).zeros(64).b},
		{"smart_rollup_refute", (&enc{}).manager(204).zeros(20).pkh().raw(1, 0x05, 0).dyn((&enc{}).raw(0xff).zeros(32).raw(0x07).raw(0x00).raw(0x08).b).b},
		{"smart_rollup_refute", (&enc{}).manager(204).zeros(20).pkh().raw(1, 0x05, 1).dyn([]byte{9}).raw(0xff).raw(0).i32(3).raw(2).dyn([]byte{1}).b},
		{"smart_rollup_refute", (&enc{}).manager(204).zeros(20).pkh().raw(1, 0x05, 1).dyn(nil).raw(0xff).raw(1, 0).u16(2).raw(7, 7).b},
		{"smart_rollup_refute", (&enc{}).manager(204).zeros(20).pkh().raw(1, 0x05, 1).dyn(nil).raw(0xff).raw(1, 2).zeros(7).dyn([]byte{1, 2}).b},
		{"smart_rollup_refute", (&enc{}).manager(204).zeros(20).pkh().raw(1, 0x05, 1).dyn(nil).raw(0xff).raw(2).b},
		{"smart_rollup_timeout", (&enc{}).manager(205).zeros(20).pkh().pkh().b},
		{"smart_rollup_execute_outbox_message", (&enc{}).manager(206).zeros(20).zeros(32).dyn([]byte{1, 2, 3}).b},
		{"smart_rollup_recover_bond", (&enc{}).manager(207).zeros(20).pkh().b},
		{"dal_publish_commitment", (&enc{}).manager(230).zeros(145).b},
		{"zk_rollup_origination", (&enc{}).manager(250).dyn([]byte{1}).dyn((&enc{}).dyn([]byte("c")).raw(2).b).dyn(make([]byte, 32)).i32(4).b},
		{"zk_rollup_publish", (&enc{}).manager(251).zeros(20).dyn((&enc{}).i32(1).zeros(32).raw(0x41).pkh().zeros(20).dyn(nil).raw(1).raw(mic...).raw(0x03, 0x68).raw(1).zeros(21).b).b},
		{"zk_rollup_publish", (&enc{}).manager(251).zeros(20).dyn((&enc{}).i32(1).zeros(32).raw(0x00).pkh().zeros(20).dyn([]byte{1}).raw(0).b).b},
		{"zk_rollup_update", (&enc{}).manager(252).zeros(20).dyn((&enc{}).dyn([]byte("p")).dyn(make([]byte, 32)).zeros(32).raw(0xff).b).dyn((&enc{}).dyn([]byte("q")).dyn(nil).zeros(32).b).dyn([]byte{1}).dyn([]byte{2}).b},
		{"signature_prefix", (&enc{}).raw(255, 3).zeros(32).b},
		{"signature_prefix", (&enc{}).raw(255, 4).zeros(2356).b},                      // ML-DSA-44
		{"transaction", (&enc{}).manager(108).raw(0x01).raw(0, 4).zeros(20).raw(0).b}, // to a tz5 address
	}
}

func TestParseRequest_EveryKind(t *testing.T) {
	for _, tc := range everyKindVectors() {
		t.Run(tc.kind, func(t *testing.T) {
			p := kindPayload(tc.body)
			req, err := ParseRequest(p)
			if err != nil {
				t.Fatal(err)
			}
			if len(req.Operations) != 2 || req.Operations[0].Kind != tc.kind || req.Operations[1].Kind != "transaction" {
				t.Fatalf("operations %+v", req.Operations)
			}
			// Any shorter body is malformed.
			for n := 1; n < len(tc.body); n++ {
				q := append(append([]byte{MagicGeneric}, make([]byte, 32)...), tc.body[:n]...)
				if _, err := ParseRequest(q); !errors.Is(err, ErrMalformed) {
					t.Fatalf("body cut at %d: err = %v", n, err)
				}
			}
		})
	}
}

func TestParseRequest_BLSModeConsensus(t *testing.T) {
	for _, tc := range []struct {
		magic, tag byte
		kind       Kind
	}{{0x12, 40, KindPreattestation}, {0x13, 41, KindAttestation}} {
		p := (&enc{}).raw(tc.magic).raw(0x7a, 0x06, 0xa7, 0x70).zeros(32).raw(tc.tag).i32(77).i32(2).zeros(32).b
		req, err := ParseRequest(p)
		if err != nil {
			t.Fatal(err)
		}
		if req.Kind != tc.kind || req.Level != 77 || req.Round != 2 || req.ChainID != "NetXdQprcVkpaWU" {
			t.Fatalf("%+v", req)
		}
	}
}

func TestParseRequest_RejectsTezAboveInt64(t *testing.T) {
	over := []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01} // 2^63
	max := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}        // 2^63-1
	build := func(fee, amount []byte) []byte {
		e := (&enc{}).raw(MagicGeneric).zeros(32).raw(108).pkh().raw(fee...).raw(0x01, 0x01, 0x00).raw(amount...).raw(0).pkh().raw(0)
		return e.b
	}
	if _, err := ParseRequest(build(max, max)); err != nil {
		t.Fatalf("2^63-1 refused: %v", err)
	}
	for name, p := range map[string][]byte{"fee": build(over, max), "amount": build(max, over)} {
		if _, err := ParseRequest(p); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s of 2^63: err = %v", name, err)
		}
	}
}

// An out-of-range Tez amount is reported without its (attacker-sized)
// decimal value: the error goes to the audit log, the operator log and the
// HTTP answer.
func TestParseRequest_OutOfRangeTezErrorIsBounded(t *testing.T) {
	long := make([]byte, 60000)
	for i := range long {
		long[i] = 0xff
	}
	long = append(long, 0x01)
	for name, p := range map[string][]byte{
		"fee":    (&enc{}).raw(MagicGeneric).zeros(32).raw(108).pkh().raw(long...).b,
		"amount": (&enc{}).raw(MagicGeneric).zeros(32).raw(108).pkh().raw(0x01, 0x01, 0x00, 0x00).raw(long...).b,
	} {
		_, err := ParseRequest(p)
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s: err = %v", name, err)
		}
		if n := len(err.Error()); n > 200 {
			t.Errorf("%s: error message of %d bytes", name, n)
		}
	}
}

// transfer_ticket's entrypoint is an entrypoint name as in a transaction
// (1 to 31 characters of [a-zA-Z0-9_.%@]), not arbitrary bytes that would
// reach refusal messages and logs.
func TestParseRequest_TransferTicketEntrypointIsAName(t *testing.T) {
	mic := []byte{0x03, 0x0b}
	build := func(ep string) []byte {
		body := (&enc{}).manager(158).dyn(mic).dyn(mic).raw(1).zeros(21).raw(5).raw(0).pkh().dyn([]byte(ep)).b
		return append(append([]byte{MagicGeneric}, make([]byte, 32)...), body...)
	}
	for _, ep := range []string{"default", "update", "a%b@c.d_9", "abcdefghijklmnopqrstuvwxyz01234"} {
		req, err := ParseRequest(build(ep))
		if err != nil {
			t.Fatalf("%q: %v", ep, err)
		}
		if req.Operations[0].Entrypoint != ep {
			t.Fatalf("%q: entrypoint %q", ep, req.Operations[0].Entrypoint)
		}
	}
	long := string(make([]byte, 4000))
	for _, ep := range []string{"", "abcdefghijklmnopqrstuvwxyz012345", "up\ndate", "x y", long} {
		if _, err := ParseRequest(build(ep)); !errors.Is(err, ErrMalformed) {
			t.Errorf("entrypoint of %d bytes %.20q: err = %v", len(ep), ep, err)
		}
	}
}

// A transaction is named after a staking entrypoint only when it goes to
// its own source, whether the entrypoint is tagged or named (tag 255); any
// other destination keeps the name transaction.
func TestParseRequest_StakingNeedsSelfAndEntrypoint(t *testing.T) {
	self := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}
	build := func(srcTag byte, dest []byte, ep []byte) []byte {
		e := (&enc{}).raw(MagicGeneric).zeros(32).raw(108).raw(srcTag).raw(self...).raw(0x01, 0x01, 0x00, 0x00).raw(0x05).raw(dest...)
		if ep == nil {
			return e.raw(0).b
		}
		return e.raw(0xff).raw(ep...).dyn([]byte{0x03, 0x0b}).b
	}
	implicit := func(tag byte) []byte { return append([]byte{0, tag}, self...) }
	kt1 := append(append([]byte{1}, self...), 0)
	named := func(s string) []byte { return append([]byte{255, byte(len(s))}, s...) }
	for name, tc := range map[string]struct {
		p          []byte
		kind, entr string
	}{
		"tagged stake to self":              {build(0, implicit(0), []byte{6}), "stake", "stake"},
		"named stake to self":               {build(0, implicit(0), named("stake")), "stake", "stake"},
		"named unstake to self, tz2":        {build(1, implicit(1), named("unstake")), "unstake", "unstake"},
		"tagged finalize_unstake to self":   {build(2, implicit(2), []byte{8}), "finalize_unstake", "finalize_unstake"},
		"set_delegate_parameters to self":   {build(0, implicit(0), []byte{9}), "set_delegate_parameters", "set_delegate_parameters"},
		"stake to same hash, other curve":   {build(0, implicit(1), []byte{6}), "transaction", "stake"},
		"stake to a KT1 with the same hash": {build(0, kt1, []byte{6}), "transaction", "stake"},
		"named Stake (case) to self":        {build(0, implicit(0), named("Stake")), "transaction", "Stake"},
		"default to self":                   {build(0, implicit(0), nil), "transaction", "default"},
		"deposit (tag 5) to self":           {build(0, implicit(0), []byte{5}), "transaction", "deposit"},
		"named default is default":          {build(0, kt1, named("default")), "transaction", "default"},
		"tag 2 is do":                       {build(0, kt1, []byte{2}), "transaction", "do"},
		"named entrypoint of 31 characters": {build(0, kt1, named("abcdefghijklmnopqrstuvwxyz01234")), "transaction", "abcdefghijklmnopqrstuvwxyz01234"},
	} {
		t.Run(name, func(t *testing.T) {
			req, err := ParseRequest(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			op := req.Operations[0]
			if op.Kind != tc.kind || op.Entrypoint != tc.entr {
				t.Fatalf("kind %q entrypoint %q, want %q %q", op.Kind, op.Entrypoint, tc.kind, tc.entr)
			}
		})
	}
	for name, ep := range map[string][]byte{
		"named of 32 characters": named("abcdefghijklmnopqrstuvwxyz012345"),
		"named empty":            named(""),
		"unknown tag 10":         {10},
		"unknown tag 254":        {254},
	} {
		if _, err := ParseRequest(build(0, kt1, ep)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// A 0x12 request carries a preattestation (tag 20 or BLS-mode 40) and a
// 0x13 request an attestation (21, 23 with DAL, or BLS-mode 41); no other
// consensus content passes under either magic byte.
func TestParseRequest_ConsensusTagMustMatchMagic(t *testing.T) {
	content := func(tag byte) *enc {
		e := (&enc{}).raw(tag)
		if tag != 40 && tag != 41 && tag != 30 && tag != 31 {
			e.u16(3)
		}
		e.i32(9).i32(1).zeros(32)
		if tag == 23 {
			e.raw(0x05)
		}
		if tag == 30 || tag == 31 {
			e.dyn(nil)
		}
		return e
	}
	for _, magic := range []byte{MagicPreattestation, MagicAttestation} {
		for _, tag := range []byte{20, 21, 23, 30, 31, 40, 41, 107} {
			p := append((&enc{}).raw(magic).raw(0x7a, 0x06, 0xa7, 0x70).zeros(32).b, content(tag).b...)
			req, err := ParseRequest(p)
			ok := magic == MagicPreattestation && (tag == 20 || tag == 40) || magic == MagicAttestation && (tag == 21 || tag == 23 || tag == 41)
			if ok != (err == nil) {
				t.Errorf("magic 0x%02x tag %d: err = %v", magic, tag, err)
				continue
			}
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("magic 0x%02x tag %d: err = %v", magic, tag, err)
				}
				continue
			}
			if req.Level != 9 || req.Round != 1 || req.ChainID != "NetXdQprcVkpaWU" {
				t.Errorf("magic 0x%02x tag %d: %+v", magic, tag, req)
			}
		}
	}
}
