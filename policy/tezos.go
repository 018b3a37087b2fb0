package policy

import (
	"errors"
	"fmt"
	"math/big"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/limits"
)

// TezosRules is a key's Tezos policy as written in the configuration, under
// keys.<name>.tezos.
type TezosRules struct {
	// Allow lists the request kinds the key may sign: block, preattestation,
	// attestation, generic, michelson_data. Left out (nil), it is
	// [block, preattestation, attestation]; an explicit empty list allows nothing.
	Allow []string `yaml:"allow"`
	// Chains, when not empty, lists the chain ids (Net…) consensus requests
	// (block, preattestation, attestation) may carry. Other kinds carry no chain id.
	Chains []string `yaml:"chains"`
	// Operations lists the operation kinds (Octez names, plus stake, unstake,
	// finalize_unstake, set_delegate_parameters) a generic request may
	// contain; every operation of a batch must be listed. Empty: none, so
	// every generic request is refused.
	Operations []string `yaml:"operations"`
	// To, when not empty, lists the allowed destinations of operations that
	// send to one (transaction, transfer_ticket, drain_delegate):
	// "KT1…%entrypoint" allows that entrypoint only, an address without "%"
	// any entrypoint. Staking pseudo-operations (to oneself) are not subject to it.
	To []string `yaml:"to"`
	// MaxAmount caps the tez amount of each transaction (staking included) and
	// origination balance: "N tez", "N mutez" or a bare number of mutez.
	MaxAmount string `yaml:"max_amount"`
	// MaxFee caps the fee of each manager operation, in the same units.
	MaxFee string `yaml:"max_fee"`
	// AllowProofOfPossession lets GET /bls_prove_possession prove
	// possession of a tz4 key (needed to register it as a consensus or
	// companion key). Off by default: turn it on for the registration only.
	AllowProofOfPossession bool `yaml:"allow_proof_of_possession"`

	// Per-request caps (policy/caps.go).
	MaxStorageLimit *uint64 `yaml:"max_storage_limit"` // storage_limit of each manager operation, in bytes (bounds its storage burn)
	MaxGasLimit     *uint64 `yaml:"max_gas_limit"`     // gas_limit of each manager operation
	MaxBatchFee     string  `yaml:"max_batch_fee"`     // sum of the fees of one request's operations (tez or mutez)
	MaxBatchAmount  string  `yaml:"max_batch_amount"`  // sum of the tez amounts max_amount caps, over one request's operations
	MaxOperations   *uint64 `yaml:"max_operations"`    // operations in one generic request (at least 1)

	// Tokens lists FA1.2 / FA2 contracts whose calls are decoded and capped (policy/tokens.go).
	Tokens map[string]TezosToken `yaml:"tokens"`
	// Limits are rolling budgets over time windows (policy/limits.go).
	Limits []TezosLimit `yaml:"limits"`
}

// UnmarshalYAML decodes the rules strictly (see decodeRules).
func (r *TezosRules) UnmarshalYAML(n *yaml.Node) error {
	type plain TezosRules
	return decodeRules(n, (*plain)(r))
}

// Tezos is a key's compiled Tezos policy.
type Tezos struct {
	allow     map[tezos.Kind]bool
	chains    map[string]bool // nil: any
	ops       map[string]bool
	to        []tezosDest // nil: any
	maxAmount *big.Int    // nil: no cap
	maxFee    *big.Int    // nil: no cap
	allowPoP  bool

	caps    tezosCaps
	tokens  map[string]*tokenRule // by KT1 address; nil: none listed
	budgets []limits.Limit
}

type tezosDest struct {
	addr       string
	entrypoint string // "": any
}

// DefaultTezosAllow is what a key without Tezos rules may sign.
var DefaultTezosAllow = []tezos.Kind{tezos.KindBlock, tezos.KindPreattestation, tezos.KindAttestation}

