package policy

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"gopkg.in/yaml.v3"

	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/limits"
	limitsfile "github.com/keyward/keyward/limits/file"
)

func decodeTezos(t *testing.T, src string) *Tezos {
	t.Helper()
	var r TezosRules
	if err := yaml.Unmarshal([]byte(src), &r); err != nil {
		t.Fatal(err)
	}
	return mustCompile(t, &r)
}

func decodeEth(t *testing.T, src string) *Ethereum {
	t.Helper()
	var r EthereumRules
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil {
		t.Fatal(err)
	}
	return mustCompileEth(t, &r)
}

// The configuration of DESIGN §5 compiles to the budgets a store debits.
func TestLimits_CompileFromTheConfig(t *testing.T) {
	tz := decodeTezos(t, `
allow: [generic]
operations: [transaction]
tokens: {`+tzToken+`: {standard: fa2, max_amount: "1000"}}
limits:
  - {window: 24h, max_amount: "500 tez", max_fee: "5 tez", max_requests: 1000, max_token_amount: {`+tzToken+`: "100"}}
  - {window: 1h, max_requests: 100}
`)
	ls := tz.Limits()
	if len(ls) != 2 {
		t.Fatalf("%d limits", len(ls))
	}
	day, hour := ls[0], ls[1]
	if day.Rule != "tezos.limits[0]" || day.Window != 24*time.Hour || day.MaxAmount.Int64() != 500_000_000 || day.MaxFee.Int64() != 5_000_000 ||
		day.MaxRequests != 1000 || day.MaxTokens[tzToken].Int64() != 100 || day.Unit != "mutez" {
		t.Fatalf("day %+v", day)
	}
	if hour.Rule != "tezos.limits[1]" || hour.MaxAmount != nil || hour.MaxFee != nil || hour.MaxRequests != 100 {
		t.Fatalf("hour %+v", hour)
	}
	if err := limits.Check(ls); err != nil {
		t.Fatal(err)
	}
	eth := decodeEth(t, `
tokens: {"0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48": {max_amount: "10000", decimals: 6}}
limits:
  - {window: 1h, max_value: "5 ether", max_fee: "0.2 ether", max_requests: 100, max_token_amount: {"0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48": "2500.5"}}
`)
	e := eth.Limits()[0]
	if e.Rule != "ethereum.limits[0]" || e.Window != time.Hour || e.MaxAmount.Cmp(ether(5)) != 0 || e.MaxFee.String() != "200000000000000000" ||
		e.MaxRequests != 100 || e.MaxTokens[usdc].Int64() != 2_500_500_000 || e.Unit != "wei" {
		t.Fatalf("ethereum %+v", e)
	}
	if mustCompile(t, nil).Limits() != nil || mustCompileEth(t, nil).Limits() != nil {
		t.Fatal("limits without rules")
	}
}

