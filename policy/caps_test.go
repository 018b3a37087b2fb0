package policy

import (
	"encoding/hex"
	"encoding/json"
	"math/big"
	"os"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/holiman/uint256"

	"github.com/keyward/keyward/chains/tezos"
)

func u64(v uint64) *uint64 { return &v }

// mgr is a manager transaction with the given fee, amount, gas and storage limits.
func mgr(amount, fee, gas, storage int64) tezos.Operation {
	op := tx("transaction", tzOther, "default", amount, fee)
	op.GasLimit, op.StorageLimit = big.NewInt(gas), big.NewInt(storage)
	return op
}

func wantTezosRule(t *testing.T, err error, rule string) {
	t.Helper()
	wantEthRule(t, err, rule) // same *Refusal check
}

// Every Tezos per-request cap signs at the cap and refuses one unit over,
// naming its rule.
func TestTezosCaps_AtTheCapSignsOneOverRefused(t *testing.T) {
	p := mustCompile(t, &TezosRules{
		Allow: []string{"generic"}, Operations: []string{"transaction", "reveal"},
		MaxFee: "1 tez", MaxAmount: "10 tez",
		MaxStorageLimit: u64(300), MaxGasLimit: u64(10600),
		MaxBatchFee: "1.5 tez", MaxBatchAmount: "15 tez", MaxOperations: u64(3),
	})
	reveal := tezos.Operation{Kind: "reveal", Tag: 107, Source: tzSelf, Fee: mutez(1), GasLimit: big.NewInt(1000), StorageLimit: big.NewInt(0)}
	for name, tc := range map[string]struct {
		ops  []tezos.Operation
		rule string
	}{
		"storage limit at the cap":     {[]tezos.Operation{mgr(1, 1, 10600, 300)}, ""},
		"storage limit one over":       {[]tezos.Operation{mgr(1, 1, 10600, 301)}, "tezos.max_storage_limit"},
		"storage limit 2^200":          {[]tezos.Operation{{Kind: "transaction", Tag: 108, Source: tzSelf, Fee: mutez(1), Amount: mutez(0), Destination: tzOther, Entrypoint: "default", GasLimit: big.NewInt(1), StorageLimit: new(big.Int).Lsh(big.NewInt(1), 200)}}, "tezos.max_storage_limit"},
		"gas limit at the cap":         {[]tezos.Operation{mgr(1, 1, 10600, 0)}, ""},
		"gas limit one over":           {[]tezos.Operation{mgr(1, 1, 10601, 0)}, "tezos.max_gas_limit"},
		"caps apply to every manager":  {[]tezos.Operation{{Kind: "reveal", Tag: 107, Source: tzSelf, Fee: mutez(1), GasLimit: big.NewInt(1), StorageLimit: big.NewInt(301)}}, "tezos.max_storage_limit"},
		"batch fee at the cap":         {[]tezos.Operation{mgr(1, 1_000_000, 1, 0), mgr(1, 500_000, 1, 0)}, ""},
		"batch fee one over":           {[]tezos.Operation{mgr(1, 1_000_000, 1, 0), mgr(1, 500_001, 1, 0)}, "tezos.max_batch_fee"},
		"each fee under, sum over":     {[]tezos.Operation{mgr(1, 600_000, 1, 0), mgr(1, 600_000, 1, 0), mgr(1, 600_000, 1, 0)}, "tezos.max_batch_fee"},
		"batch amount at the cap":      {[]tezos.Operation{mgr(10_000_000, 1, 1, 0), mgr(5_000_000, 1, 1, 0)}, ""},
		"batch amount one over":        {[]tezos.Operation{mgr(10_000_000, 1, 1, 0), mgr(5_000_001, 1, 1, 0)}, "tezos.max_batch_amount"},
		"operations at the cap":        {[]tezos.Operation{reveal, mgr(1, 1, 1, 0), mgr(1, 1, 1, 0)}, ""},
		"operations one over":          {[]tezos.Operation{reveal, mgr(1, 1, 1, 0), mgr(1, 1, 1, 0), mgr(1, 1, 1, 0)}, "tezos.max_operations"},
		"per-operation max_fee first":  {[]tezos.Operation{mgr(1, 1_000_001, 1, 0)}, "tezos.max_fee"},
		"per-operation max_amount too": {[]tezos.Operation{mgr(10_000_001, 1, 1, 0)}, "tezos.max_amount"},
	} {
		t.Run(name, func(t *testing.T) { wantTezosRule(t, p.Check(generic(tc.ops...)), tc.rule) })
	}
}

