package tezos

import (
	"errors"
	"fmt"
	"math/big"
	"reflect"
)

// Kind is the kind of a signing request, named as in keyward's configuration.
type Kind string

// Request kinds, one per accepted magic byte.
const (
	KindBlock          Kind = "block"          // 0x11
	KindPreattestation Kind = "preattestation" // 0x12
	KindAttestation    Kind = "attestation"    // 0x13 (with or without DAL content)
	KindGeneric        Kind = "generic"        // 0x03
	KindMichelsonData  Kind = "michelson_data" // 0x05
)

// Magic bytes (watermarks) of the requests a Tezos remote signer receives.
const (
	MagicLegacyBlock       byte = 0x01
	MagicLegacyEndorsement byte = 0x02
	MagicGeneric           byte = 0x03
	MagicMichelson         byte = 0x05
	MagicBlock             byte = 0x11
	MagicPreattestation    byte = 0x12
	MagicAttestation       byte = 0x13
)

// Kinds lists every request kind keyward can sign.
func Kinds() []Kind {
	return []Kind{KindBlock, KindPreattestation, KindAttestation, KindGeneric, KindMichelsonData}
}

// Consensus reports whether requests of this kind carry a chain id, level
// and round and are protected by watermarks.
func (k Kind) Consensus() bool {
	return k == KindBlock || k == KindPreattestation || k == KindAttestation
}

// Errors returned by ParseRequest. Check with errors.Is.
var (
	// ErrMalformed: the payload does not decode (truncated, trailing bytes,
	// unknown tag, bad length, empty).
	ErrMalformed = errors.New("malformed Tezos payload")
	// ErrUnsupportedMagic: the first byte is not a magic byte keyward signs.
	ErrUnsupportedMagic = errors.New("unsupported magic byte")
	// ErrLegacyMagic: a pre-Tenderbake block (0x01) or endorsement (0x02), recognized and refused.
	ErrLegacyMagic = errors.New("legacy magic byte refused")
)

// Request is a decoded signing request.
type Request struct {
	Magic      byte
	Kind       Kind
	ChainID    string      // base58 "Net…" for 0x11/0x12/0x13; "" otherwise
	Level      int64       // consensus kinds
	Round      int64       // consensus kinds; for blocks the fitness round (as Octez), not the payload round
	Branch     string      // base58 block hash of 0x03 and of consensus operations
	Operations []Operation // contents of a 0x03 batch in order; the single consensus content of 0x12/0x13
	Payload    []byte      // the whole payload as given (not copied)
}

// Operation is one decoded operation content.
type Operation struct {
	Kind        string   // Octez name ("transaction", "reveal", ...); a transaction to oneself calling stake, unstake, finalize_unstake or set_delegate_parameters is named after that entrypoint
	Tag         byte     // the binary tag
	Source      string   // tz… address where the operation has one
	Fee         *big.Int // mutez, manager operations only
	Amount      *big.Int // mutez for transactions (and staking pseudo-operations) and origination balance; ticket units for transfer_ticket
	Destination string   // transaction and transfer_ticket destination (tz…/KT1…); "" otherwise
	Entrypoint  string   // transaction and transfer_ticket entrypoint ("default" when none)
	PublicKey   string   // reveal, update_consensus_key, update_companion_key: the key (edpk…, sppk…, p2pk…, BLpk…, mdpk…)
	Proof       bool     // the same, with a BLS proof of possession (tz4 keys only)

	GasLimit     *big.Int // manager operations only
	StorageLimit *big.Int // bytes, manager operations only (bounds the storage burn)
	Parameters   []byte   // transaction parameters, one binary Micheline expression (not copied); nil without parameters
}

// IsManager reports whether the operation is a manager operation (has a source paying a fee).
func (o *Operation) IsManager() bool { return o.Tag >= 107 && o.Tag != 255 }

