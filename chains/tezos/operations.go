package tezos

import "github.com/keyward/keyward/signer"

// Binary layouts follow the octez-codec description of protocol Ushuaia
// (proto_025_PsUshuai, the current protocol). Ushuaia's changes to Tallinn's
// (proto_024_PtTALLiN) operations: dal_entrapment_evidence gains an optional
// lag_index, and Signature V3 adds ML-DSA-44 keys (tz5 addresses, public key
// tag 4, signature prefix tag 4). Tallinn payloads still decode (see
// ParseRequest for the one layout that differs).

// pkh reads a 21-byte public key hash (tag ‖ 20 bytes) and returns its base58 form.
func (r *reader) pkh(what string) string {
	tag := r.u8(what + " tag")
	h := r.bytes(20, what)
	if !r.ok() {
		return ""
	}
	switch tag {
	case 0:
		return addressText(PrefixTz1, h)
	case 1:
		return addressText(PrefixTz2, h)
	case 2:
		return addressText(PrefixTz3, h)
	case 3:
		return addressText(PrefixTz4, h)
	case 4:
		return addressText(PrefixTz5, h)
	}
	r.off -= 21
	r.fail("unknown public key hash tag %d in %s", tag, what)
	return ""
}

// skipPKH checks a 21-byte public key hash without encoding it.
func (r *reader) skipPKH(what string) {
	tag := r.u8(what + " tag")
	r.skip(20, what)
	if r.ok() && tag > 4 {
		r.off -= 21
		r.fail("unknown public key hash tag %d in %s", tag, what)
	}
}

// Public key tags (Signature V3).
const (
	pkTagBLS     = 3
	pkTagMLDSA44 = 4
	mldsa44PKLen = 1312 // ML-DSA-44 verification key
	// mldsa44SigPrefixLen is the ML-DSA-44 signature (2420 bytes) less the
	// 64 bytes kept at the end of an operation.
	mldsa44SigPrefixLen = 2420 - 64
)

// publicKey reads a tagged public key and returns its tag and base58 form
// (edpk, sppk, p2pk, BLpk, mdpk). A BLS12-381 key must be a valid point of
// the prime-order subgroup.
func (r *reader) publicKey(what string) (byte, string) {
	start := r.off
	tag := r.u8(what + " tag")
	if !r.ok() {
		return 0, ""
	}
	var prefix []byte
	var n int
	switch tag {
	case 0:
		prefix, n = PrefixEdpk, 32
	case 1:
		prefix, n = PrefixSppk, 33
	case 2:
		prefix, n = PrefixP2pk, 33
	case pkTagBLS:
		prefix, n = PrefixBLpk, 48
	case pkTagMLDSA44:
		prefix, n = PrefixMdpk, mldsa44PKLen
	default:
		r.off--
		r.fail("unknown public key tag %d in %s", tag, what)
		return 0, ""
	}
	b := r.bytes(n, what)
	if !r.ok() {
		return 0, ""
	}
	if tag == pkTagBLS {
		if _, err := signer.PublicKeyFromPoint(signer.BLS12381, b); err != nil {
			r.off = start
			r.fail("%s: %v", what, err)
			return 0, ""
		}
	}
	return tag, B58Encode(prefix, b)
}

// contract reads a 22-byte contract id (implicit or originated) and returns its base58 form.
func (r *reader) contract(what string) string {
	start := r.off
	tag := r.u8(what + " tag")
	if !r.ok() {
		return ""
	}
	switch tag {
	case 0:
		return r.pkh(what)
	case 1:
		h := r.bytes(20, what)
		pad := r.u8(what + " padding")
		if !r.ok() {
			return ""
		}
		if pad != 0 {
			r.off--
			r.fail("non-zero padding in %s", what)
			return ""
		}
		return addressText(PrefixKT1, h)
	}
	r.off = start
	r.fail("unknown contract tag %d in %s", tag, what)
	return ""
}

// entrypoint names of the tagged cases of alpha.entrypoint.
var entrypointNames = [...]string{"default", "root", "do", "set_delegate", "remove_delegate", "deposit", "stake", "unstake", "finalize_unstake", "set_delegate_parameters"}