// Spend counts a request as the caps do: tez amounts (staking and
// origination balances included), fees, token amounts moved or approved.
func TestTezosSpend_CountsWhatTheCapsCount(t *testing.T) {
	p := mustCompile(t, &TezosRules{Allow: []string{"generic", "michelson_data"}, Operations: []string{"transaction", "reveal", "delegation", "stake", "origination"},
		Tokens: map[string]TezosToken{tzToken: {Standard: "fa2", MaxAmount: "5000"}}})
	req, err := tezos.ParseRequest(forgedVector(t, "batch_of_many_kinds"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Spend(req)
	// stake 6000000 + 42 to KT1 + origination balance 1; five fees of 1420.
	if err != nil || s.Amount.Int64() != 6_000_043 || s.Fee.Int64() != 5*1420 || s.Requests != 1 || s.Tokens != nil {
		t.Fatalf("spend %+v, %v", s, err)
	}
	reqs := tokenRequests(t)
	s, err = p.Spend(batchOf(reqs["fa2_transfer_batch"], reqs["fa2_transfer"]))
	if err != nil || s.Tokens[tzToken].Int64() != 1001+1000 || s.Fee.Int64() != 2*1420 || s.Amount.Sign() != 0 {
		t.Fatalf("token spend %+v, %v", s, err)
	}
	if _, err := p.Spend(reqs["fa2_transfer_with_fa12_value"]); err == nil {
		t.Fatal("an undecodable token call was given a spend")
	}
	s, err = p.Spend(&tezos.Request{Magic: 5, Kind: tezos.KindMichelsonData})
	if err != nil || s.Requests != 1 || s.Amount.Sign() != 0 || s.Fee.Sign() != 0 {
		t.Fatalf("michelson data spend %+v, %v", s, err)
	}
}

func TestEthereumSpendTx_ValueMaxFeeAndTokens(t *testing.T) {
	p := mustCompileEth(t, &EthereumRules{Tokens: map[string]EthereumToken{strings.ToLower(usdc): {MaxAmount: "10000", Decimals: 6}}})
	s, err := p.SpendTx(dynTx(21000, gwei(30), gwei(1)))
	if err != nil || s.Amount.Int64() != 1 || s.Fee.Cmp(new(big.Int).Mul(big.NewInt(21000), gwei(30))) != 0 || s.Requests != 1 || s.Tokens != nil {
		t.Fatalf("spend %+v, %v", s, err)
	}
	token := common.HexToAddress(usdc)
	calls := ethersCalls(t)
	s, err = p.SpendTx(tx1559(&token, big.NewInt(0), calls["transfer_from"]))
	if err != nil || s.Tokens[usdc].Int64() != 123456789 {
		t.Fatalf("token spend %+v, %v", s, err)
	}
	if _, err := p.SpendTx(tx1559(&token, big.NewInt(0), calls["balance_of"])); err == nil {
		t.Fatal("an undecoded token call was given a spend")
	}
}

// An oracle poster's key, checked by policy and debited into a real store:
// a day's fee budget signs to the cap and refuses the next request, naming
// the limit and when it frees up.
func TestLimits_OraclePosterAgainstAFileStore(t *testing.T) {
	p := decodeTezos(t, `
allow: [generic]
operations: [transaction]
to: ["KT1WvzYHCNBvDSdwafTHv7nJ1dWmZ8GCYuuC%update"]
max_fee: "0.01 tez"
limits: [{window: 24h, max_fee: "0.0142 tez", max_amount: "0 tez"}]
`)
	store, err := limitsfile.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	req, err := tezos.ParseRequest(forgedVector(t, "transaction_kt1_update")) // fee 1420 mutez
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	sign := func(at time.Time) error {
		if err := p.Check(req); err != nil {
			return err
		}
		s, err := p.Spend(req)
		if err != nil {
			return err
		}
		_, err = store.Debit(context.Background(), "oracle", p.Limits(), s, at)
		return err
	}
	for i := 0; i < 10; i++ {
		if err := sign(now.Add(time.Duration(i) * time.Minute)); err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	err = sign(now.Add(time.Hour))
	var e *limits.ExceededError
	if !errors.As(err, &e) || e.Rule != "tezos.limits[0].max_fee" || e.FreesAt.Before(now.Add(24*time.Hour)) {
		t.Fatalf("11th update: %v", err)
	}
	if !strings.Contains(err.Error(), "14200 mutez spent of 14200 mutez per 24h") {
		t.Fatalf("message %q", err)
	}
}

func TestCompileLimits_RejectsBadLimits(t *testing.T) {
	for name, r := range map[string]*TezosRules{
		"no window":        {Limits: []TezosLimit{{MaxFee: "1 tez"}}},
		"bad window":       {Limits: []TezosLimit{{Window: "1d", MaxFee: "1 tez"}}},
		"window too short": {Limits: []TezosLimit{{Window: "30s", MaxFee: "1 tez"}}},
		"window too long":  {Limits: []TezosLimit{{Window: "9000h", MaxFee: "1 tez"}}},
		"no cap":           {Limits: []TezosLimit{{Window: "1h"}}},
		"zero requests":    {Limits: []TezosLimit{{Window: "1h", MaxRequests: u64(0)}}},
		"bad amount":       {Limits: []TezosLimit{{Window: "1h", MaxAmount: "5 eth"}}},
		"bad fee":          {Limits: []TezosLimit{{Window: "1h", MaxFee: "-1"}}},
		"token not listed": {Limits: []TezosLimit{{Window: "1h", MaxTokenAmount: map[string]string{tzToken: "1"}}}},
		"bad token amount": {Tokens: map[string]TezosToken{tzToken: {Standard: "fa2", MaxAmount: "1"}}, Limits: []TezosLimit{{Window: "1h", MaxTokenAmount: map[string]string{tzToken: "0.5"}}}},
	} {
		t.Run("tezos "+name, func(t *testing.T) {
			if _, err := CompileTezos(r); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	for name, r := range map[string]*EthereumRules{
		"no cap":             {Limits: []EthereumLimit{{Window: "1h"}}},
		"bad value":          {Limits: []EthereumLimit{{Window: "1h", MaxValue: "1 tez"}}},
		"token not listed":   {Limits: []EthereumLimit{{Window: "1h", MaxTokenAmount: map[string]string{usdc: "1"}}}},
		"bad token address":  {Limits: []EthereumLimit{{Window: "1h", MaxTokenAmount: map[string]string{"0x12": "1"}}}},
		"token listed twice": {Tokens: map[string]EthereumToken{usdc: {MaxAmount: "1"}}, Limits: []EthereumLimit{{Window: "1h", MaxTokenAmount: map[string]string{usdc: "1", strings.ToLower(usdc): "2"}}}},
	} {
		t.Run("ethereum "+name, func(t *testing.T) {
			if _, err := CompileEthereum(r); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// Limit entries decode strictly under tezos: (a misspelt cap would be no
// cap) and under ethereum:.
func TestLimitRules_DecodeStrictly(t *testing.T) {
	for _, src := range []string{
		"limits: [{window: 24h, max_fees: \"5 tez\"}]",
		"limits: [{window: 24h, max_fee: }]",
		"limits: [{window: , max_fee: \"1 tez\"}]",
		"limits: [{window: 24h, max_requests: -1}]",
	} {
		var r TezosRules
		if err := yaml.Unmarshal([]byte(src), &r); err == nil {
			t.Errorf("tezos %q accepted: %+v", src, r)
		}
	}
	for _, src := range []string{
		"limits: [{window: 1h, max_amount: \"5 ether\"}]",
		"limits: [{window: 1h, max_value: ~}]",
	} {
		var r EthereumRules
		if err := yaml.Unmarshal([]byte(src), &r); err == nil {
			t.Errorf("ethereum %q accepted: %+v", src, r)
		}
	}
}
