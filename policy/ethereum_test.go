package policy

import (
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
	"github.com/holiman/uint256"
)

var (
	ethDead  = common.HexToAddress("0x000000000000000000000000000000000000dEaD")
	ethToken = common.HexToAddress("0x1111111111111111111111111111111111111111")
	ethOther = common.HexToAddress("0x2222222222222222222222222222222222222222")
)

func ether(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(1e18)) }

func tx1559(to *common.Address, value *big.Int, data []byte) *types.Transaction {
	return types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1), To: to, Value: value, Data: data,
		Gas: 21000, GasFeeCap: big.NewInt(2), GasTipCap: big.NewInt(1)})
}

func mustCompileEth(t *testing.T, r *EthereumRules) *Ethereum {
	t.Helper()
	p, err := CompileEthereum(r)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// wantRule checks that err is a *Refusal naming rule ("" = allowed).
func wantEthRule(t *testing.T, err error, rule string) {
	t.Helper()
	if rule == "" {
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		return
	}
	var r *Refusal
	if !errors.As(err, &r) || !errors.Is(err, ErrRefused) {
		t.Fatalf("err = %v, want a refusal by %s", err, rule)
	}
	if r.Rule != rule {
		t.Fatalf("refused by %s, want %s (%v)", r.Rule, rule, err)
	}
}

func TestEthereumCheckTx_EachRule(t *testing.T) {
	rules := &EthereumRules{
		ChainIDs: []uint64{1, 11155111},
		To:       []string{"0x000000000000000000000000000000000000dEaD", "0x1111111111111111111111111111111111111111"},
		MaxValue: "1 ether",
		Methods:  map[string][]string{"0x1111111111111111111111111111111111111111": {"0xa9059cbb"}},
	}
	p := mustCompileEth(t, rules)
	transfer := append([]byte{0xa9, 0x05, 0x9c, 0xbb}, make([]byte, 64)...)
	tests := []struct {
		name    string
		tx      *types.Transaction
		chainID int64
		rule    string
	}{
		{"allowed transfer", tx1559(&ethDead, ether(1), nil), 1, ""},
		{"ethOther chain", tx1559(&ethDead, ether(1), nil), 5, "ethereum.chain_ids"},
		{"recipient not listed", tx1559(&ethOther, big.NewInt(1), nil), 1, "ethereum.to"},
		{"contract creation", tx1559(nil, big.NewInt(0), []byte{0x60}), 1, "ethereum.allow_create"},
		{"above max value", tx1559(&ethDead, new(big.Int).Add(ether(1), big.NewInt(1)), nil), 1, "ethereum.max_value"},
		{"allowed selector", tx1559(&ethToken, big.NewInt(0), transfer), 1, ""},
		{"ethOther selector", tx1559(&ethToken, big.NewInt(0), []byte{0x09, 0x5e, 0xa7, 0xb3}), 1, "ethereum.methods"},
		{"no selector to a restricted recipient", tx1559(&ethToken, big.NewInt(0), nil), 1, "ethereum.methods"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantEthRule(t, p.CheckTx(tc.tx, big.NewInt(tc.chainID)), tc.rule)
		})
	}
}

func TestEthereumCheckTx_AllowCreate(t *testing.T) {
	p := mustCompileEth(t, &EthereumRules{AllowCreate: true})
	wantEthRule(t, p.CheckTx(tx1559(nil, nil, []byte{0x60}), big.NewInt(1)), "")
}

func TestEthereum_ZeroPolicyRefusesMessagesTypedDataAuthorizationsClique(t *testing.T) {
	for _, p := range []*Ethereum{mustCompileEth(t, nil), mustCompileEth(t, &EthereumRules{})} {
		wantEthRule(t, p.CheckMessage(), "ethereum.sign_messages")
		wantEthRule(t, p.CheckTypedData(apitypes.TypedDataDomain{}), "ethereum.sign_typed_data")
		wantEthRule(t, p.CheckAuthorization(&types.SetCodeAuthorization{}), "ethereum.sign_authorizations")
		wantEthRule(t, p.CheckCliqueHeader(), "ethereum.sign_clique_headers")
		wantEthRule(t, p.CheckTx(tx1559(nil, nil, nil), big.NewInt(1)), "ethereum.allow_create")
		wantEthRule(t, p.CheckTx(tx1559(&ethOther, ether(1000), nil), big.NewInt(1)), "")
	}
}