func (r *reader) entrypoint() string {
	tag := r.u8("entrypoint tag")
	if !r.ok() {
		return ""
	}
	if int(tag) < len(entrypointNames) {
		return entrypointNames[tag]
	}
	if tag != 255 {
		r.off--
		r.fail("unknown entrypoint tag %d", tag)
		return ""
	}
	n := int(r.u8("entrypoint length"))
	name := r.bytes(n, "entrypoint name")
	if !r.ok() {
		return ""
	}
	if !validEntrypointName(name) {
		r.off -= n + 1
		r.fail("invalid entrypoint name of %d bytes", n)
		return ""
	}
	return string(name)
}

// validEntrypointName reports whether b is an entrypoint name: 1 to 31
// characters of [a-zA-Z0-9_.%@].
func validEntrypointName(b []byte) bool {
	if len(b) == 0 || len(b) > 31 {
		return false
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '%' || c == '@') {
			return false
		}
	}
	return true
}

// consensusContent reads the body of a consensus content whose tag was
// read, returning its level and round (both must be non-negative).
func consensusContent(r *reader, tag byte) (level, round int32) {
	if tag != tagBLSPreattestation && tag != tagBLSAttestation {
		r.u16("slot")
	}
	level = r.i32("level")
	round = r.i32("round")
	r.skip(32, "block payload hash")
	if tag == tagAttestationWithDAL {
		r.zarith("DAL attestation", true, false)
	}
	if r.ok() && (level < 0 || round < 0) {
		r.fail("negative level %d or round %d", level, round)
	}
	return level, round
}

// inlinedConsensus reads an inlined consensus operation (branch, one
// consensus content, signature) that fills the current limit.
func inlinedConsensus(r *reader) {
	r.skip(32, "inlined operation branch")
	tag := r.u8("inlined operation tag")
	if !r.ok() {
		return
	}
	switch tag {
	case tagPreattestation, tagAttestation, tagAttestationWithDAL:
		consensusContent(r, tag)
	case tagPreattestationsAggregate, tagAttestationsAggregate:
		aggregate(r, tag)
	default:
		r.off--
		r.fail("operation tag %d not allowed in an inlined consensus operation", tag)
		return
	}
	// The signature takes the rest of the field.
	r.skip(r.left(), "inlined operation signature")
}

// aggregate reads the body of a (pre)attestations aggregate.
func aggregate(r *reader, tag byte) {
	r.skip(40, "aggregate consensus content")
	r.dyn("aggregate committee", func() {
		for r.ok() && r.left() > 0 {
			r.u16("committee slot")
			if tag == tagAttestationsAggregate && r.bool("DAL attestation presence") {
				r.zarith("DAL attestation", true, false)
			}
		}
	})
}

// parseBlockHeader reads a shell header and the Tenderbake protocol data
// (without signature unless signed), filling req's level and round when req
// is not nil.
func parseBlockHeader(r *reader, req *Request, signed bool) {
	level := r.i32("level")
	r.u8("proto")
	r.skip(32, "predecessor")
	r.i64("timestamp")
	r.u8("validation pass")
	r.skip(32, "operations hash")
	round := fitness(r)
	r.skip(32, "context")
	// Protocol data.
	r.skip(32, "payload hash")
	r.i32("payload round")
	r.skip(8, "proof of work nonce")
	if r.bool("seed nonce hash presence") {
		r.skip(32, "seed nonce hash")
	}
	votes := r.u8("per block votes")
	if r.ok() {
		switch votes {
		case 0, 1, 2, 4, 5, 6, 8, 9, 10:
		default:
			r.off--
			r.fail("invalid per block votes %d", votes)
		}
	}
	if signed {
		r.skip(r.left(), "block signature")
	}
	if r.ok() && level < 0 {
		r.fail("negative block level %d", level)
	}
	if req != nil && r.ok() {
		req.Level, req.Round = int64(level), round
	}
}

