package policy

import (
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/limits"
)

// TezosLimit is one rolling budget under tezos.limits: within any interval
// of the window's length, what the key signs never exceeds any of the caps
// given (at least one).
type TezosLimit struct {
	Window         string            `yaml:"window"`           // required: a duration from 1m to 8784h ("24h", "1h", "10m")
	MaxAmount      string            `yaml:"max_amount"`       // tez sent, as max_batch_amount counts it ("500 tez")
	MaxFee         string            `yaml:"max_fee"`          // fees paid (the storage burn is bounded per operation by max_storage_limit)
	MaxRequests    *uint64           `yaml:"max_requests"`     // signed requests of any kind
	MaxTokenAmount map[string]string `yaml:"max_token_amount"` // by KT1 address listed under tokens: amount moved or approved, in that token's units
}

// EthereumLimit is one rolling budget under ethereum.limits (see TezosLimit).
type EthereumLimit struct {
	Window         string            `yaml:"window"`
	MaxValue       string            `yaml:"max_value"`        // value sent ("5 ether")
	MaxFee         string            `yaml:"max_fee"`          // the most the transactions can pay in fees, as ethereum.max_fee counts it
	MaxRequests    *uint64           `yaml:"max_requests"`     // signed requests of any kind (transactions, messages, typed data)
	MaxTokenAmount map[string]string `yaml:"max_token_amount"` // by 0x address listed under tokens
}

// limitFields is what the two chains' limit entries have in common.
type limitFields struct {
	window, amount, fee string
	requests            *uint64
	tokens              map[string]string
	amountName          string                         // "max_amount" or "max_value"
	parse               func(string) (*big.Int, error) // tez or wei
	token               func(string) (*tokenRule, error)
}

func compileLimit(rule, unit string, f limitFields) (limits.Limit, error) {
	l := limits.Limit{Rule: rule, Unit: unit, AmountName: f.amountName}
	if f.window == "" {
		return l, fmt.Errorf("%s.window: required (e.g. 24h)", rule)
	}
	w, err := time.ParseDuration(f.window)
	if err != nil || w < limits.MinWindow || w > limits.MaxWindow {
		return l, fmt.Errorf("%s.window: %q is not a duration from %v to %v", rule, f.window, limits.MinWindow, limits.MaxWindow)
	}
	l.Window = w
	if f.amount != "" {
		if l.MaxAmount, err = f.parse(f.amount); err != nil {
			return l, fmt.Errorf("%s.%s: %w", rule, f.amountName, err)
		}
	}
	if f.fee != "" {
		if l.MaxFee, err = f.parse(f.fee); err != nil {
			return l, fmt.Errorf("%s.max_fee: %w", rule, err)
		}
	}
	if f.requests != nil {
		if *f.requests == 0 || *f.requests > 1<<62 {
			return l, fmt.Errorf("%s.max_requests: %d is not a positive count", rule, *f.requests)
		}
		l.MaxRequests = int64(*f.requests)
	}
	for addr, amount := range f.tokens {
		t, err := f.token(addr)
		if err != nil {
			return l, fmt.Errorf("%s.max_token_amount[%s]: %w", rule, addr, err)
		}
		v, err := parseTokenAmount(amount, t.decimals)
		if err != nil {
			return l, fmt.Errorf("%s.max_token_amount[%s]: %w", rule, addr, err)
		}
		if l.MaxTokens == nil {
			l.MaxTokens = map[string]*big.Int{}
		}
		if l.MaxTokens[t.addr] != nil {
			return l, fmt.Errorf("%s.max_token_amount[%s]: token listed twice", rule, addr)
		}
		l.MaxTokens[t.addr] = v
	}
	if l.MaxAmount == nil && l.MaxFee == nil && l.MaxRequests == 0 && l.MaxTokens == nil {
		return l, fmt.Errorf("%s: no cap (give %s, max_fee, max_requests or max_token_amount)", rule, f.amountName)
	}
	return l, nil
}

