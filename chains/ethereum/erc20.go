package ethereum

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
)

// ERC-20 method selectors (the first 4 bytes of the Keccak-256 of the signature).
var (
	SelectorTransfer     = [4]byte{0xa9, 0x05, 0x9c, 0xbb} // transfer(address,uint256)
	SelectorTransferFrom = [4]byte{0x23, 0xb8, 0x72, 0xdd} // transferFrom(address,address,uint256)
	SelectorApprove      = [4]byte{0x09, 0x5e, 0xa7, 0xb3} // approve(address,uint256)
)

// Errors of DecodeERC20. Check with errors.Is.
var (
	// ErrERC20Method: the call data is not a transfer, transferFrom or
	// approve call (another selector, or fewer than 4 bytes).
	ErrERC20Method = errors.New("not an ERC-20 transfer, transferFrom or approve call")
	// ErrERC20Encoding: the selector is one of them but the arguments are
	// not their exact ABI encoding (wrong length, trailing bytes, an address
	// word with non-zero padding).
	ErrERC20Encoding = errors.New("malformed ERC-20 call data")
)

// ERC20Call is a decoded ERC-20 transfer, transferFrom or approve.
type ERC20Call struct {
	Method string          // "transfer", "transferFrom" or "approve"
	From   *common.Address // transferFrom: the owner the tokens move from; nil otherwise
	To     common.Address  // the recipient (transfer, transferFrom) or the spender (approve)
	Amount *big.Int        // in the token's smallest unit, 0 ≤ Amount ≤ 2²⁵⁶−1
}

// DecodeERC20 decodes call data sent to an ERC-20 token. Only the exact
// standard ABI encodings are accepted: 4 + 32 × n bytes, each address
// left-padded with zeros. Anything else fails with an error wrapping
// ErrERC20Method or ErrERC20Encoding; nothing is guessed.
func DecodeERC20(data []byte) (*ERC20Call, error) {
	if len(data) < 4 {
		return nil, fmt.Errorf("%w: %d bytes of call data", ErrERC20Method, len(data))
	}
	var c ERC20Call
	var words int
	switch sel := [4]byte(data[:4]); sel {
	case SelectorTransfer:
		c.Method, words = "transfer", 2
	case SelectorTransferFrom:
		c.Method, words = "transferFrom", 3
	case SelectorApprove:
		c.Method, words = "approve", 2
	default:
		return nil, fmt.Errorf("%w: selector 0x%x", ErrERC20Method, sel)
	}
	args := data[4:]
	if len(args) != 32*words {
		return nil, fmt.Errorf("%w: %s takes %d bytes of arguments, got %d", ErrERC20Encoding, c.Method, 32*words, len(args))
	}
	for i := 0; i < words-1; i++ {
		w := args[32*i : 32*(i+1)]
		for _, b := range w[:12] {
			if b != 0 {
				return nil, fmt.Errorf("%w: %s argument %d is not an address (non-zero padding)", ErrERC20Encoding, c.Method, i)
			}
		}
		a := common.BytesToAddress(w[12:])
		if words == 3 && i == 0 {
			c.From = &a
		} else {
			c.To = a
		}
	}
	c.Amount = new(big.Int).SetBytes(args[32*(words-1):])
	return &c, nil
}
