package policy

import (
	"testing"

	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

// With chain_ids set, typed data whose domain has no chainId (a signature
// valid on every chain) is refused, as an EIP-7702 authorization for chain
// id 0 is.
func TestEthereumCheckTypedData_NoChainIDRefusedWithChainIDs(t *testing.T) {
	withChains := mustCompileEth(t, &EthereumRules{ChainIDs: []uint64{11155111}, SignTypedData: true})
	wantEthRule(t, withChains.CheckTypedData(apitypes.TypedDataDomain{Name: "Ether Mail", VerifyingContract: "0xcccccccccccccccccccccccccccccccccccccccc"}), "ethereum.chain_ids")
	anyChain := mustCompileEth(t, &EthereumRules{SignTypedData: true})
	wantEthRule(t, anyChain.CheckTypedData(apitypes.TypedDataDomain{Name: "Ether Mail"}), "")
}

// Permit-style typed data is refused when sign_typed_data is off, whatever
// the domain.
func TestEthereumCheckTypedData_OffRefusesPermit(t *testing.T) {
	for _, r := range []*EthereumRules{nil, {ChainIDs: []uint64{1}, To: []string{"0x1111111111111111111111111111111111111111"}, SignMessages: true}} {
		p := mustCompileEth(t, r)
		wantEthRule(t, p.CheckTypedData(apitypes.TypedDataDomain{Name: "USD Coin", Version: "2",
			VerifyingContract: "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"}), "ethereum.sign_typed_data")
	}
}

// A contract-only domain entry does not lift chain_ids.
func TestEthereumCheckTypedData_ContractOnlyEntryStillNeedsChainID(t *testing.T) {
	p := mustCompileEth(t, &EthereumRules{ChainIDs: []uint64{1}, SignTypedData: true,
		TypedDataDomains: []TypedDataDomain{{VerifyingContract: "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"}}})
	wantEthRule(t, p.CheckTypedData(apitypes.TypedDataDomain{Name: "Ether Mail", VerifyingContract: "0xcccccccccccccccccccccccccccccccccccccccc"}), "ethereum.chain_ids")
}

// An empty domain (every EIP-712 domain field is optional) makes a
// signature valid on every chain and for every contract: allowed when the
// key's rules allow typed data on any chain, refused by chain_ids when set,
// and by typed_data_domains when that lists a contract.
func TestEthereumCheckTypedData_EmptyDomain(t *testing.T) {
	empty := apitypes.TypedDataDomain{}
	wantEthRule(t, mustCompileEth(t, &EthereumRules{SignTypedData: true}).CheckTypedData(empty), "")
	wantEthRule(t, mustCompileEth(t, &EthereumRules{SignTypedData: true, ChainIDs: []uint64{1}}).CheckTypedData(empty), "ethereum.chain_ids")
	wantEthRule(t, mustCompileEth(t, &EthereumRules{SignTypedData: true,
		TypedDataDomains: []TypedDataDomain{{VerifyingContract: "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"}}}).CheckTypedData(empty), "ethereum.typed_data_domains")
	wantEthRule(t, mustCompileEth(t, nil).CheckTypedData(empty), "ethereum.sign_typed_data")
}