// Staking and origination balances count toward max_batch_amount as they do
// toward max_amount; ticket amounts do not.
func TestTezosCaps_BatchAmountCountsWhatMaxAmountCounts(t *testing.T) {
	p := mustCompile(t, &TezosRules{Allow: []string{"generic"}, Operations: []string{"transaction", "stake", "origination", "transfer_ticket"}, MaxBatchAmount: "2"})
	ticket := tezos.Operation{Kind: "transfer_ticket", Tag: 158, Source: tzSelf, Fee: mutez(1), Amount: mutez(1000), Destination: kt1, Entrypoint: "receive"}
	orig := tezos.Operation{Kind: "origination", Tag: 109, Source: tzSelf, Fee: mutez(1), Amount: mutez(1)}
	wantTezosRule(t, p.Check(generic(tx("stake", tzSelf, "stake", 1, 1), orig, ticket)), "")
	wantTezosRule(t, p.Check(generic(tx("stake", tzSelf, "stake", 2, 1), orig, ticket)), "tezos.max_batch_amount")
}

// The caps read the real decoder's fields: a Taquito-forged transaction
// (gas_limit 10600, storage_limit 300) against caps just below and at them.
func TestTezosCaps_TaquitoForgedLimits(t *testing.T) {
	req, err := tezos.ParseRequest(forgedVector(t, "transaction_kt1_update"))
	if err != nil {
		t.Fatal(err)
	}
	base := TezosRules{Allow: []string{"generic"}, Operations: []string{"transaction"}}
	for _, tc := range []struct {
		storage, gas uint64
		rule         string
	}{{300, 10600, ""}, {299, 10600, "tezos.max_storage_limit"}, {300, 10599, "tezos.max_gas_limit"}} {
		r := base
		r.MaxStorageLimit, r.MaxGasLimit = u64(tc.storage), u64(tc.gas)
		wantTezosRule(t, mustCompile(t, &r).Check(req), tc.rule)
	}
}

// forgedVector returns the payload of a Taquito-forged vector of chains/tezos/testdata.
func forgedVector(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../chains/tezos/testdata/taquito_forged.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Operations []struct{ Name, Hex string } }
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	for _, v := range f.Operations {
		if v.Name == name {
			p, err := hex.DecodeString(v.Hex)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
	}
	t.Fatalf("no forged vector %s", name)
	return nil
}

func TestCompileTezosCaps_RejectsBadCaps(t *testing.T) {
	for name, r := range map[string]*TezosRules{
		"zero operations":  {MaxOperations: u64(0)},
		"bad batch fee":    {MaxBatchFee: "1 eth"},
		"bad batch amount": {MaxBatchAmount: "-3"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := CompileTezos(r); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func legacyTx(gas uint64, gasPrice *big.Int) *types.Transaction {
	return types.NewTx(&types.LegacyTx{To: &ethDead, Value: big.NewInt(1), Gas: gas, GasPrice: gasPrice})
}

func dynTx(gas uint64, feeCap, tip *big.Int) *types.Transaction {
	return types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1), To: &ethDead, Value: big.NewInt(1), Gas: gas, GasFeeCap: feeCap, GasTipCap: tip})
}

func blobTx(gas uint64, feeCap *big.Int, blobs int, blobFeeCap *big.Int) *types.Transaction {
	return types.NewTx(&types.BlobTx{ChainID: uint256.NewInt(1), To: ethDead, Value: uint256.NewInt(1), Gas: gas,
		GasFeeCap: uint256.MustFromBig(feeCap), GasTipCap: uint256.NewInt(1), BlobFeeCap: uint256.MustFromBig(blobFeeCap),
		BlobHashes: make([]common.Hash, blobs)})
}

func gwei(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(1e9)) }

