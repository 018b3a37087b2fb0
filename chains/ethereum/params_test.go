package ethereum

import (
	"encoding/json"
	"errors"
	"math/big"
	"testing"
)

func TestQuantity_RejectsSignedHex(t *testing.T) {
	for _, s := range []string{`"0x-1"`, `"0x+1"`, `"0x-0"`, `"0X-ff"`, `-1`, `"0x 1"`, `"0x1_0"`} {
		if v, err := Quantity("value", json.RawMessage(s)); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("Quantity(%s) = %v, %v; want invalid params", s, v, err)
		}
	}
}

// A negative quantity must never reach a transaction: go-ethereum's sighash
// ignores the RLP error and hashes nothing (keccak256("") for a legacy
// transaction), a uint256 field wraps it to 2^256-1, and a negative chain id
// panics in the signer.
func TestTxArgs_NegativeQuantityIsInvalidParams(t *testing.T) {
	const to = `"to":"0x000000000000000000000000000000000000dEaD","nonce":"0x0","gas":"0x5208"`
	const auth = `"authorizationList":[{"chainId":"0x1","address":"0x000000000000000000000000000000000000dEaD","nonce":"0x0","yParity":"0x0","r":"0x1","s":"0x1"}]`
	tests := []struct{ name, args string }{
		{"legacy value", `{` + to + `,"gasPrice":"0x1","chainId":"0x1","value":"0x-5"}`},
		{"legacy gasPrice", `{` + to + `,"gasPrice":"0x-1","chainId":"0x1"}`},
		{"legacy chainId", `{` + to + `,"gasPrice":"0x1","chainId":"0x-1"}`},
		{"1559 value", `{` + to + `,"maxFeePerGas":"0x2","maxPriorityFeePerGas":"0x1","chainId":"0x1","value":"0x-1"}`},
		{"1559 tip", `{` + to + `,"maxFeePerGas":"0x2","maxPriorityFeePerGas":"0x-1","chainId":"0x1"}`},
		{"1559 chainId", `{` + to + `,"maxFeePerGas":"0x2","maxPriorityFeePerGas":"0x1","chainId":"0x-1"}`},
		{"7702 value", `{` + to + `,"maxFeePerGas":"0x2","maxPriorityFeePerGas":"0x1","chainId":"0x1","value":"0x-1",` + auth + `}`},
		{"7702 chainId", `{` + to + `,"maxFeePerGas":"0x2","maxPriorityFeePerGas":"0x1","chainId":"0x-1",` + auth + `}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseTxArgs("params[0]", json.RawMessage(tc.args))
			if err == nil {
				var tx any
				tx, _, err = a.Transaction(nil)
				if err == nil {
					t.Fatalf("built %v", tx)
				}
			}
			if !errors.Is(err, ErrInvalidParams) {
				t.Fatalf("err = %v, want invalid params", err)
			}
		})
	}
}

// Transaction refuses a default chain id that is not positive rather than
// letting go-ethereum's signer panic.
func TestTxArgs_NonPositiveDefaultChainIDIsInvalidParams(t *testing.T) {
	a, err := ParseTxArgs("params[0]", json.RawMessage(`{"to":"0x000000000000000000000000000000000000dEaD","nonce":"0x0","gas":"0x5208","gasPrice":"0x1"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Transaction(big.NewInt(-1)); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("err = %v, want invalid params", err)
	}
}

// EIP-712 struct members are unique. With a repeated member the domain type
// can leave out fields the domain object carries (go-ethereum only counts
// them): the policy would check a chainId and verifyingContract the
// signature does not commit to.
func TestParseTypedData_RejectsDuplicateMemberNames(t *testing.T) {
	const dup = `{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"name","type":"string"},{"name":"name","type":"string"}],
		"M":[{"name":"a","type":"uint256"}]},
		"primaryType":"M","domain":{"name":"x","chainId":1,"verifyingContract":"0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},"message":{"a":"1"}}`
	const dupMsg = `{"types":{"EIP712Domain":[{"name":"name","type":"string"}],
		"M":[{"name":"a","type":"uint256"},{"name":"a","type":"uint256"}]},
		"primaryType":"M","domain":{"name":"x"},"message":{"a":"1"}}`
	for _, s := range []string{dup, dupMsg} {
		if _, err := ParseTypedData("params[1]", json.RawMessage(s)); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("err = %v, want invalid params", err)
		}
	}
}

// Typed data given as a JSON string holds exactly one object.
func TestParseTypedData_RejectsTrailingData(t *testing.T) {
	const one = `{"types":{"EIP712Domain":[{"name":"name","type":"string"}],"M":[{"name":"a","type":"uint256"}]},"primaryType":"M","domain":{"name":"x"},"message":{"a":"1"}}`
	if _, err := ParseTypedData("p", json.RawMessage(one)); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{one + `{}`, one + ` x`} {
		q, _ := json.Marshal(s)
		if _, err := ParseTypedData("p", q); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("%s: err = %v, want invalid params", q, err)
		}
	}
}
