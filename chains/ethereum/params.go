package ethereum

import (
	"bytes"
	"encoding/json"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/holiman/uint256"
)

// Param decoders. Each error is a *ParamError naming the field.

// fields is a JSON object whose members are decoded one by one, so that an
// error names the member.
type fields struct {
	prefix string
	m      map[string]json.RawMessage
}

func object(field string, raw json.RawMessage) (*fields, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, paramErr(field, "want a JSON object")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, paramErr(field, "not a JSON object: %v", err)
	}
	return &fields{prefix: field, m: m}, nil
}

func (f *fields) name(k string) string {
	if f.prefix == "" {
		return k
	}
	return f.prefix + "." + k
}

// get returns the raw member, or nil when absent or null.
func (f *fields) get(k string) json.RawMessage {
	v, ok := f.m[k]
	if !ok || isNull(v) {
		return nil
	}
	return v
}

func (f *fields) has(k string) bool { return f.get(k) != nil }

func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

func (f *fields) quantity(k string) (*big.Int, error) {
	raw := f.get(k)
	if raw == nil {
		return nil, nil
	}
	return Quantity(f.name(k), raw)
}

func (f *fields) uint64(k string) (*uint64, error) {
	q, err := f.quantity(k)
	if err != nil || q == nil {
		return nil, err
	}
	if !q.IsUint64() {
		return nil, paramErr(f.name(k), "does not fit in 64 bits")
	}
	v := q.Uint64()
	return &v, nil
}

func (f *fields) address(k string) (*common.Address, error) {
	raw := f.get(k)
	if raw == nil {
		return nil, nil
	}
	a, err := Address20(f.name(k), raw)
	if err != nil {
		return nil, err
	}
	return &a, nil
}

func (f *fields) bytes(k string) ([]byte, bool, error) {
	raw := f.get(k)
	if raw == nil {
		return nil, false, nil
	}
	b, err := HexBytes(f.name(k), raw)
	return b, true, err
}

// Quantity decodes a non-negative integer of at most 256 bits given as a
// 0x-prefixed hex string or a JSON integer.
func Quantity(field string, raw json.RawMessage) (*big.Int, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, paramErr(field, "missing")
	}
	var v *big.Int
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, paramErr(field, "bad string: %v", err)
		}
		if !strings.HasPrefix(s, "0x") && !strings.HasPrefix(s, "0X") {
			return nil, paramErr(field, "hex quantity must start with 0x")
		}
		digits := s[2:]
		if digits == "" {
			return nil, paramErr(field, "empty hex quantity")
		}
		for i := 0; i < len(digits); i++ {
			if c := digits[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return nil, paramErr(field, "invalid hex quantity %q", truncate(s))
			}
		}
		if len(strings.TrimLeft(digits, "0")) > 64 {
			return nil, paramErr(field, "larger than 256 bits")
		}
		var ok bool
		if v, ok = new(big.Int).SetString(digits, 16); !ok {
			return nil, paramErr(field, "invalid hex quantity %q", truncate(s))
		}
		return v, nil
	}
	if raw[0] == '-' || (raw[0] < '0' || raw[0] > '9') {
		return nil, paramErr(field, "want a hex string or a non-negative integer")
	}
	if len(raw) > 80 {
		return nil, paramErr(field, "larger than 256 bits")
	}
	v, ok := new(big.Int).SetString(string(raw), 10)
	if !ok {
		return nil, paramErr(field, "want an integer, got %s", truncate(string(raw)))
	}
	if v.BitLen() > 256 {
		return nil, paramErr(field, "larger than 256 bits")
	}
	return v, nil
}

// HexBytes decodes a 0x-prefixed hex string of even length ("0x" is empty).
func HexBytes(field string, raw json.RawMessage) ([]byte, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, paramErr(field, "want a 0x-prefixed hex string")
	}
	b, err := hexutil.Decode(s)
	if err != nil {
		if s == "0x" {
			return []byte{}, nil
		}
		return nil, paramErr(field, "bad hex: %v", err)
	}
	return b, nil
}

// Address20 decodes a 20-byte hex address (any case; a mixed-case address
// must carry a valid EIP-55 checksum).
func Address20(field string, raw json.RawMessage) (common.Address, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return common.Address{}, paramErr(field, "want an address string")
	}
	return ParseAddress(field, s)
}

// ParseAddress decodes a 0x-prefixed 20-byte address. An address in mixed
// case must be a valid EIP-55 checksum.
func ParseAddress(field, s string) (common.Address, error) {
	if len(s) != 42 || !(strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X")) {
		return common.Address{}, paramErr(field, "want a 0x-prefixed 20-byte address")
	}
	b, err := hexutil.Decode("0x" + s[2:])
	if err != nil {
		return common.Address{}, paramErr(field, "bad hex address: %v", err)
	}
	a := common.BytesToAddress(b)
	body := s[2:]
	if body != strings.ToLower(body) && body != strings.ToUpper(body) && a.Hex()[2:] != body {
		return common.Address{}, paramErr(field, "EIP-55 checksum mismatch")
	}
	return a, nil
}

func toU256(field string, v *big.Int) (*uint256.Int, error) {
	if v.Sign() < 0 {
		return nil, paramErr(field, "negative")
	}
	u, overflow := uint256.FromBig(v)
	if overflow {
		return nil, paramErr(field, "larger than 256 bits")
	}
	return u, nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
