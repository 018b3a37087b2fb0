package policy

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/keyward/keyward/limits"
)

// Ethereum is a key's compiled Ethereum policy. The zero policy (from empty
// rules) allows transactions on any chain to any recipient with any value,
// refuses contract creation, messages, typed data, clique headers and
// EIP-7702 authorizations.
type Ethereum struct {
	chainIDs      map[uint64]bool // nil: any
	to            map[common.Address]bool
	allowCreate   bool
	maxValue      *big.Int // nil: no cap
	methods       map[common.Address]map[[4]byte]bool
	signMessages  bool
	signTypedData bool
	signAuth      bool
	signClique    bool
	domains       []ethDomain

	caps    ethCaps
	tokens  map[common.Address]*tokenRule // nil: none listed
	budgets []limits.Limit
}

type ethDomain struct {
	chainID  *big.Int        // nil: any
	contract *common.Address // nil: any
}

// CompileEthereum checks r and compiles it. A nil r gives the zero policy.
func CompileEthereum(r *EthereumRules) (*Ethereum, error) {
	p := &Ethereum{}
	if r == nil {
		return p, nil
	}
	p.allowCreate = r.AllowCreate
	p.signMessages = r.SignMessages
	p.signTypedData = r.SignTypedData
	p.signAuth = r.SignAuthorizations
	p.signClique = r.SignCliqueHeaders
	if len(r.ChainIDs) > 0 {
		p.chainIDs = map[uint64]bool{}
		for _, id := range r.ChainIDs {
			if id == 0 {
				return nil, errors.New("chain_ids: 0 is not a chain id")
			}
			p.chainIDs[id] = true
		}
	}
	if len(r.To) > 0 {
		p.to = map[common.Address]bool{}
		for i, s := range r.To {
			a, err := parseRuleAddress(s)
			if err != nil {
				return nil, fmt.Errorf("to[%d]: %w", i, err)
			}
			p.to[a] = true
		}
	}
	if r.MaxValue != "" {
		v, err := ParseWei(r.MaxValue)
		if err != nil {
			return nil, fmt.Errorf("max_value: %w", err)
		}
		p.maxValue = v
	}
	if len(r.Methods) > 0 {
		p.methods = map[common.Address]map[[4]byte]bool{}
		for addr, sels := range r.Methods {
			a, err := parseRuleAddress(addr)
			if err != nil {
				return nil, fmt.Errorf("methods[%s]: %w", addr, err)
			}
			if p.to != nil && !p.to[a] {
				return nil, fmt.Errorf("methods[%s]: recipient is not in the to allow-list", addr)
			}
			set := map[[4]byte]bool{}
			for _, s := range sels {
				b, err := hex.DecodeString(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"))
				if err != nil || len(b) != 4 {
					return nil, fmt.Errorf("methods[%s]: %q is not a 4-byte selector like 0xa9059cbb", addr, s)
				}
				set[[4]byte(b)] = true
			}
			p.methods[a] = set
		}
	}
	for i, d := range r.TypedDataDomains {
		var ed ethDomain
		if d.ChainID != 0 {
			ed.chainID = new(big.Int).SetUint64(d.ChainID)
		}
		if d.VerifyingContract != "" {
			a, err := parseRuleAddress(d.VerifyingContract)
			if err != nil {
				return nil, fmt.Errorf("typed_data_domains[%d].verifying_contract: %w", i, err)
			}
			ed.contract = &a
		}
		p.domains = append(p.domains, ed)
	}
	var err error
	if p.caps, err = compileEthCaps(r); err != nil {
		return nil, err
	}
	if p.tokens, err = compileEthTokens(r, p.to); err != nil {
		return nil, err
	}
	if p.budgets, err = compileEthLimits(r, p); err != nil {
		return nil, err
	}
	return p, nil
}

func parseRuleAddress(s string) (common.Address, error) {
	if !common.IsHexAddress(s) || !strings.HasPrefix(strings.ToLower(s), "0x") {
		return common.Address{}, fmt.Errorf("%q is not a 0x address", s)
	}
	a := common.HexToAddress(s)
	body := s[2:]
	if body != strings.ToLower(body) && body != strings.ToUpper(body) && a.Hex() != s {
		return common.Address{}, fmt.Errorf("%q has a bad EIP-55 checksum", s)
	}
	return a, nil
}

// ParseWei parses an amount: plain wei ("1000"), or a decimal with a unit
// ("1 ether", "0.5 ether", "30 gwei", "7 wei").
func ParseWei(s string) (*big.Int, error) {
	f := strings.Fields(s)
	decimals := 0
	switch {
	case len(f) == 1:
	case len(f) == 2:
		switch strings.ToLower(f[1]) {
		case "wei":
		case "gwei":
			decimals = 9
		case "ether", "eth":
			decimals = 18
		default:
			return nil, fmt.Errorf("%q: unknown unit %q (wei, gwei, ether)", s, f[1])
		}
	default:
		return nil, fmt.Errorf("%q: want an amount like \"1 ether\", \"30 gwei\" or wei", s)
	}
	v, err := parseDecimal(f[0], decimals)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	if v.BitLen() > 256 {
		return nil, fmt.Errorf("%q: above 2^256", s)
	}
	return v, nil
}

// CheckChainID refuses a chain id outside chain_ids.
func (p *Ethereum) CheckChainID(id *big.Int) error {
	if p.chainIDs == nil {
		return nil
	}
	if id == nil || !id.IsUint64() || !p.chainIDs[id.Uint64()] {
		return Refuse("ethereum.chain_ids", "chain id %v is not allowed", id)
	}
	return nil
}

// CheckTx checks an unsigned transaction to be signed for chainID (for
// typed transactions, tx.ChainId()).
func (p *Ethereum) CheckTx(tx *types.Transaction, chainID *big.Int) error {
	if err := p.CheckChainID(chainID); err != nil {
		return err
	}
	if err := p.CheckCall(tx.To(), tx.Value(), tx.Data()); err != nil {
		return err
	}
	return p.caps.check(tx)
}

// CheckCall checks a transaction's recipient (nil: contract creation),
// value (nil: zero) and call data, without its chain id. CheckTx calls it;
// eth_sendTransaction calls it before asking the node to fill the rest.
func (p *Ethereum) CheckCall(to *common.Address, value *big.Int, data []byte) error {
	if value == nil {
		value = new(big.Int)
	}
	if to == nil {
		if !p.allowCreate {
			return Refuse("ethereum.allow_create", "contract creation is not allowed")
		}
	} else if p.to != nil && !p.to[*to] {
		return Refuse("ethereum.to", "recipient %s is not allowed", to.Hex())
	}
	if p.maxValue != nil && value.Cmp(p.maxValue) > 0 {
		return Refuse("ethereum.max_value", "value %s wei is above the cap of %s wei", value, p.maxValue)
	}
	if err := p.checkToken(to, data); err != nil {
		return err
	}
	if to != nil && p.methods != nil {
		if sels, ok := p.methods[*to]; ok {
			if len(data) < 4 {
				return Refuse("ethereum.methods", "%s may only be called with an allowed method selector; the call has none", to.Hex())
			}
			if !sels[[4]byte(data[:4])] {
				return Refuse("ethereum.methods", "method selector 0x%x is not allowed for %s", data[:4], to.Hex())
			}
		}
	}
	return nil
}

// CheckMessage checks an EIP-191 personal message (eth_sign, personal_sign,
// account_signData text/plain).
func (p *Ethereum) CheckMessage() error {
	if !p.signMessages {
		return Refuse("ethereum.sign_messages", "message signing is off for this key")
	}
	return nil
}

// CheckCliqueHeader checks a clique block-header seal.
func (p *Ethereum) CheckCliqueHeader() error {
	if !p.signClique {
		return Refuse("ethereum.sign_clique_headers", "clique header signing is off for this key")
	}
	return nil
}

// CheckTypedData checks EIP-712 typed data by its domain. With chain_ids
// set, a domain without a chainId is refused.
func (p *Ethereum) CheckTypedData(domain apitypes.TypedDataDomain) error {
	if !p.signTypedData {
		return Refuse("ethereum.sign_typed_data", "typed-data signing is off for this key")
	}
	var chainID *big.Int
	if domain.ChainId != nil {
		chainID = (*big.Int)(domain.ChainId)
		if err := p.CheckChainID(chainID); err != nil {
			return err
		}
	}
	// Without a chainId the signature is valid on every chain.
	everyChain := chainID == nil && p.chainIDs != nil
	if len(p.domains) == 0 {
		if everyChain {
			return Refuse("ethereum.chain_ids", "typed data domain has no chainId (valid on every chain)")
		}
		return nil
	}
	var contract *common.Address
	if domain.VerifyingContract != "" {
		if !common.IsHexAddress(domain.VerifyingContract) {
			return Refuse("ethereum.typed_data_domains", "verifyingContract %q is not an address", domain.VerifyingContract)
		}
		a := common.HexToAddress(domain.VerifyingContract)
		contract = &a
	}
	for _, d := range p.domains {
		if d.chainID != nil && (chainID == nil || d.chainID.Cmp(chainID) != 0) {
			continue
		}
		if d.contract != nil && (contract == nil || *d.contract != *contract) {
			continue
		}
		if everyChain {
			return Refuse("ethereum.chain_ids", "typed data domain has no chainId (valid on every chain)")
		}
		return nil
	}
	return Refuse("ethereum.typed_data_domains", "domain (chainId %v, verifyingContract %q) is not allowed", chainID, domain.VerifyingContract)
}

// CheckAuthorization checks an EIP-7702 authorization: sign_authorizations
// must be on, and with chain_ids set, its chain id must be listed (chain id
// 0, valid on every chain, is then refused).
func (p *Ethereum) CheckAuthorization(auth *types.SetCodeAuthorization) error {
	if !p.signAuth {
		return Refuse("ethereum.sign_authorizations", "EIP-7702 authorizations are off for this key")
	}
	return p.CheckChainID(auth.ChainID.ToBig())
}