// ParseRequest decodes a payload sent to the remote signer. It is pure, never
// panics, and fails with an error wrapping ErrMalformed, ErrUnsupportedMagic
// or ErrLegacyMagic.
func ParseRequest(payload []byte) (*Request, error) {
	if len(payload) == 0 {
		return nil, fmt.Errorf("%w: empty payload", ErrMalformed)
	}
	req := &Request{Magic: payload[0], Payload: payload}
	r := newReader(payload)
	r.off = 1
	switch req.Magic {
	case MagicGeneric:
		req.Kind = KindGeneric
		parseGeneric(r, req)
		if r.entrapment {
			return parseEitherLayout(payload, req, r)
		}
	case MagicMichelson:
		req.Kind = KindMichelsonData
		r.skipMicheline("Michelson data")
	case MagicBlock:
		req.Kind = KindBlock
		req.ChainID = B58Encode(PrefixNet, r.bytes(4, "chain id"))
		parseBlockHeader(r, req, false)
	case MagicPreattestation, MagicAttestation:
		req.Kind = KindPreattestation
		if req.Magic == MagicAttestation {
			req.Kind = KindAttestation
		}
		req.ChainID = B58Encode(PrefixNet, r.bytes(4, "chain id"))
		parseConsensus(r, req)
	case MagicLegacyBlock, MagicLegacyEndorsement:
		return nil, fmt.Errorf("%w: 0x%02x (pre-Tenderbake block or endorsement)", ErrLegacyMagic, req.Magic)
	default:
		return nil, fmt.Errorf("%w: 0x%02x", ErrUnsupportedMagic, req.Magic)
	}
	if r.err == nil && r.off != len(payload) {
		r.fail("%d trailing bytes", len(payload)-r.off)
	}
	if r.err != nil {
		return nil, r.err
	}
	return req, nil
}

// parseEitherLayout finishes a 0x03 request holding a
// dal_entrapment_evidence, whose layout Ushuaia changed (an optional
// lag_index after slot_index): the payload is read again in Tallinn's
// layout, and it is accepted if it decodes in exactly one layout, or in both
// to the same operations; decoding in both to different operations is
// refused as ambiguous (the bytes mean different things on the two
// protocols, and the payload does not say which one it is for).
func parseEitherLayout(payload []byte, req *Request, ushuaia *reader) (*Request, error) {
	if ushuaia.err == nil && ushuaia.off != len(payload) {
		ushuaia.fail("%d trailing bytes", len(payload)-ushuaia.off)
	}
	alt := &Request{Magic: req.Magic, Kind: req.Kind, Payload: payload}
	tallinn := newReader(payload)
	tallinn.off, tallinn.tallinn = 1, true
	parseGeneric(tallinn, alt)
	if tallinn.err == nil && tallinn.off != len(payload) {
		tallinn.fail("%d trailing bytes", len(payload)-tallinn.off)
	}
	switch {
	case ushuaia.err == nil && tallinn.err == nil:
		if !reflect.DeepEqual(req.Operations, alt.Operations) {
			return nil, fmt.Errorf("%w: dal_entrapment_evidence batch decodes to different operations in the Ushuaia and Tallinn layouts", ErrMalformed)
		}
		return req, nil
	case ushuaia.err == nil:
		return req, nil
	case tallinn.err == nil:
		return alt, nil
	}
	return nil, ushuaia.err
}

func parseGeneric(r *reader, req *Request) {
	branch := r.bytes(32, "branch")
	if !r.ok() {
		return
	}
	req.Branch = B58Encode(PrefixBlock, branch)
	if r.left() == 0 {
		r.fail("no operation contents")
		return
	}
	for r.ok() && r.left() > 0 {
		var op Operation
		parseContent(r, &op)
		if r.ok() {
			req.Operations = append(req.Operations, op)
		}
	}
}

// parseConsensus decodes the body of a 0x12/0x13 request: branch and exactly one consensus content.
func parseConsensus(r *reader, req *Request) {
	branch := r.bytes(32, "branch")
	if !r.ok() {
		return
	}
	req.Branch = B58Encode(PrefixBlock, branch)
	start := r.off
	tag := r.u8("operation tag")
	var allowed bool
	switch req.Magic {
	case MagicPreattestation:
		allowed = tag == tagPreattestation || tag == tagBLSPreattestation
	case MagicAttestation:
		allowed = tag == tagAttestation || tag == tagAttestationWithDAL || tag == tagBLSAttestation
	}
	if !r.ok() {
		return
	}
	if !allowed {
		r.off = start
		r.fail("operation tag %d not allowed in a %s request", tag, req.Kind)
		return
	}
	op := Operation{Tag: tag, Kind: opKindName(tag)}
	level, round := consensusContent(r, tag)
	if !r.ok() {
		return
	}
	req.Level, req.Round = int64(level), int64(round)
	req.Operations = []Operation{op}
}

