package ethereum

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/keyward/keyward/internal/testutil"
)

// ethersCall is one call encoded by test/ethjs/erc20.mjs.
type ethersCall struct {
	Name, Method, From, To, Amount string
	Data                           hexutil.Bytes
}

func ethersERC20Calls(t *testing.T) []ethersCall {
	t.Helper()
	var calls []ethersCall
	if err := json.Unmarshal(testutil.NodeScript(t, "ethjs", "ethers", "erc20.mjs"), &calls); err != nil {
		t.Fatal(err)
	}
	return calls
}

// Call data encoded by ethers' Interface.encodeFunctionData decodes to the
// arguments it was encoded from; the other methods of a token (and permit)
// are not ERC-20 transfers.
func TestDecodeERC20_EthersEncodedCalls(t *testing.T) {
	decoded := 0
	for _, c := range ethersERC20Calls(t) {
		t.Run(c.Name, func(t *testing.T) {
			got, err := DecodeERC20(c.Data)
			if c.Amount == "" {
				if !errors.Is(err, ErrERC20Method) || got != nil {
					t.Fatalf("%s: %+v, %v; want ErrERC20Method", c.Method, got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			decoded++
			if got.Method != c.Method || got.To != common.HexToAddress(c.To) || got.Amount.String() != c.Amount {
				t.Fatalf("decoded %s to %s amount %s; ethers encoded %s to %s amount %s", got.Method, got.To.Hex(), got.Amount, c.Method, c.To, c.Amount)
			}
			if (c.From == "") != (got.From == nil) || got.From != nil && *got.From != common.HexToAddress(c.From) {
				t.Fatalf("from %v, want %q", got.From, c.From)
			}
		})
	}
	if decoded < 8 {
		t.Fatalf("only %d calls decoded", decoded)
	}
}

func word(b ...byte) []byte { return append(make([]byte, 32-len(b)), b...) }

func call(sel [4]byte, words ...[]byte) []byte {
	return append(sel[:], bytes.Join(words, nil)...)
}

// Only the exact ABI encodings decode: a short, long or dirty-padded
// argument is refused, never read as something else.
func TestDecodeERC20_RefusesNonStandardEncodings(t *testing.T) {
	addr := word(0xde, 0xad)
	dirty := append([]byte{1}, addr[1:]...)
	for name, tc := range map[string]struct {
		data []byte
		want error
	}{
		"empty":                   {nil, ErrERC20Method},
		"three bytes":             {[]byte{0xa9, 0x05, 0x9c}, ErrERC20Method},
		"other selector":          {call([4]byte{0x70, 0xa0, 0x82, 0x31}, addr), ErrERC20Method},
		"selector only":           {SelectorTransfer[:], ErrERC20Encoding},
		"one word short":          {call(SelectorTransfer, addr), ErrERC20Encoding},
		"truncated amount":        {call(SelectorTransfer, addr, word(1))[:67], ErrERC20Encoding},
		"trailing byte":           {append(call(SelectorTransfer, addr, word(1)), 0), ErrERC20Encoding},
		"trailing word":           {call(SelectorApprove, addr, word(1), word(0)), ErrERC20Encoding},
		"dirty recipient":         {call(SelectorTransfer, dirty, word(1)), ErrERC20Encoding},
		"dirty transferFrom from": {call(SelectorTransferFrom, dirty, addr, word(1)), ErrERC20Encoding},
		"dirty transferFrom to":   {call(SelectorTransferFrom, addr, dirty, word(1)), ErrERC20Encoding},
		"transferFrom two words":  {call(SelectorTransferFrom, addr, word(1)), ErrERC20Encoding},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := DecodeERC20(tc.data)
			if !errors.Is(err, tc.want) || c != nil {
				t.Fatalf("%+v, %v; want %v", c, err, tc.want)
			}
		})
	}
	max := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	c, err := DecodeERC20(call(SelectorApprove, addr, bytes.Repeat([]byte{0xff}, 32)))
	if err != nil || c.Amount.Cmp(max) != 0 || c.Method != "approve" {
		t.Fatalf("unlimited approve: %+v, %v", c, err)
	}
}

func FuzzDecodeERC20(f *testing.F) {
	addr := word(0xde, 0xad)
	f.Add(call(SelectorTransfer, addr, word(1)))
	f.Add(call(SelectorTransferFrom, addr, addr, word(0xff, 0xff)))
	f.Add(call(SelectorApprove, addr, bytes.Repeat([]byte{0xff}, 32)))
	f.Add(call(SelectorApprove, addr))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeERC20(data)
		if err != nil {
			if c != nil || !errors.Is(err, ErrERC20Method) && !errors.Is(err, ErrERC20Encoding) {
				t.Fatalf("%+v, %v", c, err)
			}
			return
		}
		if c.Amount == nil || c.Amount.Sign() < 0 || c.Amount.BitLen() > 256 {
			t.Fatalf("amount %v", c.Amount)
		}
		// A decoded call is its own canonical encoding.
		words := [][]byte{common.LeftPadBytes(c.To[:], 32), common.LeftPadBytes(c.Amount.Bytes(), 32)}
		sel := SelectorTransfer
		switch c.Method {
		case "transferFrom":
			sel = SelectorTransferFrom
			words = append([][]byte{common.LeftPadBytes(c.From[:], 32)}, words...)
		case "approve":
			sel = SelectorApprove
		}
		if !bytes.Equal(call(sel, words...), data) {
			t.Fatalf("%+v does not re-encode to %x", c, data)
		}
	})
}
