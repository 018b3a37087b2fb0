package ethereum

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto/kzg4844"
	"github.com/holiman/uint256"
)

// TxArgs are the transaction arguments of eth_signTransaction,
// eth_sendTransaction and account_signTransaction, as ethers, web3signer
// clients and go-ethereum's external signer send them. A nil pointer is an
// absent field.
type TxArgs struct {
	From                 *common.Address
	To                   *common.Address
	Gas                  *uint64
	GasPrice             *big.Int
	MaxFeePerGas         *big.Int
	MaxPriorityFeePerGas *big.Int
	MaxFeePerBlobGas     *big.Int
	Value                *big.Int
	Nonce                *uint64
	Data                 []byte
	AccessList           *types.AccessList
	ChainID              *big.Int
	Type                 *uint64
	BlobHashes           []common.Hash
	Blobs                []kzg4844.Blob
	Commitments          []kzg4844.Commitment
	Proofs               []kzg4844.Proof
	AuthorizationList    []types.SetCodeAuthorization
	hasAuthList          bool
	field                string // where the object sits in the request, for errors
}

func (a *TxArgs) name(k string) string {
	if a.field == "" {
		return k
	}
	return a.field + "." + k
}

// ParseTxArgs decodes a transaction-arguments object. field names it in
// errors ("params[0]"). Unknown members are ignored, as go-ethereum does.
func ParseTxArgs(field string, raw json.RawMessage) (*TxArgs, error) {
	obj, err := object(field, raw)
	if err != nil {
		return nil, err
	}
	a := &TxArgs{field: field}
	if a.From, err = obj.address("from"); err != nil {
		return nil, err
	}
	if obj.has("to") {
		var s string
		if err := json.Unmarshal(obj.get("to"), &s); err != nil {
			return nil, paramErr(obj.name("to"), "want an address string or null")
		}
		if s != "" && s != "0x" { // some clients send "" for a contract creation
			t, err := ParseAddress(obj.name("to"), s)
			if err != nil {
				return nil, err
			}
			a.To = &t
		}
	}
	if a.Gas, err = obj.uint64("gas"); err != nil {
		return nil, err
	}
	if a.Gas == nil {
		if a.Gas, err = obj.uint64("gasLimit"); err != nil {
			return nil, err
		}
	}
	for _, q := range []struct {
		k   string
		dst **big.Int
	}{
		{"gasPrice", &a.GasPrice}, {"maxFeePerGas", &a.MaxFeePerGas},
		{"maxPriorityFeePerGas", &a.MaxPriorityFeePerGas}, {"maxFeePerBlobGas", &a.MaxFeePerBlobGas},
		{"value", &a.Value}, {"chainId", &a.ChainID},
	} {
		if *q.dst, err = obj.quantity(q.k); err != nil {
			return nil, err
		}
	}
	if a.Nonce, err = obj.uint64("nonce"); err != nil {
		return nil, err
	}
	if a.Type, err = obj.uint64("type"); err != nil {
		return nil, err
	}
	data, hasData, err := obj.bytes("data")
	if err != nil {
		return nil, err
	}
	input, hasInput, err := obj.bytes("input")
	if err != nil {
		return nil, err
	}
	if hasData && hasInput && !bytes.Equal(data, input) {
		return nil, paramErr(obj.name("input"), "both data and input given, and they differ")
	}
	if hasInput {
		a.Data = input
	} else {
		a.Data = data
	}
	if raw := obj.get("accessList"); raw != nil {
		var al types.AccessList
		if err := json.Unmarshal(raw, &al); err != nil {
			return nil, paramErr(obj.name("accessList"), "want [{address, storageKeys}]: %v", err)
		}
		a.AccessList = &al
	}
	if raw := obj.get("blobVersionedHashes"); raw != nil {
		if err := json.Unmarshal(raw, &a.BlobHashes); err != nil {
			return nil, paramErr(obj.name("blobVersionedHashes"), "want a list of 32-byte hashes: %v", err)
		}
		if a.BlobHashes == nil {
			a.BlobHashes = []common.Hash{}
		}
	}
	if raw := obj.get("blobs"); raw != nil {
		if err := json.Unmarshal(raw, &a.Blobs); err != nil {
			return nil, paramErr(obj.name("blobs"), "want a list of 131072-byte blobs: %v", err)
		}
	}
	if raw := obj.get("commitments"); raw != nil {
		if err := json.Unmarshal(raw, &a.Commitments); err != nil {
			return nil, paramErr(obj.name("commitments"), "want a list of 48-byte commitments: %v", err)
		}
	}
	if raw := obj.get("proofs"); raw != nil {
		if err := json.Unmarshal(raw, &a.Proofs); err != nil {
			return nil, paramErr(obj.name("proofs"), "want a list of 48-byte proofs: %v", err)
		}
	}
	if raw := obj.get("authorizationList"); raw != nil {
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, paramErr(obj.name("authorizationList"), "want a list of signed authorizations")
		}
		a.hasAuthList = true
		a.AuthorizationList = make([]types.SetCodeAuthorization, len(list))
		for i, item := range list {
			if err := json.Unmarshal(item, &a.AuthorizationList[i]); err != nil {
				return nil, paramErr(fmt.Sprintf("%s[%d]", obj.name("authorizationList"), i), "want {chainId, address, nonce, yParity, r, s}: %v", err)
			}
		}
	}
	return a, nil
}