// Operation tags (Octez operation_repr.ml, protocol Ushuaia).
const (
	tagSeedNonceRevelation      = 1
	tagDoubleConsensusEvidence  = 2
	tagDoubleBakingEvidence     = 3
	tagActivateAccount          = 4
	tagProposals                = 5
	tagBallot                   = 6
	tagVDFRevelation            = 8
	tagDrainDelegate            = 9
	tagFailingNoop              = 17
	tagPreattestation           = 20
	tagAttestation              = 21
	tagAttestationWithDAL       = 23
	tagDALEntrapmentEvidence    = 24
	tagPreattestationsAggregate = 30
	tagAttestationsAggregate    = 31
	tagBLSPreattestation        = 40
	tagBLSAttestation           = 41
	tagReveal                   = 107
	tagTransaction              = 108
	tagOrigination              = 109
	tagDelegation               = 110
	tagRegisterGlobalConstant   = 111
	tagSetDepositsLimit         = 112
	tagIncreasePaidStorage      = 113
	tagUpdateConsensusKey       = 114
	tagUpdateCompanionKey       = 115
	tagTransferTicket           = 158
	tagSrOriginate              = 200
	tagSrAddMessages            = 201
	tagSrCement                 = 202
	tagSrPublish                = 203
	tagSrRefute                 = 204
	tagSrTimeout                = 205
	tagSrExecuteOutboxMessage   = 206
	tagSrRecoverBond            = 207
	tagDALPublishCommitment     = 230
	tagZkOrigination            = 250
	tagZkPublish                = 251
	tagZkUpdate                 = 252
	tagSignaturePrefix          = 255
)

var opNames = map[byte]string{
	tagSeedNonceRevelation:      "seed_nonce_revelation",
	tagDoubleConsensusEvidence:  "double_consensus_operation_evidence",
	tagDoubleBakingEvidence:     "double_baking_evidence",
	tagActivateAccount:          "activate_account",
	tagProposals:                "proposals",
	tagBallot:                   "ballot",
	tagVDFRevelation:            "vdf_revelation",
	tagDrainDelegate:            "drain_delegate",
	tagFailingNoop:              "failing_noop",
	tagPreattestation:           "preattestation",
	tagAttestation:              "attestation",
	tagAttestationWithDAL:       "attestation_with_dal",
	tagDALEntrapmentEvidence:    "dal_entrapment_evidence",
	tagPreattestationsAggregate: "preattestations_aggregate",
	tagAttestationsAggregate:    "attestations_aggregate",
	tagBLSPreattestation:        "preattestation",
	tagBLSAttestation:           "attestation",
	tagReveal:                   "reveal",
	tagTransaction:              "transaction",
	tagOrigination:              "origination",
	tagDelegation:               "delegation",
	tagRegisterGlobalConstant:   "register_global_constant",
	tagSetDepositsLimit:         "set_deposits_limit",
	tagIncreasePaidStorage:      "increase_paid_storage",
	tagUpdateConsensusKey:       "update_consensus_key",
	tagUpdateCompanionKey:       "update_companion_key",
	tagTransferTicket:           "transfer_ticket",
	tagSrOriginate:              "smart_rollup_originate",
	tagSrAddMessages:            "smart_rollup_add_messages",
	tagSrCement:                 "smart_rollup_cement",
	tagSrPublish:                "smart_rollup_publish",
	tagSrRefute:                 "smart_rollup_refute",
	tagSrTimeout:                "smart_rollup_timeout",
	tagSrExecuteOutboxMessage:   "smart_rollup_execute_outbox_message",
	tagSrRecoverBond:            "smart_rollup_recover_bond",
	tagDALPublishCommitment:     "dal_publish_commitment",
	tagZkOrigination:            "zk_rollup_origination",
	tagZkPublish:                "zk_rollup_publish",
	tagZkUpdate:                 "zk_rollup_update",
	tagSignaturePrefix:          "signature_prefix",
}

func opKindName(tag byte) string { return opNames[tag] }

// Staking pseudo-operations: transactions to oneself calling these entrypoints.
var stakingEntrypoints = map[string]bool{
	"stake": true, "unstake": true, "finalize_unstake": true, "set_delegate_parameters": true,
}

// OperationKinds lists every operation kind name Operation.Kind can hold,
// including the staking pseudo-operations.
func OperationKinds() []string {
	seen := map[string]bool{}
	var out []string
	for _, tag := range []byte{1, 2, 3, 4, 5, 6, 8, 9, 17, 20, 21, 23, 24, 30, 31, 107, 108, 109, 110, 111, 112, 113, 114, 115, 158, 200, 201, 202, 203, 204, 205, 206, 207, 230, 250, 251, 252, 255} {
		n := opNames[tag]
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return append(out, "stake", "unstake", "finalize_unstake", "set_delegate_parameters")
}

// IsOperationKind reports whether name is an operation kind Operation.Kind can hold.
func IsOperationKind(name string) bool {
	if stakingEntrypoints[name] {
		return true
	}
	for _, n := range opNames {
		if n == name {
			return true
		}
	}
	return false
}
