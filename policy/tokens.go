package policy

import (
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/keyward/keyward/chains/ethereum"
	"github.com/keyward/keyward/chains/tezos"
)

// TezosToken is an FA1.2 or FA2 contract listed under tezos.tokens (keyed
// by its KT1 address). Calls to it are decoded: transfer and approve (FA1.2),
// transfer and update_operators (FA2). Any other entrypoint is refused
// unless tezos.to lists it explicitly ("KT1…%entrypoint"); such calls are
// then not capped.
type TezosToken struct {
	Standard  string   `yaml:"standard"`   // fa1.2 or fa2 (required)
	MaxAmount string   `yaml:"max_amount"` // required: the most one request may transfer plus approve, in the token's units (below)
	Decimals  uint8    `yaml:"decimals"`   // optional: amounts are written in whole tokens with this many decimals ("1.5"); 0 = raw units
	Operators []string `yaml:"operators"`  // FA2: the operators update_operators may add (an operator may move any amount); empty = add_operator refused
}

// EthereumToken is an ERC-20 contract listed under ethereum.tokens (keyed by
// its 0x address). transfer, transferFrom and approve calls to it are
// decoded and capped; any other call is refused unless ethereum.methods
// lists its selector for the contract (such calls are then not capped).
type EthereumToken struct {
	MaxAmount string `yaml:"max_amount"` // required: the most one transaction may transfer or approve, in the token's units (below)
	Decimals  uint8  `yaml:"decimals"`   // optional: amounts are written in whole tokens with this many decimals; 0 = raw units
}

// tokenRule is a compiled token entry.
type tokenRule struct {
	addr      string              // KT1… or EIP-55 0x…
	std       tezos.TokenStandard // Tezos only
	max       *big.Int            // raw units
	decimals  int
	operators map[string]bool // FA2 operators that may be added
}