// InferType returns the transaction type the arguments describe: the "type"
// member when given, else the newest type whose fields are present (as
// go-ethereum does: authorizationList, blobVersionedHashes, maxFeePerGas,
// accessList, else legacy).
func (a *TxArgs) InferType() (uint8, error) {
	if a.Type != nil {
		switch *a.Type {
		case types.LegacyTxType, types.AccessListTxType, types.DynamicFeeTxType, types.BlobTxType, types.SetCodeTxType:
			return uint8(*a.Type), nil
		}
		return 0, paramErr(a.name("type"), "unsupported transaction type %d", *a.Type)
	}
	switch {
	case a.hasAuthList:
		return types.SetCodeTxType, nil
	case a.BlobHashes != nil || a.Blobs != nil:
		return types.BlobTxType, nil
	case a.MaxFeePerGas != nil || a.MaxPriorityFeePerGas != nil:
		return types.DynamicFeeTxType, nil
	case a.AccessList != nil:
		return types.AccessListTxType, nil
	}
	return types.LegacyTxType, nil
}

// Transaction builds the unsigned transaction and the chain id it is to be
// signed for. defaultChainID (may be nil) is used when the arguments carry
// none. A missing required field or a field that does not belong to the
// type is a *ParamError naming it.
func (a *TxArgs) Transaction(defaultChainID *big.Int) (*types.Transaction, *big.Int, error) {
	typ, err := a.InferType()
	if err != nil {
		return nil, nil, err
	}
	chainID := a.ChainID
	if chainID == nil {
		chainID = defaultChainID
	}
	if chainID == nil || chainID.Sign() == 0 {
		return nil, nil, paramErr(a.name("chainId"), "missing (keyward signs only replay-protected transactions)")
	}
	// A negative amount would not survive RLP: go-ethereum's sighash drops
	// the encoding error and hashes nothing, a uint256 field wraps it, and
	// a negative chain id panics the signer. Quantity never yields one;
	// this guards callers that fill the fields themselves.
	for _, q := range []struct {
		k string
		v *big.Int
	}{
		{"chainId", chainID}, {"gasPrice", a.GasPrice}, {"maxFeePerGas", a.MaxFeePerGas},
		{"maxPriorityFeePerGas", a.MaxPriorityFeePerGas}, {"maxFeePerBlobGas", a.MaxFeePerBlobGas}, {"value", a.Value},
	} {
		if q.v != nil && q.v.Sign() < 0 {
			return nil, nil, paramErr(a.name(q.k), "negative")
		}
	}
	if a.Nonce == nil {
		return nil, nil, paramErr(a.name("nonce"), "missing")
	}
	if a.Gas == nil {
		return nil, nil, paramErr(a.name("gas"), "missing")
	}
	value := a.Value
	if value == nil {
		value = new(big.Int)
	}
	dynamic := typ >= types.DynamicFeeTxType
	if dynamic {
		if a.GasPrice != nil {
			return nil, nil, paramErr(a.name("gasPrice"), "not allowed in a type %d transaction (use maxFeePerGas)", typ)
		}
		if a.MaxFeePerGas == nil {
			return nil, nil, paramErr(a.name("maxFeePerGas"), "missing")
		}
		if a.MaxPriorityFeePerGas == nil {
			return nil, nil, paramErr(a.name("maxPriorityFeePerGas"), "missing")
		}
		if a.MaxPriorityFeePerGas.Cmp(a.MaxFeePerGas) > 0 {
			return nil, nil, paramErr(a.name("maxPriorityFeePerGas"), "above maxFeePerGas")
		}
	} else {
		if a.MaxFeePerGas != nil || a.MaxPriorityFeePerGas != nil {
			return nil, nil, paramErr(a.name("maxFeePerGas"), "not allowed in a type %d transaction", typ)
		}
		if a.GasPrice == nil {
			return nil, nil, paramErr(a.name("gasPrice"), "missing")
		}
	}
	if typ == types.LegacyTxType && a.AccessList != nil {
		return nil, nil, paramErr(a.name("accessList"), "not allowed in a legacy transaction")
	}
	if typ != types.BlobTxType && (a.BlobHashes != nil || a.Blobs != nil || a.MaxFeePerBlobGas != nil) {
		return nil, nil, paramErr(a.name("blobVersionedHashes"), "blob fields are not allowed in a type %d transaction", typ)
	}
	if typ != types.SetCodeTxType && a.hasAuthList {
		return nil, nil, paramErr(a.name("authorizationList"), "not allowed in a type %d transaction", typ)
	}
	al := types.AccessList{}
	if a.AccessList != nil {
		al = *a.AccessList
	}
	var data types.TxData
	switch typ {
	case types.LegacyTxType:
		data = &types.LegacyTx{To: a.To, Nonce: *a.Nonce, Gas: *a.Gas, GasPrice: a.GasPrice, Value: value, Data: a.Data}
	case types.AccessListTxType:
		data = &types.AccessListTx{ChainID: chainID, To: a.To, Nonce: *a.Nonce, Gas: *a.Gas, GasPrice: a.GasPrice, Value: value, Data: a.Data, AccessList: al}
	case types.DynamicFeeTxType:
		data = &types.DynamicFeeTx{ChainID: chainID, To: a.To, Nonce: *a.Nonce, Gas: *a.Gas,
			GasFeeCap: a.MaxFeePerGas, GasTipCap: a.MaxPriorityFeePerGas, Value: value, Data: a.Data, AccessList: al}
	case types.BlobTxType, types.SetCodeTxType:
		if a.To == nil {
			return nil, nil, paramErr(a.name("to"), "missing (a type %d transaction cannot create a contract)", typ)
		}
		u := map[string]*uint256.Int{}
		for k, v := range map[string]*big.Int{"chainId": chainID, "maxFeePerGas": a.MaxFeePerGas,
			"maxPriorityFeePerGas": a.MaxPriorityFeePerGas, "value": value} {
			if u[k], err = toU256(a.name(k), v); err != nil {
				return nil, nil, err
			}
		}
		if typ == types.SetCodeTxType {
			if len(a.AuthorizationList) == 0 {
				return nil, nil, paramErr(a.name("authorizationList"), "empty")
			}
			data = &types.SetCodeTx{ChainID: u["chainId"], To: *a.To, Nonce: *a.Nonce, Gas: *a.Gas,
				GasFeeCap: u["maxFeePerGas"], GasTipCap: u["maxPriorityFeePerGas"], Value: u["value"],
				Data: a.Data, AccessList: al, AuthList: a.AuthorizationList}
			break
		}
		if a.MaxFeePerBlobGas == nil {
			return nil, nil, paramErr(a.name("maxFeePerBlobGas"), "missing")
		}
		blobFee, err := toU256(a.name("maxFeePerBlobGas"), a.MaxFeePerBlobGas)
		if err != nil {
			return nil, nil, err
		}
		sidecar, hashes, err := a.sidecar()
		if err != nil {
			return nil, nil, err
		}
		if len(hashes) == 0 {
			return nil, nil, paramErr(a.name("blobVersionedHashes"), "missing")
		}
		data = &types.BlobTx{ChainID: u["chainId"], To: *a.To, Nonce: *a.Nonce, Gas: *a.Gas,
			GasFeeCap: u["maxFeePerGas"], GasTipCap: u["maxPriorityFeePerGas"], Value: u["value"],
			Data: a.Data, AccessList: al, BlobFeeCap: blobFee, BlobHashes: hashes, Sidecar: sidecar}
	}
	return types.NewTx(data), chainID, nil
}

