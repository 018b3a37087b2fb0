package policy

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/keyward/keyward/chains/tezos"
)

const (
	tzSelf   = "tz1W7Hs43hbxDJY9DPS3XRoon96RHN6CpV2Y"
	tzOther  = "tz1gDZwfViZ8cFJz6aTfB3SSmqjuzZLhB66e"
	kt1      = "KT1WvzYHCNBvDSdwafTHv7nJ1dWmZ8GCYuuC"
	mainnet  = "NetXdQprcVkpaWU"
	ghostnet = "NetXnHfVqm9iesp"
)

func mutez(n int64) *big.Int { return big.NewInt(n) }

func tx(kind, dest, ep string, amount, fee int64) tezos.Operation {
	return tezos.Operation{Kind: kind, Tag: 108, Source: tzSelf, Fee: mutez(fee), Amount: mutez(amount), Destination: dest, Entrypoint: ep}
}

func generic(ops ...tezos.Operation) *tezos.Request {
	return &tezos.Request{Magic: 0x03, Kind: tezos.KindGeneric, Operations: ops}
}

func consensus(kind tezos.Kind, chain string) *tezos.Request {
	return &tezos.Request{Magic: 0x13, Kind: kind, ChainID: chain, Level: 10, Round: 0}
}

func mustCompile(t *testing.T, r *TezosRules) *Tezos {
	t.Helper()
	p, err := CompileTezos(r)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTezos_EveryRuleRefusesWithItsName(t *testing.T) {
	oracle := &TezosRules{
		Allow:      []string{"generic", "michelson_data", "attestation"},
		Chains:     []string{mainnet},
		Operations: []string{"transaction", "reveal", "stake"},
		To:         []string{kt1 + "%update", tzOther},
		MaxAmount:  "1 tez",
		MaxFee:     "0.5 tez",
	}
	for name, tc := range map[string]struct {
		rules *TezosRules
		req   *tezos.Request
		rule  string // "" = allowed
	}{
		"default allows block":                {nil, consensus(tezos.KindBlock, mainnet), ""},
		"default allows preattestation":       {nil, consensus(tezos.KindPreattestation, ghostnet), ""},
		"default refuses generic":             {nil, generic(tx("transaction", tzOther, "default", 1, 1)), "tezos.allow"},
		"default refuses michelson data":      {nil, &tezos.Request{Magic: 5, Kind: tezos.KindMichelsonData}, "tezos.allow"},
		"allow refuses block":                 {oracle, consensus(tezos.KindBlock, mainnet), "tezos.allow"},
		"chains refuses other chain":          {oracle, consensus(tezos.KindAttestation, ghostnet), "tezos.chains"},
		"chains allows listed chain":          {oracle, consensus(tezos.KindAttestation, mainnet), ""},
		"michelson data allowed":              {oracle, &tezos.Request{Magic: 5, Kind: tezos.KindMichelsonData}, ""},
		"operations refuses delegation":       {oracle, generic(tezos.Operation{Kind: "delegation", Tag: 110, Source: tzSelf, Fee: mutez(1)}), "tezos.operations"},
		"to allows listed entrypoint":         {oracle, generic(tx("transaction", kt1, "update", 0, 1000)), ""},
		"to refuses other entrypoint":         {oracle, generic(tx("transaction", kt1, "transfer", 0, 1000)), "tezos.to"},
		"to allows address without %":         {oracle, generic(tx("transaction", tzOther, "default", 5, 1000)), ""},
		"to refuses other address":            {oracle, generic(tx("transaction", tzSelf+"x", "default", 5, 1000)), "tezos.to"},
		"max_amount refuses above cap":        {oracle, generic(tx("transaction", tzOther, "default", 1_000_001, 1)), "tezos.max_amount"},
		"max_amount allows the cap":           {oracle, generic(tx("transaction", tzOther, "default", 1_000_000, 1)), ""},
		"max_amount applies to stake":         {oracle, generic(tx("stake", tzSelf, "stake", 2_000_000, 1)), "tezos.max_amount"},
		"max_fee refuses above cap":           {oracle, generic(tx("transaction", kt1, "update", 0, 500_001)), "tezos.max_fee"},
		"max_fee applies to reveal":           {oracle, generic(tezos.Operation{Kind: "reveal", Tag: 107, Source: tzSelf, Fee: mutez(600_000)}), "tezos.max_fee"},
		"stake to self passes the to rule":    {oracle, generic(tx("stake", tzSelf, "stake", 10, 1)), ""},
		"batch with one forbidden op refused": {oracle, generic(tezos.Operation{Kind: "reveal", Tag: 107, Source: tzSelf, Fee: mutez(1)}, tx("transaction", kt1, "update", 0, 1), tezos.Operation{Kind: "delegation", Tag: 110, Source: tzSelf, Fee: mutez(1)}), "tezos.operations"},
		"empty operations refuse generic":     {&TezosRules{Allow: []string{"generic"}}, generic(tx("transaction", tzOther, "default", 1, 1)), "tezos.operations"},
		"explicit empty allow refuses all":    {&TezosRules{Allow: []string{}}, consensus(tezos.KindBlock, mainnet), "tezos.allow"},
		"rules without allow keep consensus":  {&TezosRules{Chains: []string{mainnet}}, consensus(tezos.KindBlock, mainnet), ""},
		"chains do not apply to generic":      {&TezosRules{Allow: []string{"generic"}, Chains: []string{ghostnet}, Operations: []string{"transaction"}}, generic(tx("transaction", tzOther, "default", 1, 1)), ""},
		"transfer_ticket amount is not tez":   {&TezosRules{Allow: []string{"generic"}, Operations: []string{"transfer_ticket"}, MaxAmount: "0"}, generic(tezos.Operation{Kind: "transfer_ticket", Tag: 158, Source: tzSelf, Fee: mutez(1), Amount: mutez(77), Destination: kt1, Entrypoint: "receive"}), ""},
		"to applies to drain_delegate":        {&TezosRules{Allow: []string{"generic"}, Operations: []string{"drain_delegate"}, To: []string{tzSelf}}, generic(tezos.Operation{Kind: "drain_delegate", Tag: 9, Source: tzSelf, Destination: tzOther}), "tezos.to"},
	} {
		t.Run(name, func(t *testing.T) {
			err := mustCompile(t, tc.rules).Check(tc.req)
			if tc.rule == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ref *Refusal
			if !errors.As(err, &ref) || !errors.Is(err, ErrRefused) {
				t.Fatalf("err = %v, want a refusal by %s", err, tc.rule)
			}
			if ref.Rule != tc.rule {
				t.Fatalf("refused by %s (%s), want %s", ref.Rule, ref.Reason, tc.rule)
			}
			if ref.Reason == "" {
				t.Fatal("refusal without a reason")
			}
		})
	}
}

// TestTezos_StakeAllowedWhileTransactionRefused decodes Taquito-forged
// payloads and checks a staking-only key.
func TestTezos_StakeAllowedWhileTransactionRefused(t *testing.T) {
	b, err := os.ReadFile("../chains/tezos/testdata/taquito_forged.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Operations []struct{ Name, Hex string }
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	vec := map[string][]byte{}
	for _, v := range f.Operations {
		vec[v.Name], _ = hex.DecodeString(v.Hex)
	}
	p := mustCompile(t, &TezosRules{
		Allow:      []string{"block", "preattestation", "attestation", "generic"},
		Operations: []string{"stake", "unstake", "finalize_unstake"},
	})
	for name, want := range map[string]string{
		"stake":                         "",
		"unstake":                       "",
		"finalize_unstake":              "",
		"stake_to_other_is_transaction": "tezos.operations",
		"transaction_tz2_to_tz3":        "tezos.operations",
		"set_delegate_parameters":       "tezos.operations",
		"batch_of_many_kinds":           "tezos.operations",
	} {
		t.Run(name, func(t *testing.T) {
			req, err := tezos.ParseRequest(vec[name])
			if err != nil {
				t.Fatal(err)
			}
			err = p.Check(req)
			var ref *Refusal
			switch {
			case want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case want != "" && (!errors.As(err, &ref) || ref.Rule != want):
				t.Fatalf("err = %v, want refusal by %s", err, want)
			}
		})
	}
}

func TestCompileTezos_RejectsBadRules(t *testing.T) {
	for name, r := range map[string]*TezosRules{
		"unknown kind":         {Allow: []string{"endorsement"}},
		"bad chain":            {Chains: []string{"NetXdQprcVkpaWX"}},
		"unknown operation":    {Operations: []string{"transfer"}},
		"bad to address":       {To: []string{"KT1notanaddress"}},
		"bad to entrypoint":    {To: []string{kt1 + "%"}},
		"bad to entrypoint ch": {To: []string{kt1 + "%a b"}},
		"bad amount":           {MaxAmount: "-1 tez"},
		"too many decimals":    {MaxAmount: "0.0000001 tez"},
		"unknown unit":         {MaxFee: "1 eth"},
		"empty number":         {MaxFee: "tez"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := CompileTezos(r); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestParseMutez(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "1500": 1500, "1500 mutez": 1500, "1 tez": 1_000_000, "0.5 tez": 500_000,
		"0.000001 tez": 1, "2.25tez": 2_250_000, " 3 XTZ ": 3_000_000, "7 ꜩ": 7_000_000,
	} {
		got, err := ParseMutez(in)
		if err != nil || got.Int64() != want {
			t.Errorf("ParseMutez(%q) = %v, %v; want %d", in, got, err, want)
		}
	}
}

func TestTezos_Allows(t *testing.T) {
	p := mustCompile(t, nil)
	for _, k := range []tezos.Kind{tezos.KindBlock, tezos.KindPreattestation, tezos.KindAttestation} {
		if !p.Allows(k) {
			t.Errorf("default policy refuses %s", k)
		}
	}
	if p.Allows(tezos.KindGeneric) || p.Allows(tezos.KindMichelsonData) {
		t.Error("default policy allows generic or michelson_data")
	}
}

// Decoding stays strict: an unknown field is an error, known fields decode.
func TestTezosRules_DecodesStrictly(t *testing.T) {
	var r TezosRules
	if err := yaml.Unmarshal([]byte("allow: [generic]\noperations: [transaction]\nto: []\nmax_fee: 1 tez\nchains: [NetXdQprcVkpaWU]\nmax_amount: \"0\"\n"), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Allow) != 1 || len(r.Operations) != 1 || r.To == nil || len(r.To) != 0 || r.MaxFee != "1 tez" || r.MaxAmount != "0" || len(r.Chains) != 1 {
		t.Fatalf("%+v", r)
	}
	var empty TezosRules
	if err := yaml.Unmarshal([]byte("allow: []\n"), &empty); err != nil || empty.Allow == nil || len(empty.Allow) != 0 {
		t.Fatalf("allow: [] gave %+v, %v", empty, err)
	}
	var cfg struct {
		Tezos *TezosRules `yaml:"tezos"`
	}
	dec := yaml.NewDecoder(strings.NewReader("tezos:\n  allow: [block]\n  alow: [generic]\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err == nil {
		t.Fatal("unknown field alow accepted")
	}
	dec = yaml.NewDecoder(strings.NewReader("tezos:\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil || cfg.Tezos != nil {
		t.Fatalf("empty tezos section: %+v, %v", cfg.Tezos, err)
	}
}