// parseDecimal parses a non-negative decimal number ("12", "0.5") with at
// most decimals fraction digits and returns it times 10^decimals.
func parseDecimal(num string, decimals int) (*big.Int, error) {
	whole, frac, hasFrac := strings.Cut(num, ".")
	if whole == "" || !isDigits(whole) || hasFrac && (frac == "" || !isDigits(frac)) {
		return nil, errors.New("not a non-negative number")
	}
	if len(frac) > decimals {
		return nil, fmt.Errorf("more than %d decimals", decimals)
	}
	v, _ := new(big.Int).SetString(whole+frac+strings.Repeat("0", decimals-len(frac)), 10)
	return v, nil
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseTokenAmount parses an amount of a token: a decimal number in whole
// tokens of the given decimals (raw units when 0).
func parseTokenAmount(s string, decimals int) (*big.Int, error) {
	v, err := parseDecimal(strings.TrimSpace(s), decimals)
	if err != nil {
		return nil, fmt.Errorf("amount %q: %w", s, err)
	}
	return v, nil
}

func compileTezosTokens(r *TezosRules, to []tezosDest) (map[string]*tokenRule, error) {
	if len(r.Tokens) == 0 {
		return nil, nil
	}
	out := map[string]*tokenRule{}
	for _, addr := range slices.Sorted(maps.Keys(r.Tokens)) {
		t := r.Tokens[addr]
		where := "tokens[" + addr + "]"
		if _, err := tezos.B58Decode(addr, tezos.PrefixKT1, 20); err != nil {
			return nil, fmt.Errorf("%s: %q is not a KT1 address", where, addr)
		}
		rule := &tokenRule{addr: addr, std: tezos.TokenStandard(t.Standard), decimals: int(t.Decimals)}
		if rule.std != tezos.FA12 && rule.std != tezos.FA2 {
			return nil, fmt.Errorf("%s.standard: %q is not fa1.2 or fa2", where, t.Standard)
		}
		if t.MaxAmount == "" {
			return nil, fmt.Errorf("%s.max_amount: required", where)
		}
		var err error
		if rule.max, err = parseTokenAmount(t.MaxAmount, rule.decimals); err != nil {
			return nil, fmt.Errorf("%s.max_amount: %w", where, err)
		}
		if len(t.Operators) > 0 && rule.std != tezos.FA2 {
			return nil, fmt.Errorf("%s.operators: only FA2 contracts have operators", where)
		}
		rule.operators = map[string]bool{}
		for i, op := range t.Operators {
			d, err := parseTezosDest(strings.TrimSpace(op))
			if err != nil || d.entrypoint != "" {
				return nil, fmt.Errorf("%s.operators[%d]: %q is not a tz1/tz2/tz3/tz4/KT1 address", where, i, op)
			}
			rule.operators[d.addr] = true
		}
		if to != nil && !slices.ContainsFunc(to, func(d tezosDest) bool { return d.addr == addr }) {
			return nil, fmt.Errorf("%s: the contract is not in the to allow-list", where)
		}
		out[addr] = rule
	}
	return out, nil
}

// tokenTotals decodes every call of ops to a listed token and returns what
// the request moves or approves per token (raw units), or a refusal:
// tezos.tokens for a call that cannot be decoded or an entrypoint neither
// decoded nor listed in tezos.to, tezos.tokens.operators for an operator
// that may not be added.
func (p *Tezos) tokenTotals(ops []tezos.Operation) (map[string]*big.Int, error) {
	if p.tokens == nil {
		return nil, nil
	}
	var totals map[string]*big.Int
	for i := range ops {
		op := &ops[i]
		rule := p.tokens[op.Destination]
		if rule == nil || op.Kind != "transaction" {
			continue
		}
		where := fmt.Sprintf("operation %d of %d (transaction to token %s)", i+1, len(ops), rule.addr)
		c, err := tezos.DecodeTokenCall(rule.std, op.Entrypoint, op.Parameters)
		switch {
		case errors.Is(err, tezos.ErrTokenEntrypoint):
			if p.listsEntrypoint(op.Destination, op.Entrypoint) {
				continue // allowed explicitly by tezos.to, not decoded
			}
			return nil, Refuse("tezos.tokens", "%s: entrypoint %s is not a decoded %s call (transfer, approve, update_operators); list %s%%%s in to to allow it", where, op.Entrypoint, rule.std, rule.addr, op.Entrypoint)
		case err != nil:
			return nil, Refuse("tezos.tokens", "%s: %v", where, err)
		}
		for _, u := range c.Operators {
			if u.Add && !rule.operators[u.Operator] {
				return nil, Refuse("tezos.tokens.operators", "%s: adding %s as an operator (it could move any amount of token %s) is not allowed", where, u.Operator, u.TokenID)
			}
		}
		if totals == nil {
			totals = map[string]*big.Int{}
		}
		if totals[rule.addr] == nil {
			totals[rule.addr] = new(big.Int)
		}
		totals[rule.addr].Add(totals[rule.addr], c.Total())
	}
	return totals, nil
}

// listsEntrypoint reports whether tezos.to names exactly addr%entrypoint.
func (p *Tezos) listsEntrypoint(addr, entrypoint string) bool {
	for _, d := range p.to {
		if d.addr == addr && d.entrypoint == entrypoint {
			return true
		}
	}
	return false
}

// checkTokens applies tezos.tokens and tezos.tokens.max_amount to a request.
func (p *Tezos) checkTokens(ops []tezos.Operation) error {
	totals, err := p.tokenTotals(ops)
	if err != nil {
		return err
	}
	for _, addr := range slices.Sorted(maps.Keys(totals)) {
		if rule := p.tokens[addr]; totals[addr].Cmp(rule.max) > 0 {
			return Refuse("tezos.tokens.max_amount", "the request moves or approves %s of token %s, above the cap of %s", fmtToken(totals[addr], rule.decimals), addr, fmtToken(rule.max, rule.decimals))
		}
	}
	return nil
}

// fmtToken prints a raw token amount in the units of its config entry.
func fmtToken(raw *big.Int, decimals int) string {
	if decimals == 0 {
		return raw.String()
	}
	s := raw.String()
	if len(s) <= decimals {
		s = strings.Repeat("0", decimals-len(s)+1) + s
	}
	whole, frac := s[:len(s)-decimals], strings.TrimRight(s[len(s)-decimals:], "0")
	if frac == "" {
		return whole
	}
	return whole + "." + frac
}

func compileEthTokens(r *EthereumRules, to map[common.Address]bool) (map[common.Address]*tokenRule, error) {
	if len(r.Tokens) == 0 {
		return nil, nil
	}
	out := map[common.Address]*tokenRule{}
	for _, s := range slices.Sorted(maps.Keys(r.Tokens)) {
		t := r.Tokens[s]
		where := "tokens[" + s + "]"
		a, err := parseRuleAddress(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if out[a] != nil {
			return nil, fmt.Errorf("%s: listed twice", where)
		}
		if to != nil && !to[a] {
			return nil, fmt.Errorf("%s: the contract is not in the to allow-list", where)
		}
		rule := &tokenRule{addr: a.Hex(), decimals: int(t.Decimals)}
		if t.MaxAmount == "" {
			return nil, fmt.Errorf("%s.max_amount: required", where)
		}
		if rule.max, err = parseTokenAmount(t.MaxAmount, rule.decimals); err != nil {
			return nil, fmt.Errorf("%s.max_amount: %w", where, err)
		}
		out[a] = rule
	}
	return out, nil
}

// ethTokenAmount decodes a call to a listed ERC-20 token and returns the
// amount it transfers or approves (nil for a call to another address, or a
// call ethereum.methods allows without decoding), or a refusal
// (ethereum.tokens).
func (p *Ethereum) ethTokenAmount(to *common.Address, data []byte) (*tokenRule, *big.Int, error) {
	if to == nil || p.tokens == nil {
		return nil, nil, nil
	}
	rule := p.tokens[*to]
	if rule == nil {
		return nil, nil, nil
	}
	c, err := ethereum.DecodeERC20(data)
	switch {
	case errors.Is(err, ethereum.ErrERC20Method):
		if len(data) >= 4 && p.methods[*to][[4]byte(data[:4])] {
			return rule, nil, nil // listed in ethereum.methods: allowed, not decoded
		}
		return nil, nil, Refuse("ethereum.tokens", "call to token %s: %v; list its selector under methods to allow it", rule.addr, err)
	case err != nil:
		return nil, nil, Refuse("ethereum.tokens", "call to token %s: %v", rule.addr, err)
	}
	return rule, c.Amount, nil
}

// checkToken applies ethereum.tokens and ethereum.tokens.max_amount.
func (p *Ethereum) checkToken(to *common.Address, data []byte) error {
	rule, amount, err := p.ethTokenAmount(to, data)
	if err != nil || amount == nil {
		return err
	}
	if amount.Cmp(rule.max) > 0 {
		return Refuse("ethereum.tokens.max_amount", "the call moves or approves %s of token %s, above the cap of %s", fmtToken(amount, rule.decimals), rule.addr, fmtToken(rule.max, rule.decimals))
	}
	return nil
}