// fitness reads a Tenderbake fitness (version 2: level, locked round,
// -predecessor round - 1, round) and returns its round.
func fitness(r *reader) int64 {
	var round int64
	r.dyn("fitness", func() {
		var elems [5][]byte
		n := 0
		for r.ok() && r.left() > 0 {
			e := r.dynBytes("fitness element")
			if !r.ok() {
				return
			}
			if n == len(elems) {
				r.fail("more than %d fitness elements", len(elems))
				return
			}
			elems[n] = e
			n++
		}
		if n != 5 || len(elems[0]) != 1 || elems[0][0] != 2 || len(elems[1]) != 4 ||
			(len(elems[2]) != 0 && len(elems[2]) != 4) || len(elems[3]) != 4 || len(elems[4]) != 4 {
			r.fail("not a Tenderbake (version 2) fitness")
			return
		}
		e := elems[4]
		v := int32(uint32(e[0])<<24 | uint32(e[1])<<16 | uint32(e[2])<<8 | uint32(e[3]))
		if v < 0 {
			r.fail("negative fitness round %d", v)
			return
		}
		round = int64(v)
	})
	return round
}

// managerHeader reads source, fee, counter, gas limit and storage limit.
func managerHeader(r *reader, op *Operation) {
	op.Source = r.pkh("source")
	op.Fee = r.mutez("fee")
	r.zarith("counter", false, false)
	op.GasLimit = r.zarith("gas limit", false, true)
	op.StorageLimit = r.zarith("storage limit", false, true)
}

// blsProof reads the optional BLS proof of possession of reveal and key
// updates and reports whether there was one. The protocol takes a proof
// only with a tz4 key (keyTag 3).
func blsProof(r *reader, keyTag byte) bool {
	start := r.off
	if !r.bool("proof presence") {
		return false
	}
	if keyTag != pkTagBLS {
		r.off = start
		r.fail("BLS proof given with a non-BLS public key (tag %d)", keyTag)
		return false
	}
	if n := r.dynLen("proof"); r.ok() && n != 96 {
		r.fail("BLS proof of %d bytes, want 96", n)
		return false
	}
	r.skip(96, "proof")
	return r.ok()
}

// parseContent reads one operation content into op.
func parseContent(r *reader, op *Operation) {
	start := r.off
	tag := r.u8("operation tag")
	if !r.ok() {
		return
	}
	name := opKindName(tag)
	if name == "" || tag == tagBLSPreattestation || tag == tagBLSAttestation {
		r.off = start
		r.fail("unknown operation tag %d", tag)
		return
	}
	op.Tag, op.Kind = tag, name
	switch tag {
	case tagSeedNonceRevelation:
		r.i32("level")
		r.skip(32, "nonce")
	case tagDoubleConsensusEvidence:
		r.u16("slot")
		r.dyn("op1", func() { inlinedConsensus(r) })
		r.dyn("op2", func() { inlinedConsensus(r) })
	case tagDoubleBakingEvidence:
		r.dyn("bh1", func() { parseBlockHeader(r, nil, true) })
		r.dyn("bh2", func() { parseBlockHeader(r, nil, true) })
	case tagActivateAccount:
		r.skip(20, "pkh")
		r.skip(20, "secret")
	case tagProposals:
		op.Source = r.pkh("source")
		r.i32("period")
		n := r.dynLen("proposals")
		if r.ok() && (n%32 != 0 || n > 20*32) {
			r.fail("proposals list of %d bytes", n)
		}
		r.skip(n, "proposals")
	case tagBallot:
		op.Source = r.pkh("source")
		r.i32("period")
		r.skip(32, "proposal")
		if b := r.u8("ballot"); r.ok() && b > 2 {
			r.off--
			r.fail("invalid ballot %d", b)
		}
	case tagVDFRevelation:
		r.skip(200, "VDF solution")
	case tagDrainDelegate:
		r.skipPKH("consensus key")
		op.Source = r.pkh("delegate")
		op.Destination = r.pkh("destination")
	case tagFailingNoop:
		r.dynBytes("arbitrary")
	case tagPreattestation, tagAttestation, tagAttestationWithDAL:
		consensusContent(r, tag)
	case tagDALEntrapmentEvidence:
		r.entrapment = true
		r.dyn("attestation", func() { inlinedConsensus(r) })
		r.u16("consensus slot")
		r.u8("slot index")
		if !r.tallinn && r.bool("lag index presence") { // Ushuaia
			r.u8("lag index")
		}
		r.int31("shard index")
		r.dynBytes("shard")
		r.skip(48, "shard proof")
	case tagPreattestationsAggregate, tagAttestationsAggregate:
		aggregate(r, tag)
	case tagSignaturePrefix:
		switch t := r.u8("signature prefix tag"); {
		case !r.ok():
		case t == pkTagBLS:
			r.skip(32, "signature prefix")
		case t == pkTagMLDSA44:
			r.skip(mldsa44SigPrefixLen, "signature prefix")
		default:
			r.off--
			r.fail("unknown signature prefix tag %d", t)
		}
	default:
		managerHeader(r, op)
		parseManager(r, op, tag)
	}
}

