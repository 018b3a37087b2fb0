package policy

import (
	"encoding/hex"
	"encoding/json"
	"math/big"
	"os"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"gopkg.in/yaml.v3"

	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/internal/testutil"
)

const (
	tzToken = "KT1PWx2mnDueood7fEmfbBDKx1D9BAnnXitn" // the destination of test/forge/tokens.js
	tzDex   = kt1
	usdc    = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
)

// tokenRequests returns the Taquito-forged token calls of
// chains/tezos/testdata/taquito_tokens.json, decoded, by name.
func tokenRequests(t *testing.T) map[string]*tezos.Request {
	t.Helper()
	b, err := os.ReadFile("../chains/tezos/testdata/taquito_tokens.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Vectors []struct{ Name, Hex string } }
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	out := map[string]*tezos.Request{}
	for _, v := range f.Vectors {
		p, err := hex.DecodeString(v.Hex)
		if err != nil {
			t.Fatal(err)
		}
		if out[v.Name], err = tezos.ParseRequest(p); err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
	}
	return out
}

// batchOf joins the operations of requests into one generic request.
func batchOf(reqs ...*tezos.Request) *tezos.Request {
	var ops []tezos.Operation
	for _, r := range reqs {
		ops = append(ops, r.Operations...)
	}
	return generic(ops...)
}

// FA1.2 and FA2 calls forged by Taquito: amounts at the cap sign, one unit
// over (summed over a request) is refused, approvals count, adding an
// operator is refused unless listed, undecodable calls are refused.
func TestTezosTokens_TaquitoForgedCalls(t *testing.T) {
	reqs := tokenRequests(t)
	rules := func(std string, max string, decimals uint8, operators ...string) *Tezos {
		return mustCompile(t, &TezosRules{Allow: []string{"generic"}, Operations: []string{"transaction"},
			Tokens: map[string]TezosToken{tzToken: {Standard: std, MaxAmount: max, Decimals: decimals, Operators: operators}}})
	}
	fa12, fa2 := rules("fa1.2", "1000", 0), rules("fa2", "1000", 0)
	for name, tc := range map[string]struct {
		p    *Tezos
		req  *tezos.Request
		rule string
	}{
		"fa1.2 transfer at the cap":           {fa12, reqs["fa12_transfer"], ""},
		"fa1.2 transfer one over":             {rules("fa1.2", "999", 0), reqs["fa12_transfer"], "tezos.tokens.max_amount"},
		"fa1.2 cap with decimals":             {rules("fa1.2", "0.001", 6), reqs["fa12_transfer"], ""},
		"fa1.2 cap with decimals one over":    {rules("fa1.2", "0.000999", 6), reqs["fa12_transfer"], "tezos.tokens.max_amount"},
		"fa1.2 comb form decoded and capped":  {fa12, reqs["fa12_transfer_comb"], ""},
		"fa1.2 sequence form one over":        {fa12, reqs["fa12_transfer_sequence"], "tezos.tokens.max_amount"},
		"fa1.2 binary addresses":              {fa12, reqs["fa12_transfer_binary_addresses"], ""},
		"fa1.2 huge transfer":                 {fa12, reqs["fa12_transfer_huge"], "tezos.tokens.max_amount"},
		"fa1.2 two transfers sum over":        {fa12, batchOf(reqs["fa12_transfer"], reqs["fa12_transfer_binary_addresses"]), "tezos.tokens.max_amount"},
		"fa1.2 approve under the cap":         {fa12, reqs["fa12_approve"], ""},
		"fa1.2 approve of 2^256-1 refused":    {fa12, reqs["fa12_approve_max"], "tezos.tokens.max_amount"},
		"fa1.2 approve counts with transfers": {fa12, batchOf(reqs["fa12_approve"], reqs["fa12_approve"], reqs["fa12_transfer_binary_addresses"]), "tezos.tokens.max_amount"},
		"fa1.2 negative value refused":        {fa12, reqs["fa12_transfer_negative"], "tezos.tokens"},
		"fa1.2 annotated value refused":       {fa12, reqs["fa12_transfer_annotated"], "tezos.tokens"},
		"fa1.2 four values refused":           {fa12, reqs["fa12_transfer_four_values"], "tezos.tokens"},
		"fa1.2 bad address refused":           {fa12, reqs["fa12_transfer_not_an_address"], "tezos.tokens"},
		"fa1.2 FA2 entrypoint refused":        {fa12, reqs["fa12_fa2_entrypoint"], "tezos.tokens"},
		"fa2 value on fa1.2 refused":          {fa12, reqs["fa12_approve_with_fa2_value"], "tezos.tokens"},
		"fa2 transfer at the cap":             {fa2, reqs["fa2_transfer"], ""},
		"fa2 batch sums over the cap":         {fa2, reqs["fa2_transfer_batch"], "tezos.tokens.max_amount"},
		"fa2 batch at its sum":                {rules("fa2", "1001", 0), reqs["fa2_transfer_batch"], ""},
		"fa2 comb transactions":               {rules("fa2", "50", 0), reqs["fa2_transfer_comb_tx"], ""},
		"fa2 empty transfer":                  {fa2, reqs["fa2_transfer_empty"], ""},
		"fa2 add_operator refused":            {fa2, reqs["fa2_update_operators"], "tezos.tokens.operators"},
		"fa2 listed operator may be added":    {rules("fa2", "1", 0, tzDex), reqs["fa2_update_operators"], ""},
		"fa2 remove_operator allowed":         {fa2, reqs["fa2_remove_operator"], ""},
		"fa2 FA1.2 value refused":             {fa2, reqs["fa2_transfer_with_fa12_value"], "tezos.tokens"},
		"fa2 unwrapped operator refused":      {fa2, reqs["fa2_update_operators_unwrapped"], "tezos.tokens"},
		"fa2 default entrypoint refused":      {fa2, reqs["fa2_default_entrypoint"], "tezos.tokens"},
		"fa2 balance_of refused":              {fa2, reqs["fa2_balance_of"], "tezos.tokens"},
		"an unlisted contract is not decoded": {rules("fa2", "1", 0), func() *tezos.Request {
			r := *reqs["fa12_transfer_huge"]
			op := r.Operations[0]
			op.Destination = tzDex
			r.Operations = []tezos.Operation{op}
			return &r
		}(), ""},
	} {
		t.Run(name, func(t *testing.T) { wantTezosRule(t, tc.p.Check(tc.req), tc.rule) })
	}
}

// Another entrypoint of a listed token is allowed only when tezos.to names
// it exactly; an address-only to entry does not.
func TestTezosTokens_OtherEntrypointNeedsAnExplicitToEntry(t *testing.T) {
	req := tokenRequests(t)["fa2_balance_of"]
	base := TezosRules{Allow: []string{"generic"}, Operations: []string{"transaction"},
		Tokens: map[string]TezosToken{tzToken: {Standard: "fa2", MaxAmount: "1"}}}
	for _, tc := range []struct {
		to   []string
		rule string
	}{{[]string{tzToken}, "tezos.tokens"}, {[]string{tzToken + "%balance_of"}, ""}, {[]string{tzToken + "%transfer"}, "tezos.to"}} {
		r := base
		r.To = tc.to
		wantTezosRule(t, mustCompile(t, &r).Check(req), tc.rule)
	}
	// A malformed call of a decoded entrypoint stays refused whatever to says.
	r := base
	r.To = []string{tzToken + "%transfer"}
	wantTezosRule(t, mustCompile(t, &r).Check(tokenRequests(t)["fa2_transfer_with_fa12_value"]), "tezos.tokens")
}

type ethersCall struct {
	Name string
	Data hexutil.Bytes
}

// ethersCalls returns ERC-20 call data encoded by ethers (test/ethjs/erc20.mjs), by name.
func ethersCalls(t *testing.T) map[string][]byte {
	t.Helper()
	var calls []ethersCall
	if err := json.Unmarshal(testutil.NodeScript(t, "ethjs", "ethers", "erc20.mjs"), &calls); err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, c := range calls {
		out[c.Name] = c.Data
	}
	return out
}

// ERC-20 calls encoded by ethers' Interface.encodeFunctionData: at the cap
// signs, one unit over and an unlimited approve are refused, other methods
// need ethereum.methods, malformed call data is refused.
func TestEthereumTokens_EthersEncodedCalls(t *testing.T) {
	calls := ethersCalls(t)
	token := common.HexToAddress(usdc)
	p := mustCompileEth(t, &EthereumRules{Tokens: map[string]EthereumToken{usdc: {MaxAmount: "10000", Decimals: 6}}})
	withMethods := mustCompileEth(t, &EthereumRules{Tokens: map[string]EthereumToken{usdc: {MaxAmount: "10000", Decimals: 6}},
		Methods: map[string][]string{usdc: {"0xa9059cbb", "0x39509351"}}})
	for name, tc := range map[string]struct {
		p    *Ethereum
		data []byte
		rule string
	}{
		"transfer at the cap":              {p, calls["transfer_10000_usdc"], ""},
		"transfer one unit over":           {p, calls["transfer_one_unit_over"], "ethereum.tokens.max_amount"},
		"transfer of 2^256-1":              {p, calls["transfer_max_uint256"], "ethereum.tokens.max_amount"},
		"transferFrom under the cap":       {p, calls["transfer_from"], ""},
		"approve under the cap":            {p, calls["approve_capped"], ""},
		"unlimited approve refused":        {p, calls["approve_unlimited"], "ethereum.tokens.max_amount"},
		"approve of zero (revoke)":         {p, calls["approve_revoke"], ""},
		"increaseAllowance refused":        {p, calls["increase_allowance"], "ethereum.tokens"},
		"permit refused":                   {p, calls["permit"], "ethereum.tokens"},
		"balanceOf refused":                {p, calls["balance_of"], "ethereum.tokens"},
		"no call data refused":             {p, nil, "ethereum.tokens"},
		"trailing byte refused":            {withMethods, append(append([]byte{}, calls["transfer_zero"]...), 0), "ethereum.tokens"},
		"methods allows increaseAllowance": {withMethods, calls["increase_allowance"], ""},
		"methods still caps transfer":      {withMethods, calls["transfer_one_unit_over"], "ethereum.tokens.max_amount"},
		"methods restricts decoded calls":  {withMethods, calls["approve_capped"], "ethereum.methods"},
	} {
		t.Run(name, func(t *testing.T) {
			wantEthRule(t, tc.p.CheckTx(tx1559(&token, big.NewInt(0), tc.data), big.NewInt(1)), tc.rule)
		})
	}
	// Another recipient is not decoded.
	wantEthRule(t, p.CheckTx(tx1559(&ethDead, big.NewInt(0), calls["approve_unlimited"]), big.NewInt(1)), "")
	// eth_sendTransaction checks the call before asking the node to fill it.
	wantEthRule(t, p.CheckCall(&token, nil, calls["approve_unlimited"]), "ethereum.tokens.max_amount")
}

func TestCompileTokens_RejectsBadEntries(t *testing.T) {
	tz := func(tok TezosToken, to ...string) *TezosRules {
		return &TezosRules{To: to, Tokens: map[string]TezosToken{tzToken: tok}}
	}
	for name, r := range map[string]*TezosRules{
		"no max_amount":          tz(TezosToken{Standard: "fa2"}),
		"no standard":            tz(TezosToken{MaxAmount: "1"}),
		"unknown standard":       tz(TezosToken{Standard: "fa1", MaxAmount: "1"}),
		"bad amount":             tz(TezosToken{Standard: "fa2", MaxAmount: "1e6"}),
		"too many decimals":      tz(TezosToken{Standard: "fa2", MaxAmount: "0.5"}),
		"operators on fa1.2":     tz(TezosToken{Standard: "fa1.2", MaxAmount: "1", Operators: []string{tzDex}}),
		"bad operator":           tz(TezosToken{Standard: "fa2", MaxAmount: "1", Operators: []string{"KT1x"}}),
		"operator entrypoint":    tz(TezosToken{Standard: "fa2", MaxAmount: "1", Operators: []string{tzDex + "%x"}}),
		"token outside to":       tz(TezosToken{Standard: "fa2", MaxAmount: "1"}, tzDex),
		"implicit account token": {Tokens: map[string]TezosToken{tzSelf: {Standard: "fa2", MaxAmount: "1"}}},
	} {
		t.Run("tezos "+name, func(t *testing.T) {
			if _, err := CompileTezos(r); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	for name, r := range map[string]*EthereumRules{
		"no max_amount":     {Tokens: map[string]EthereumToken{usdc: {Decimals: 6}}},
		"bad address":       {Tokens: map[string]EthereumToken{"0x1234": {MaxAmount: "1"}}},
		"bad checksum":      {Tokens: map[string]EthereumToken{strings.Replace(usdc, "A0b8", "a0B8", 1): {MaxAmount: "1"}}},
		"listed twice":      {Tokens: map[string]EthereumToken{usdc: {MaxAmount: "1"}, strings.ToLower(usdc): {MaxAmount: "2"}}},
		"too many decimals": {Tokens: map[string]EthereumToken{usdc: {MaxAmount: "0.0000001", Decimals: 6}}},
		"token outside to":  {To: []string{"0x000000000000000000000000000000000000dEaD"}, Tokens: map[string]EthereumToken{usdc: {MaxAmount: "1"}}},
	} {
		t.Run("ethereum "+name, func(t *testing.T) {
			if _, err := CompileEthereum(r); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// Token entries decode strictly even under tezos:, whose rules are decoded
// through yaml.Node.Decode: a misspelt field or one without a value is an
// error, never a missing cap.
func TestTokenRules_DecodeStrictly(t *testing.T) {
	for _, src := range []string{
		"tokens: {" + tzToken + ": {standard: fa2, max_ammount: \"1\"}}",
		"tokens: {" + tzToken + ": {standard: fa2, max_amount: }}",
		"tokens: {" + tzToken + ": {standard: fa2, max_amount: \"1\", operators: }}",
	} {
		var r TezosRules
		if err := yaml.Unmarshal([]byte(src), &r); err == nil {
			t.Errorf("tezos %q accepted: %+v", src, r)
		}
	}
	for _, src := range []string{
		"tokens: {\"" + usdc + "\": {max_amount: \"1\", decimal: 6}}",
		"tokens: {\"" + usdc + "\": {max_amount: ~}}",
	} {
		var r EthereumRules
		if err := yaml.Unmarshal([]byte(src), &r); err == nil {
			t.Errorf("ethereum %q accepted: %+v", src, r)
		}
	}
	var r TezosRules
	if err := yaml.Unmarshal([]byte("tokens: {"+tzToken+": {standard: fa2, max_amount: \"1.5\", decimals: 6, operators: ["+tzDex+"]}}"), &r); err != nil {
		t.Fatal(err)
	}
	if tok := r.Tokens[tzToken]; tok.Standard != "fa2" || tok.MaxAmount != "1.5" || tok.Decimals != 6 || len(tok.Operators) != 1 {
		t.Fatalf("%+v", r.Tokens)
	}
}

func TestFmtToken(t *testing.T) {
	for _, tc := range []struct {
		raw      int64
		decimals int
		want     string
	}{{1000, 0, "1000"}, {1000, 6, "0.001"}, {10_000_000_000, 6, "10000"}, {10_000_000_001, 6, "10000.000001"}, {0, 6, "0"}, {5, 1, "0.5"}} {
		if got := fmtToken(big.NewInt(tc.raw), tc.decimals); got != tc.want {
			t.Errorf("fmtToken(%d, %d) = %s, want %s", tc.raw, tc.decimals, got, tc.want)
		}
	}
}