func TestEthereumCheckTypedData_DomainAllowList(t *testing.T) {
	p := mustCompileEth(t, &EthereumRules{
		ChainIDs:         []uint64{1, 10},
		SignTypedData:    true,
		TypedDataDomains: []TypedDataDomain{{ChainID: 1, VerifyingContract: "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"}, {ChainID: 10}},
	})
	chain := func(n int64) *math.HexOrDecimal256 { return (*math.HexOrDecimal256)(big.NewInt(n)) }
	tests := []struct {
		name   string
		domain apitypes.TypedDataDomain
		rule   string
	}{
		{"listed chain and contract", apitypes.TypedDataDomain{ChainId: chain(1), VerifyingContract: "0xcccccccccccccccccccccccccccccccccccccccc"}, ""},
		{"chain-only entry", apitypes.TypedDataDomain{ChainId: chain(10), VerifyingContract: "0x2222222222222222222222222222222222222222"}, ""},
		{"ethOther contract", apitypes.TypedDataDomain{ChainId: chain(1), VerifyingContract: "0x2222222222222222222222222222222222222222"}, "ethereum.typed_data_domains"},
		{"no chain id", apitypes.TypedDataDomain{VerifyingContract: "0xcccccccccccccccccccccccccccccccccccccccc"}, "ethereum.typed_data_domains"},
		{"chain outside chain_ids", apitypes.TypedDataDomain{ChainId: chain(137)}, "ethereum.chain_ids"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantEthRule(t, p.CheckTypedData(tc.domain), tc.rule) })
	}
}

func TestEthereumCheckAuthorization_ChainZeroRefusedWithChainIDs(t *testing.T) {
	p := mustCompileEth(t, &EthereumRules{ChainIDs: []uint64{1}, SignAuthorizations: true})
	wantEthRule(t, p.CheckAuthorization(&types.SetCodeAuthorization{ChainID: *uint256.NewInt(1)}), "")
	wantEthRule(t, p.CheckAuthorization(&types.SetCodeAuthorization{ChainID: *uint256.NewInt(0)}), "ethereum.chain_ids")
	wantEthRule(t, p.CheckAuthorization(&types.SetCodeAuthorization{ChainID: *uint256.NewInt(5)}), "ethereum.chain_ids")
}

func TestEthereumCheckMessage_AllowedWhenOn(t *testing.T) {
	wantEthRule(t, mustCompileEth(t, &EthereumRules{SignMessages: true}).CheckMessage(), "")
}

func TestParseWei(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"1 ether", "1000000000000000000"},
		{"0.5 ether", "500000000000000000"},
		{"30 gwei", "30000000000"},
		{"1.5 GWEI", "1500000000"},
		{"7 wei", "7"},
		{"12345", "12345"},
		{"0", "0"},
	}
	for _, tc := range tests {
		v, err := ParseWei(tc.in)
		if err != nil || v.String() != tc.want {
			t.Errorf("ParseWei(%q) = %v, %v; want %s", tc.in, v, err, tc.want)
		}
	}
	for _, bad := range []string{"", "1 btc", "-1", "1.5", "0.1 wei", "1e18", "1 ether extra", "1. ether", ".5 ether", "0.0000000000000000001 ether"} {
		if _, err := ParseWei(bad); err == nil {
			t.Errorf("ParseWei(%q) accepted", bad)
		}
	}
}

func TestCompileEthereum_RejectsBadRules(t *testing.T) {
	tests := []struct {
		name  string
		rules EthereumRules
	}{
		{"bad to", EthereumRules{To: []string{"0x1234"}}},
		{"bad checksum", EthereumRules{To: []string{"0x000000000000000000000000000000000000DEad"}}},
		{"chain id 0", EthereumRules{ChainIDs: []uint64{0}}},
		{"bad max value", EthereumRules{MaxValue: "lots"}},
		{"bad selector", EthereumRules{Methods: map[string][]string{"0x1111111111111111111111111111111111111111": {"0xa9059c"}}}},
		{"methods recipient outside to", EthereumRules{To: []string{"0x000000000000000000000000000000000000dEaD"}, Methods: map[string][]string{"0x1111111111111111111111111111111111111111": {"0xa9059cbb"}}}},
		{"bad domain contract", EthereumRules{TypedDataDomains: []TypedDataDomain{{VerifyingContract: "nope"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := CompileEthereum(&tc.rules); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