func parseManager(r *reader, op *Operation, tag byte) {
	switch tag {
	case tagReveal:
		tag, pk := r.publicKey("public key")
		op.PublicKey, op.Proof = pk, blsProof(r, tag)
	case tagTransaction:
		op.Amount = r.mutez("amount")
		op.Destination = r.contract("destination")
		op.Entrypoint = "default"
		if r.bool("parameters presence") {
			op.Entrypoint = r.entrypoint()
			op.Parameters = r.dynBytes("parameters")
		}
		if r.ok() && op.Destination == op.Source && stakingEntrypoints[op.Entrypoint] {
			op.Kind = op.Entrypoint
		}
	case tagOrigination:
		op.Amount = r.mutez("balance")
		if r.bool("delegate presence") {
			r.skipPKH("delegate")
		}
		r.dynBytes("code")
		r.dynBytes("storage")
	case tagDelegation:
		if r.bool("delegate presence") {
			r.skipPKH("delegate")
		}
	case tagRegisterGlobalConstant:
		r.dynBytes("value")
	case tagSetDepositsLimit:
		if r.bool("limit presence") {
			r.mutez("limit")
		}
	case tagIncreasePaidStorage:
		r.zarith("amount", true, false)
		if t := r.u8("destination tag"); r.ok() && t != 1 {
			r.off--
			r.fail("increase_paid_storage destination is not an originated contract")
		}
		r.skip(20, "destination")
		if p := r.u8("destination padding"); r.ok() && p != 0 {
			r.off--
			r.fail("non-zero padding in destination")
		}
	case tagUpdateConsensusKey, tagUpdateCompanionKey:
		tag, pk := r.publicKey("public key")
		op.PublicKey, op.Proof = pk, blsProof(r, tag)
	case tagTransferTicket:
		r.dynBytes("ticket contents")
		r.dynBytes("ticket type")
		r.contract("ticketer")
		op.Amount = r.zarith("ticket amount", false, true)
		op.Destination = r.contract("destination")
		ep := r.dynBytes("entrypoint")
		if r.ok() && !validEntrypointName(ep) {
			r.off -= len(ep) + 4
			r.fail("invalid entrypoint name of %d bytes", len(ep))
		}
		op.Entrypoint = string(ep)
	case tagSrOriginate:
		if k := r.u8("PVM kind"); r.ok() && k > 2 {
			r.off--
			r.fail("unknown PVM kind %d", k)
		}
		r.dynBytes("kernel")
		r.dynBytes("parameters type")
		if r.bool("whitelist presence") {
			r.dyn("whitelist", func() {
				for r.ok() && r.left() > 0 {
					r.skipPKH("whitelisted key")
				}
			})
		}
	case tagSrAddMessages:
		r.dyn("messages", func() {
			for r.ok() && r.left() > 0 {
				r.dynBytes("message")
			}
		})
	case tagSrCement:
		r.skip(20, "rollup")
	case tagSrPublish:
		r.skip(20, "rollup")
		r.skip(76, "commitment")
	case tagSrRefute:
		r.skip(20, "rollup")
		r.skipPKH("opponent")
		refutation(r)
	case tagSrTimeout:
		r.skip(20, "rollup")
		r.skipPKH("staker alice")
		r.skipPKH("staker bob")
	case tagSrExecuteOutboxMessage:
		r.skip(20, "rollup")
		r.skip(32, "cemented commitment")
		r.dynBytes("output proof")
	case tagSrRecoverBond:
		r.skip(20, "rollup")
		r.skipPKH("staker")
	case tagDALPublishCommitment:
		r.skip(145, "slot header")
	case tagZkOrigination:
		r.dynBytes("public parameters")
		r.dyn("circuits info", func() {
			for r.ok() && r.left() > 0 {
				r.dynBytes("circuit name")
				if f := r.u8("circuit flag"); r.ok() && f > 2 {
					r.off--
					r.fail("unknown circuit flag %d", f)
				}
			}
		})
		r.dynBytes("init state")
		r.int31("nb_ops")
	case tagZkPublish:
		r.skip(20, "zk rollup")
		r.dyn("zk operations", func() {
			for r.ok() && r.left() > 0 {
				zkOperation(r)
			}
		})
	case tagZkUpdate:
		r.skip(20, "zk rollup")
		r.dyn("pending pis", func() {
			for r.ok() && r.left() > 0 {
				r.dynBytes("pi name")
				r.dynBytes("new state")
				r.skip(32, "fee")
				r.bool("exit validity")
			}
		})
		r.dyn("private pis", func() {
			for r.ok() && r.left() > 0 {
				r.dynBytes("pi name")
				r.dynBytes("new state")
				r.skip(32, "fee")
			}
		})
		r.dynBytes("fee pi")
		r.dynBytes("proof")
	default:
		r.fail("unknown operation tag %d", tag)
	}
}

