package rpc

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/keyward/keyward/config"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/local"
)

type ruleKey struct {
	name, secret string
	rules        *policy.EthereumRules
}

// ruleHandler serves local keys with their Ethereum rules, without audit
// log or upstream.
func ruleHandler(t *testing.T, rks ...ruleKey) (*Handler, []*keyring.Key) {
	t.Helper()
	var keys []*keyring.Key
	for _, k := range rks {
		sk, err := local.ParseHexSecret(k.secret)
		if err != nil {
			t.Fatal(err)
		}
		u, err := signer.ParseURI("file:///keys/" + k.name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		key, err := keyring.NewKey(k.name, u, sk, config.KeyConfig{Ref: u.String(), Ethereum: k.rules})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	ring, err := keyring.New(keys)
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHandler(Options{Ring: func() *keyring.Ring { return ring }})
	if err != nil {
		t.Fatal(err)
	}
	return h, keys
}

// Finding 9 of issue 11: typed data with an empty domain is signed when
// the key's policy allows it, as ethers 6 Wallet.signTypedData signs it
// (the vector below is its output for Hardhat's account 0; the ethers run
// itself is TestTypedDataHash_EmptyDomainSignsAsEthers in chains/ethereum),
// and refused by ethereum.chain_ids when that is set: the signature is
// valid on every chain.
func TestHandler_EmptyDomainTypedDataSignedUnlessChainIDsSet(t *testing.T) {
	const td = `{"types":{"EIP712Domain":[],"Message":[{"name":"data","type":"string"}]},"primaryType":"Message","domain":{},"message":{"data":"Hello!"}}`
	const ethers = `"0x5a589c3ef826d80f756da8dd8f557bdbc05f8d41cbe8c38c0ee5014bea8f17451d02a290bc9a87d673c246f7bd174c443bcb0dc9df76233eaf14813fa3c212561b"`
	h, keys := ruleHandler(t,
		ruleKey{"any", "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80", &policy.EthereumRules{SignTypedData: true}},
		ruleKey{"mainnet", "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d", &policy.EthereumRules{SignTypedData: true, ChainIDs: []uint64{1}}})
	for _, m := range []string{"eth_signTypedData_v4", "eth_signTypedData"} {
		for _, form := range []any{json.RawMessage(td), td} {
			if res, code, msg := rpcCall(t, h, m, keys[0].EthAddress, form); code != 0 || string(res) != ethers {
				t.Errorf("%s: %s (%d %s), want ethers' %s", m, res, code, msg, ethers)
			}
			if _, code, msg := rpcCall(t, h, m, keys[1].EthAddress, form); code != CodeRefused || !strings.Contains(msg, "ethereum.chain_ids") {
				t.Errorf("%s with chain_ids: %d %s, want refused by ethereum.chain_ids", m, code, msg)
			}
		}
	}
}

// Finding 5 of issue 11: n nested struct types cost about n⁴ to hash (a
// 22 KB body took 12 s). Through the handler, a 1 MiB body of them, and
// the 22 KB one, are refused as invalid params naming the limit
// (chains/ethereum's BenchmarkTypedDataHash_WorstWithinLimits measures what
// the limits allow).
func TestHandler_AdversarialTypedDataRefusedByLimit(t *testing.T) {
	h, keys := ruleHandler(t, ruleKey{"any", "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80", &policy.EthereumRules{SignTypedData: true}})
	nested := func(n, pad int) json.RawMessage {
		var types, msg strings.Builder
		for i := 0; i < n-1; i++ {
			fmt.Fprintf(&types, `"T%d":[{"name":"a","type":"T%d"}],`, i, i+1)
			msg.WriteString(`{"a":`)
		}
		fmt.Fprintf(&types, `"T%d":[{"name":"s","type":"string"}]`, n-1)
		body := `{"types":{"EIP712Domain":[{"name":"name","type":"string"}],` + types.String() + `},"primaryType":"T0","domain":{"name":"x"},"message":` +
			msg.String() + `{"s":"` + strings.Repeat("a", pad) + `"}` + strings.Repeat("}", n-1) + `}`
		return json.RawMessage(body)
	}
	for _, tc := range []struct {
		td    json.RawMessage
		limit string
	}{
		{nested(450, 0), "typed_data.max_types"},
		{nested(450, 1<<20), "typed_data.max_bytes"},
		{nested(200, 0), "typed_data.max_depth"},
	} {
		if _, code, msg := rpcCall(t, h, "eth_signTypedData_v4", keys[0].EthAddress, tc.td); code != CodeInvalidParams || !strings.Contains(msg, tc.limit) {
			t.Errorf("%d bytes: %d %s, want -32602 naming %s", len(tc.td), code, msg, tc.limit)
		}
	}
}
