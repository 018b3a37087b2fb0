package ethereum

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/holiman/uint256"
)

// PersonalHash is the EIP-191 version 0x45 hash of data:
// keccak256("\x19Ethereum Signed Message:\n" + len(data) + data).
func PersonalHash(data []byte) []byte { return accounts.TextHash(data) }

// CliqueHeaderHash checks that data is the RLP of a clique header without its
// 65-byte seal (what clique passes to account_signData with
// application/x-clique-header) and returns the seal hash to sign.
func CliqueHeaderHash(field string, data []byte) ([]byte, error) {
	var h types.Header
	if err := rlp.DecodeBytes(data, &h); err != nil {
		return nil, paramErr(field, "not an RLP block header: %v", err)
	}
	if h.WithdrawalsHash != nil || h.BlobGasUsed != nil || h.ExcessBlobGas != nil ||
		h.ParentBeaconRoot != nil || h.RequestsHash != nil || h.SlotNumber != nil {
		return nil, paramErr(field, "header has post-merge fields; not a clique header")
	}
	if h.Difficulty == nil || h.Number == nil {
		return nil, paramErr(field, "header lacks difficulty or number")
	}
	again, err := rlp.EncodeToBytes(&h)
	if err != nil || !bytes.Equal(again, data) {
		return nil, paramErr(field, "header RLP is not canonical")
	}
	return crypto.Keccak256(data), nil
}

// AuthorizationArgs is an unsigned EIP-7702 authorization: the account lets
// Address's code run as its own on ChainID (0 = every chain) at Nonce.
type AuthorizationArgs struct {
	ChainID *uint256.Int
	Address common.Address
	Nonce   uint64
}

// ParseAuthorization decodes {"chainId", "address", "nonce"}; every field is required.
func ParseAuthorization(field string, raw json.RawMessage) (*AuthorizationArgs, error) {
	obj, err := object(field, raw)
	if err != nil {
		return nil, err
	}
	var a AuthorizationArgs
	cid, err := obj.quantity("chainId")
	if err != nil {
		return nil, err
	}
	if cid == nil {
		return nil, paramErr(obj.name("chainId"), "missing")
	}
	if a.ChainID, err = toU256(obj.name("chainId"), cid); err != nil {
		return nil, err
	}
	addr, err := obj.address("address")
	if err != nil {
		return nil, err
	}
	if addr == nil {
		return nil, paramErr(obj.name("address"), "missing")
	}
	a.Address = *addr
	n, err := obj.uint64("nonce")
	if err != nil {
		return nil, err
	}
	if n == nil {
		return nil, paramErr(obj.name("nonce"), "missing")
	}
	a.Nonce = *n
	return &a, nil
}

// Unsigned returns the authorization with an empty signature.
func (a *AuthorizationArgs) Unsigned() types.SetCodeAuthorization {
	return types.SetCodeAuthorization{ChainID: *a.ChainID, Address: a.Address, Nonce: a.Nonce}
}

// AuthorizationHash is the EIP-7702 digest keccak256(0x05 || rlp([chain_id, address, nonce])).
func AuthorizationHash(a types.SetCodeAuthorization) []byte {
	h := a.SigHash()
	return h[:]
}

// WithSignature fills an authorization's yParity, r, s from a 65-byte r||s||v (v 0/1).
func WithSignature(a types.SetCodeAuthorization, sig []byte) types.SetCodeAuthorization {
	a.R.SetBytes(sig[:32])
	a.S.SetBytes(sig[32:64])
	a.V = sig[64]
	return a
}

// EthV returns sig with v moved to 27/28, the form eth_sign and personal_sign return.
func EthV(sig []byte) []byte {
	out := append([]byte(nil), sig...)
	if out[64] < 27 {
		out[64] += 27
	}
	return out
}

// SignTx attaches a 65-byte r||s||v signature to tx, signed for chainID
// (which TxDigest used; for typed transactions it is tx.ChainId()).
func SignTx(tx *types.Transaction, chainID *big.Int, sig []byte) (*types.Transaction, error) {
	signed, err := tx.WithSignature(TxSigner(chainID), sig)
	if err != nil {
		return nil, fmt.Errorf("ethereum: attach signature: %w", err)
	}
	return signed, nil
}

// TxSigner is the EIP-155 (and later) signer for chainID; it accepts every
// transaction type.
func TxSigner(chainID *big.Int) types.Signer {
	return types.LatestSignerForChainID(chainID)
}

// TxDigest is the hash the sender signs for tx on chainID.
func TxDigest(tx *types.Transaction, chainID *big.Int) []byte {
	h := TxSigner(chainID).Hash(tx)
	return h[:]
}
