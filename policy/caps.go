package policy

import (
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/keyward/keyward/chains/tezos"
)

// tezosCaps are the per-request caps of a Tezos policy beyond max_amount
// and max_fee. A nil cap is no cap.
type tezosCaps struct {
	maxStorage     *big.Int // storage_limit of each manager operation
	maxGas         *big.Int // gas_limit of each manager operation
	maxBatchFee    *big.Int // sum of the fees of one request
	maxBatchAmount *big.Int // sum of the tez amounts of one request
	maxOperations  int      // 0: no cap
}

func compileTezosCaps(r *TezosRules) (tezosCaps, error) {
	var c tezosCaps
	var err error
	if r.MaxStorageLimit != nil {
		c.maxStorage = new(big.Int).SetUint64(*r.MaxStorageLimit)
	}
	if r.MaxGasLimit != nil {
		c.maxGas = new(big.Int).SetUint64(*r.MaxGasLimit)
	}
	if r.MaxBatchFee != "" {
		if c.maxBatchFee, err = ParseMutez(r.MaxBatchFee); err != nil {
			return c, fmt.Errorf("max_batch_fee: %w", err)
		}
	}
	if r.MaxBatchAmount != "" {
		if c.maxBatchAmount, err = ParseMutez(r.MaxBatchAmount); err != nil {
			return c, fmt.Errorf("max_batch_amount: %w", err)
		}
	}
	if r.MaxOperations != nil {
		if *r.MaxOperations == 0 || *r.MaxOperations > 1<<20 {
			return c, fmt.Errorf("max_operations: %d is not between 1 and %d", *r.MaxOperations, 1<<20)
		}
		c.maxOperations = int(*r.MaxOperations)
	}
	return c, nil
}

// checkOperation applies the per-operation caps (tezos.max_storage_limit,
// tezos.max_gas_limit) to a manager operation.
func (c *tezosCaps) checkOperation(op *tezos.Operation, where opWhere) error {
	if c.maxStorage != nil && op.StorageLimit != nil && op.StorageLimit.Cmp(c.maxStorage) > 0 {
		return Refuse("tezos.max_storage_limit", "%s: storage limit %s bytes is above the cap of %s", where, op.StorageLimit, c.maxStorage)
	}
	if c.maxGas != nil && op.GasLimit != nil && op.GasLimit.Cmp(c.maxGas) > 0 {
		return Refuse("tezos.max_gas_limit", "%s: gas limit %s is above the cap of %s", where, op.GasLimit, c.maxGas)
	}
	return nil
}

// checkBatch applies the caps on a whole request (tezos.max_operations,
// tezos.max_batch_fee, tezos.max_batch_amount).
func (c *tezosCaps) checkBatch(ops []tezos.Operation) error {
	if c.maxOperations > 0 && len(ops) > c.maxOperations {
		return Refuse("tezos.max_operations", "%d operations in one request, above the cap of %d", len(ops), c.maxOperations)
	}
	if c.maxBatchFee != nil {
		if fee := batchFee(ops); fee.Cmp(c.maxBatchFee) > 0 {
			return Refuse("tezos.max_batch_fee", "the %d operations' fees sum to %s mutez, above the cap of %s mutez", len(ops), fee, c.maxBatchFee)
		}
	}
	if c.maxBatchAmount != nil {
		if amount := batchAmount(ops); amount.Cmp(c.maxBatchAmount) > 0 {
			return Refuse("tezos.max_batch_amount", "the %d operations' amounts sum to %s mutez, above the cap of %s mutez", len(ops), amount, c.maxBatchAmount)
		}
	}
	return nil
}

// batchFee is the sum of the fees of ops, in mutez.
func batchFee(ops []tezos.Operation) *big.Int {
	sum := new(big.Int)
	for i := range ops {
		if ops[i].Fee != nil {
			sum.Add(sum, ops[i].Fee)
		}
	}
	return sum
}

// batchAmount is the sum of the tez amounts of ops that max_amount caps
// (transactions, staking, origination balances), in mutez.
func batchAmount(ops []tezos.Operation) *big.Int {
	sum := new(big.Int)
	for i := range ops {
		if ops[i].Amount != nil && tezAmount(&ops[i]) {
			sum.Add(sum, ops[i].Amount)
		}
	}
	return sum
}

// ethCaps are the fee caps of an Ethereum policy. A nil cap is no cap.
type ethCaps struct {
	maxFee      *big.Int // wei: the most a transaction can pay in fees
	maxGasPrice *big.Int // wei per gas: gasPrice, or maxFeePerGas
	maxGas      *big.Int // gas limit
}

func compileEthCaps(r *EthereumRules) (ethCaps, error) {
	var c ethCaps
	var err error
	if r.MaxFee != "" {
		if c.maxFee, err = ParseWei(r.MaxFee); err != nil {
			return c, fmt.Errorf("max_fee: %w", err)
		}
	}
	if r.MaxGasPrice != "" {
		if c.maxGasPrice, err = ParseWei(r.MaxGasPrice); err != nil {
			return c, fmt.Errorf("max_gas_price: %w", err)
		}
	}
	if r.MaxGas != nil {
		c.maxGas = new(big.Int).SetUint64(*r.MaxGas)
	}
	return c, nil
}

// TxMaxFee is the most tx can pay in fees, in wei: its gas limit times its
// gasPrice (legacy and EIP-2930) or maxFeePerGas (EIP-1559 and later), plus
// for a blob transaction its blobs' gas (131072 per blob) times
// maxFeePerBlobGas.
func TxMaxFee(tx *types.Transaction) *big.Int {
	fee := new(big.Int).SetUint64(tx.Gas())
	fee.Mul(fee, tx.GasFeeCap())
	if blobGas := tx.BlobGas(); blobGas > 0 {
		fee.Add(fee, new(big.Int).Mul(new(big.Int).SetUint64(blobGas), tx.BlobGasFeeCap()))
	}
	return fee
}

// check applies ethereum.max_gas, ethereum.max_gas_price and
// ethereum.max_fee to a transaction.
func (c *ethCaps) check(tx *types.Transaction) error {
	if c.maxGas != nil && new(big.Int).SetUint64(tx.Gas()).Cmp(c.maxGas) > 0 {
		return Refuse("ethereum.max_gas", "gas limit %d is above the cap of %s", tx.Gas(), c.maxGas)
	}
	if c.maxGasPrice != nil && tx.GasFeeCap().Cmp(c.maxGasPrice) > 0 {
		what := "gas price"
		if tx.Type() >= types.DynamicFeeTxType {
			what = "max fee per gas"
		}
		return Refuse("ethereum.max_gas_price", "%s %s wei is above the cap of %s wei", what, tx.GasFeeCap(), c.maxGasPrice)
	}
	if c.maxFee != nil {
		if fee := TxMaxFee(tx); fee.Cmp(c.maxFee) > 0 {
			return Refuse("ethereum.max_fee", "the transaction may pay up to %s wei in fees, above the cap of %s wei", fee, c.maxFee)
		}
	}
	return nil
}
