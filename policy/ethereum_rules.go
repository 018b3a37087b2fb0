package policy

import "gopkg.in/yaml.v3"

// EthereumRules is the YAML form of a key's Ethereum policy (keys.<name>.ethereum).
// A key without an ethereum section is not served on the Ethereum side.
type EthereumRules struct {
	ChainIDs           []uint64            `yaml:"chain_ids"`           // allowed chain ids; empty = any. When set, typed data must name a listed chainId in its domain
	To                 []string            `yaml:"to"`                  // recipient allow-list; empty = any
	AllowCreate        bool                `yaml:"allow_create"`        // contract creation (no "to")
	MaxValue           string              `yaml:"max_value"`           // wei, or "N ether" / "N gwei"; empty = no cap
	Methods            map[string][]string `yaml:"methods"`             // recipient -> allowed 4-byte selectors ("0xa9059cbb"); a recipient listed here may only be called with these
	SignMessages       bool                `yaml:"sign_messages"`       // eth_sign, personal_sign, account_signData text/plain
	SignTypedData      bool                `yaml:"sign_typed_data"`     // eth_signTypedData*, account_signTypedData, data/typed
	TypedDataDomains   []TypedDataDomain   `yaml:"typed_data_domains"`  // optional domain allow-list
	SignAuthorizations bool                `yaml:"sign_authorizations"` // EIP-7702 authorizations (delegating the account's code)
	SignCliqueHeaders  bool                `yaml:"sign_clique_headers"` // account_signData application/x-clique-header (proof-of-authority block seals)

	// Per-request fee caps (policy/caps.go), in wei or "N gwei" / "N ether".
	MaxFee      string  `yaml:"max_fee"`       // the most a transaction can pay in fees: gas × gasPrice (or maxFeePerGas), plus blob gas × maxFeePerBlobGas
	MaxGasPrice string  `yaml:"max_gas_price"` // gasPrice, or maxFeePerGas
	MaxGas      *uint64 `yaml:"max_gas"`       // gas limit

	// Tokens lists ERC-20 contracts whose calls are decoded and capped (policy/tokens.go).
	Tokens map[string]EthereumToken `yaml:"tokens"`
	// Limits are rolling budgets over time windows (policy/limits.go).
	Limits []EthereumLimit `yaml:"limits"`
}

// UnmarshalYAML decodes the rules strictly (see decodeRules).
func (r *EthereumRules) UnmarshalYAML(n *yaml.Node) error {
	type plain EthereumRules
	return decodeRules(n, (*plain)(r))
}

// TypedDataDomain is one allowed EIP-712 domain; zero fields match anything.
type TypedDataDomain struct {
	ChainID           uint64 `yaml:"chain_id"`
	VerifyingContract string `yaml:"verifying_contract"`
}