// CompileTezos checks r and compiles it. A nil r gives the default policy:
// block, preattestation and attestation on any chain, nothing else. Errors
// name the offending field.
func CompileTezos(r *TezosRules) (*Tezos, error) {
	p := &Tezos{allow: map[tezos.Kind]bool{}, ops: map[string]bool{}}
	if r == nil || r.Allow == nil {
		for _, k := range DefaultTezosAllow {
			p.allow[k] = true
		}
	}
	if r == nil {
		return p, nil
	}
	p.allowPoP = r.AllowProofOfPossession
	for i, s := range r.Allow {
		k := tezos.Kind(strings.TrimSpace(s))
		if !validKind(k) {
			return nil, fmt.Errorf("allow[%d]: unknown request kind %q (want one of %s)", i, s, kindList())
		}
		p.allow[k] = true
	}
	if len(r.Chains) > 0 {
		p.chains = map[string]bool{}
		for i, s := range r.Chains {
			s = strings.TrimSpace(s)
			if _, err := tezos.B58Decode(s, tezos.PrefixNet, 4); err != nil {
				return nil, fmt.Errorf("chains[%d]: %q is not a chain id (Net…): %w", i, s, err)
			}
			p.chains[s] = true
		}
	}
	for i, s := range r.Operations {
		s = strings.TrimSpace(s)
		if !tezos.IsOperationKind(s) {
			return nil, fmt.Errorf("operations[%d]: unknown operation kind %q (want Octez names such as transaction, reveal, delegation, origination, stake)", i, s)
		}
		p.ops[s] = true
	}
	for i, s := range r.To {
		d, err := parseTezosDest(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("to[%d]: %w", i, err)
		}
		p.to = append(p.to, d)
	}
	var err error
	if r.MaxAmount != "" {
		if p.maxAmount, err = ParseMutez(r.MaxAmount); err != nil {
			return nil, fmt.Errorf("max_amount: %w", err)
		}
	}
	if r.MaxFee != "" {
		if p.maxFee, err = ParseMutez(r.MaxFee); err != nil {
			return nil, fmt.Errorf("max_fee: %w", err)
		}
	}
	if p.caps, err = compileTezosCaps(r); err != nil {
		return nil, err
	}
	if p.tokens, err = compileTezosTokens(r, p.to); err != nil {
		return nil, err
	}
	if p.budgets, err = compileTezosLimits(r, p.tokens); err != nil {
		return nil, err
	}
	return p, nil
}

func validKind(k tezos.Kind) bool {
	for _, v := range tezos.Kinds() {
		if k == v {
			return true
		}
	}
	return false
}

func kindList() string {
	var s []string
	for _, k := range tezos.Kinds() {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}

func parseTezosDest(s string) (tezosDest, error) {
	addr, ep, hasEP := strings.Cut(s, "%")
	ok := false
	for _, prefix := range [][]byte{tezos.PrefixKT1, tezos.PrefixTz1, tezos.PrefixTz2, tezos.PrefixTz3, tezos.PrefixTz4} {
		if _, err := tezos.B58Decode(addr, prefix, 20); err == nil {
			ok = true
			break
		}
	}
	if !ok {
		return tezosDest{}, fmt.Errorf("%q is not a tz1/tz2/tz3/tz4/KT1 address", addr)
	}
	if hasEP {
		if ep == "" || len(ep) > 31 || strings.IndexFunc(ep, func(c rune) bool {
			return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '%' || c == '@')
		}) >= 0 {
			return tezosDest{}, fmt.Errorf("%q is not a valid entrypoint name", ep)
		}
	}
	return tezosDest{addr: addr, entrypoint: ep}, nil
}

// ParseMutez parses an amount of tez: "N tez" (up to 6 decimals), "N mutez"
// or a bare number of mutez. Negative amounts are refused.
func ParseMutez(s string) (*big.Int, error) {
	t := strings.TrimSpace(s)
	num, unit := t, "mutez"
	if i := strings.IndexFunc(t, func(c rune) bool { return c == ' ' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == 'ꜩ' }); i >= 0 {
		num, unit = strings.TrimSpace(t[:i]), strings.ToLower(strings.TrimSpace(t[i:]))
	}
	decimals := 0
	switch unit {
	case "mutez":
	case "tez", "xtz", "ꜩ":
		decimals = 6
	default:
		return nil, fmt.Errorf("amount %q: unknown unit %q (want tez or mutez)", s, unit)
	}
	v, err := parseDecimal(num, decimals)
	if err != nil {
		return nil, fmt.Errorf("amount %q: %w", s, err)
	}
	return v, nil
}