// zkOperation reads one (operation, optional ticket) pair of zk_rollup_publish.
func zkOperation(r *reader) {
	r.int31("op code")
	r.skip(32, "ticket id")
	r.zarith("price amount", true, false)
	r.skipPKH("l1 destination")
	r.skip(20, "rollup id")
	r.dynBytes("payload")
	switch t := r.u8("ticket option"); {
	case !r.ok():
	case t == 0:
	case t == 1:
		r.skipMicheline("ticket contents")
		r.skipMicheline("ticket type")
		r.contract("ticketer")
	default:
		r.off--
		r.fail("invalid option tag %d", t)
	}
}

// refutation reads a smart rollup refutation (start or move).
func refutation(r *reader) {
	switch t := r.u8("refutation tag"); {
	case !r.ok():
	case t == 0:
		r.skip(64, "commitment hashes")
	case t == 1:
		r.zarith("choice", false, false)
		switch s := r.u8("step tag"); {
		case !r.ok():
		case s == 0:
			r.dyn("dissection", func() {
				for r.ok() && r.left() > 0 {
					if r.bool("state presence") {
						r.skip(32, "state")
					}
					r.zarith("tick", false, false)
				}
			})
		case s == 1:
			r.dynBytes("pvm step")
			if r.bool("input proof presence") {
				inputProof(r)
			}
		default:
			r.off--
			r.fail("unknown refutation step tag %d", s)
		}
	default:
		r.off--
		r.fail("unknown refutation tag %d", t)
	}
}

func inputProof(r *reader) {
	switch t := r.u8("input proof tag"); {
	case !r.ok():
	case t == 0:
		r.i32("level")
		r.zarith("message counter", false, false)
		r.dynBytes("serialized proof")
	case t == 1:
		switch p := r.u8("reveal proof tag"); {
		case !r.ok():
		case p == 0:
			n := int(r.u16("raw data length"))
			r.skip(n, "raw data")
		case p == 1, p == 3:
		case p == 2:
			r.skip(7, "DAL page id")
			r.dynBytes("DAL proof")
		default:
			r.off--
			r.fail("unknown reveal proof tag %d", p)
		}
	case t == 2:
	default:
		r.off--
		r.fail("unknown input proof tag %d", t)
	}
}