// Every Ethereum fee cap signs at the cap and refuses one unit over, naming
// its rule; the measured cases (gas 0x1c9c380 at gasPrice 1e30, a
// maxFee and tip of 2^255) are refused.
func TestEthereumCaps_AtTheCapSignsOneOverRefused(t *testing.T) {
	// 0.021 ether = 21000 gas at 1000 gwei.
	p := mustCompileEth(t, &EthereumRules{MaxValue: "1 ether", MaxFee: "0.021 ether", MaxGasPrice: "1000 gwei", MaxGas: u64(30_000_000)})
	onlyFee := mustCompileEth(t, &EthereumRules{MaxFee: "0.021 ether"})
	// 21000 gas at 1 gwei plus 2 blobs (2 × 131072 blob gas) at 1 gwei.
	blobCap := mustCompileEth(t, &EthereumRules{MaxFee: "283144 gwei"})
	huge := new(big.Int).Lsh(big.NewInt(1), 255)
	e30, _ := new(big.Int).SetString("1000000000000000000000000000000", 10)
	for name, tc := range map[string]struct {
		p    *Ethereum
		tx   *types.Transaction
		rule string
	}{
		"legacy fee at the cap":          {p, legacyTx(21000, gwei(1000)), ""},
		"legacy fee one wei over":        {onlyFee, legacyTx(21000, new(big.Int).Add(gwei(1000), big.NewInt(1))), "ethereum.max_fee"},
		"legacy gas price one over":      {p, legacyTx(20000, new(big.Int).Add(gwei(1000), big.NewInt(1))), "ethereum.max_gas_price"},
		"1559 fee at the cap":            {p, dynTx(21000, gwei(1000), gwei(1000)), ""},
		"1559 fee counts maxFeePerGas":   {onlyFee, dynTx(21001, gwei(1000), big.NewInt(1)), "ethereum.max_fee"},
		"1559 max fee per gas one over":  {p, dynTx(21000, new(big.Int).Add(gwei(1000), big.NewInt(1)), big.NewInt(1)), "ethereum.max_gas_price"},
		"gas at the cap":                 {mustCompileEth(t, &EthereumRules{MaxGas: u64(30_000_000)}), legacyTx(30_000_000, big.NewInt(1)), ""},
		"gas one over":                   {p, legacyTx(30_000_001, big.NewInt(1)), "ethereum.max_gas"},
		"issue: gas 0x1c9c380 at 1e30":   {onlyFee, legacyTx(0x1c9c380, e30), "ethereum.max_fee"},
		"issue: maxFee and tip of 2^255": {onlyFee, dynTx(21000, huge, huge), "ethereum.max_fee"},
		"blob fee at the cap":            {blobCap, blobTx(21000, gwei(1), 2, gwei(1)), ""},
		"blob fee one wei per gas over":  {blobCap, blobTx(21000, gwei(1), 2, new(big.Int).Add(gwei(1), big.NewInt(1))), "ethereum.max_fee"},
	} {
		t.Run(name, func(t *testing.T) { wantEthRule(t, tc.p.CheckTx(tc.tx, big.NewInt(1)), tc.rule) })
	}
}

func TestTxMaxFee_EachTransactionType(t *testing.T) {
	for name, tc := range map[string]struct {
		tx   *types.Transaction
		want int64
	}{
		"legacy":       {legacyTx(21000, big.NewInt(3)), 63000},
		"access list":  {types.NewTx(&types.AccessListTx{ChainID: big.NewInt(1), Gas: 100, GasPrice: big.NewInt(7)}), 700},
		"1559":         {dynTx(100, big.NewInt(9), big.NewInt(8)), 900},
		"blob":         {blobTx(100, big.NewInt(2), 3, big.NewInt(5)), 200 + 3*131072*5},
		"set code":     {types.NewTx(&types.SetCodeTx{ChainID: uint256.NewInt(1), Gas: 10, GasFeeCap: uint256.NewInt(4), GasTipCap: uint256.NewInt(1)}), 40},
		"zero gas fee": {legacyTx(21000, big.NewInt(0)), 0},
	} {
		if got := TxMaxFee(tc.tx); got.Cmp(big.NewInt(tc.want)) != 0 {
			t.Errorf("%s: TxMaxFee = %s, want %d", name, got, tc.want)
		}
	}
}

func TestCompileEthereumCaps_RejectsBadCaps(t *testing.T) {
	for name, r := range map[string]*EthereumRules{
		"bad max fee":       {MaxFee: "0.1 btc"},
		"bad max gas price": {MaxGasPrice: "-1"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := CompileEthereum(r); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