// Allows reports whether the policy allows requests of this kind at all.
func (p *Tezos) Allows(kind tezos.Kind) bool { return p.allow[kind] }

// Check returns nil when req may be signed, or a *Refusal naming the rule
// (tezos.allow, tezos.chains, tezos.operations, tezos.to, tezos.max_amount,
// tezos.max_fee, the caps of caps.go, tezos.tokens*) and the offending value.
func (p *Tezos) Check(req *tezos.Request) error {
	if req == nil {
		return errors.New("policy: nil Tezos request")
	}
	if !p.allow[req.Kind] {
		return Refuse("tezos.allow", "request kind %s (magic 0x%02x) is not allowed for this key", req.Kind, req.Magic)
	}
	if p.chains != nil && req.Kind.Consensus() && !p.chains[req.ChainID] {
		return Refuse("tezos.chains", "chain %s is not allowed for this key", req.ChainID)
	}
	if req.Kind != tezos.KindGeneric {
		return nil
	}
	n := len(req.Operations)
	if n == 0 {
		return Refuse("tezos.operations", "generic request without operations")
	}
	for i := range req.Operations {
		op := &req.Operations[i]
		where := opWhere{i + 1, n, op.Kind}
		if !p.ops[op.Kind] {
			if len(p.ops) == 0 {
				return Refuse("tezos.operations", "%s: no operation kinds are allowed for this key", where)
			}
			return Refuse("tezos.operations", "%s: operation kind %s is not allowed", where, op.Kind)
		}
		if p.maxFee != nil && op.Fee != nil && op.Fee.Cmp(p.maxFee) > 0 {
			return Refuse("tezos.max_fee", "%s: fee %s mutez is above the cap of %s mutez", where, op.Fee, p.maxFee)
		}
		if p.maxAmount != nil && op.Amount != nil && tezAmount(op) && op.Amount.Cmp(p.maxAmount) > 0 {
			return Refuse("tezos.max_amount", "%s: amount %s mutez is above the cap of %s mutez", where, op.Amount, p.maxAmount)
		}
		if p.to != nil && op.Destination != "" && !staking(op.Kind) && !p.destAllowed(op) {
			dest := op.Destination
			if op.Entrypoint != "" {
				dest += "%" + op.Entrypoint
			}
			return Refuse("tezos.to", "%s: destination %s is not allowed", where, dest)
		}
		if err := p.caps.checkOperation(op, where); err != nil {
			return err
		}
	}
	if err := p.caps.checkBatch(req.Operations); err != nil {
		return err
	}
	return p.checkTokens(req.Operations)
}

// tezAmount reports whether op.Amount is in mutez (not ticket units).
func tezAmount(op *tezos.Operation) bool {
	return op.Kind == "transaction" || op.Kind == "origination" || staking(op.Kind)
}

func staking(kind string) bool {
	switch kind {
	case "stake", "unstake", "finalize_unstake", "set_delegate_parameters":
		return true
	}
	return false
}

func (p *Tezos) destAllowed(op *tezos.Operation) bool {
	for _, d := range p.to {
		if d.addr == op.Destination && (d.entrypoint == "" || d.entrypoint == op.Entrypoint) {
			return true
		}
	}
	return false
}

// CheckProofOfPossession refuses a BLS proof of possession unless
// allow_proof_of_possession is on (the message is Octez's).
func (p *Tezos) CheckProofOfPossession() error {
	if !p.allowPoP {
		return Refuse("tezos.allow_proof_of_possession", "Request to prove possession is not allowed.")
	}
	return nil
}

// opWhere names an operation in a refusal ("operation 2 of 3
// (transaction)"); it is formatted only when a refusal is written.
type opWhere struct {
	i, n int
	kind string
}

func (w opWhere) String() string { return fmt.Sprintf("operation %d of %d (%s)", w.i, w.n, w.kind) }