// sidecar checks blobs, commitments and proofs when given (computing
// commitments and proofs when only blobs are given) and returns the sidecar
// and the versioned hashes.
func (a *TxArgs) sidecar() (*types.BlobTxSidecar, []common.Hash, error) {
	for i, h := range a.BlobHashes {
		if !kzg4844.IsValidVersionedHash(h[:]) {
			return nil, nil, paramErr(a.name(fmt.Sprintf("blobVersionedHashes[%d]", i)), "not a version-1 KZG hash")
		}
	}
	if a.Blobs == nil {
		if a.Commitments != nil || a.Proofs != nil {
			return nil, nil, paramErr(a.name("blobs"), "missing (commitments and proofs given)")
		}
		return nil, a.BlobHashes, nil
	}
	n := len(a.Blobs)
	commitments, proofs := a.Commitments, a.Proofs
	if (commitments == nil) != (proofs == nil) {
		return nil, nil, paramErr(a.name("proofs"), "commitments and proofs go together")
	}
	version := types.BlobSidecarVersion0
	if commitments == nil {
		commitments = make([]kzg4844.Commitment, n)
		proofs = make([]kzg4844.Proof, n)
		for i := range a.Blobs {
			c, err := kzg4844.BlobToCommitment(&a.Blobs[i])
			if err != nil {
				return nil, nil, paramErr(a.name(fmt.Sprintf("blobs[%d]", i)), "cannot commit: %v", err)
			}
			p, err := kzg4844.ComputeBlobProof(&a.Blobs[i], c)
			if err != nil {
				return nil, nil, paramErr(a.name(fmt.Sprintf("blobs[%d]", i)), "cannot prove: %v", err)
			}
			commitments[i], proofs[i] = c, p
		}
	} else {
		if len(commitments) != n {
			return nil, nil, paramErr(a.name("commitments"), "%d commitments for %d blobs", len(commitments), n)
		}
		switch len(proofs) {
		case n:
			for i := range a.Blobs {
				if err := kzg4844.VerifyBlobProof(&a.Blobs[i], commitments[i], proofs[i]); err != nil {
					return nil, nil, paramErr(a.name(fmt.Sprintf("proofs[%d]", i)), "does not verify: %v", err)
				}
			}
		case n * kzg4844.CellProofsPerBlob:
			version = types.BlobSidecarVersion1
			if err := kzg4844.VerifyCellProofs(a.Blobs, commitments, proofs); err != nil {
				return nil, nil, paramErr(a.name("proofs"), "cell proofs do not verify: %v", err)
			}
		default:
			return nil, nil, paramErr(a.name("proofs"), "%d proofs for %d blobs", len(proofs), n)
		}
	}
	hasher := sha256.New()
	hashes := make([]common.Hash, n)
	for i := range commitments {
		hashes[i] = kzg4844.CalcBlobHashV1(hasher, &commitments[i])
	}
	if a.BlobHashes != nil {
		if len(a.BlobHashes) != n {
			return nil, nil, paramErr(a.name("blobVersionedHashes"), "%d hashes for %d blobs", len(a.BlobHashes), n)
		}
		for i := range hashes {
			if hashes[i] != a.BlobHashes[i] {
				return nil, nil, paramErr(a.name(fmt.Sprintf("blobVersionedHashes[%d]", i)), "does not match the blob's commitment")
			}
		}
	}
	return types.NewBlobTxSidecar(version, a.Blobs, commitments, proofs), hashes, nil
}