func compileTezosLimits(r *TezosRules, tokens map[string]*tokenRule) ([]limits.Limit, error) {
	var out []limits.Limit
	for i, e := range r.Limits {
		l, err := compileLimit(fmt.Sprintf("limits[%d]", i), "mutez", limitFields{
			window: e.Window, amount: e.MaxAmount, fee: e.MaxFee, requests: e.MaxRequests, tokens: e.MaxTokenAmount,
			amountName: "max_amount", parse: ParseMutez,
			token: func(addr string) (*tokenRule, error) {
				if t := tokens[addr]; t != nil {
					return t, nil
				}
				return nil, fmt.Errorf("%s is not listed under tokens", addr)
			},
		})
		if err != nil {
			return nil, err
		}
		l.Rule = "tezos." + l.Rule
		out = append(out, l)
	}
	return out, nil
}

func compileEthLimits(r *EthereumRules, p *Ethereum) ([]limits.Limit, error) {
	var out []limits.Limit
	for i, e := range r.Limits {
		l, err := compileLimit(fmt.Sprintf("limits[%d]", i), "wei", limitFields{
			window: e.Window, amount: e.MaxValue, fee: e.MaxFee, requests: e.MaxRequests, tokens: e.MaxTokenAmount,
			amountName: "max_value", parse: ParseWei,
			token: func(addr string) (*tokenRule, error) {
				a, err := parseRuleAddress(addr)
				if err != nil {
					return nil, err
				}
				if t := p.tokens[a]; t != nil {
					return t, nil
				}
				return nil, fmt.Errorf("%s is not listed under tokens", addr)
			},
		})
		if err != nil {
			return nil, err
		}
		l.Rule = "ethereum." + l.Rule
		out = append(out, l)
	}
	return out, nil
}

// Limits returns the key's rolling budgets (tezos.limits[i]), to debit
// with a limits.Store; nil when there are none. The caller must not modify
// them.
func (p *Tezos) Limits() []limits.Limit { return p.budgets }

// Spend is what signing req costs the budgets: one request and, for a
// generic request, the tez amounts (as max_batch_amount counts them), the
// fees and the amounts of listed tokens moved or approved. Call it on a
// request Check allowed; a token call it cannot decode is a refusal.
func (p *Tezos) Spend(req *tezos.Request) (limits.Spend, error) {
	s := limits.Spend{Amount: new(big.Int), Fee: new(big.Int), Requests: 1}
	if req == nil || req.Kind != tezos.KindGeneric {
		return s, nil
	}
	tokens, err := p.tokenTotals(req.Operations)
	if err != nil {
		return limits.Spend{}, err
	}
	s.Amount, s.Fee, s.Tokens = batchAmount(req.Operations), batchFee(req.Operations), tokens
	return s, nil
}

// Limits returns the key's rolling budgets (ethereum.limits[i]); nil when
// there are none. The caller must not modify them.
func (p *Ethereum) Limits() []limits.Limit { return p.budgets }

// SpendTx is what signing tx costs the budgets: one request, its value, the
// most it can pay in fees (TxMaxFee) and the amount of a listed ERC-20
// token it transfers or approves. Call it on a transaction CheckTx allowed;
// a token call it cannot decode is a refusal. Other requests (messages,
// typed data) cost limits.Spend{Requests: 1}.
func (p *Ethereum) SpendTx(tx *types.Transaction) (limits.Spend, error) {
	s := limits.Spend{Amount: new(big.Int).Set(tx.Value()), Fee: TxMaxFee(tx), Requests: 1}
	rule, amount, err := p.ethTokenAmount(tx.To(), tx.Data())
	if err != nil {
		return limits.Spend{}, err
	}
	if amount != nil {
		s.Tokens = map[string]*big.Int{rule.addr: amount}
	}
	return s, nil
}
