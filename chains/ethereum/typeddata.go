package ethereum

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

// Limits on EIP-712 typed data, checked by ParseTypedData before anything
// is hashed; each is refused as invalid params naming it
// ("typed_data.max_depth"). Real dApps (Permit, Permit2 batches, Seaport
// orders, Safe transactions) stay far below them.
const (
	MaxTypedDataBytes    = 512 << 10 // the typed data's JSON
	MaxTypedDataTypes    = 256       // entries of types, EIP712Domain included
	MaxTypedDataMembers  = 256       // members of one type
	MaxTypedDataDepth    = 64        // nesting of structs and arrays in the message, the message itself counting 1
	MaxTypedDataArrayLen = 8192      // elements of one array
	MaxTypedDataValues   = 1 << 16   // struct members and array elements in the message, each one 32-byte word of the encoding
	MaxTypedDataIntLen   = 100       // characters of an integer (the domain's chainId, int and uint values): 0x and 64 hex digits, or 78 decimal digits, fit
	MaxTypedDataTypeHash = 1 << 20   // bytes of the type strings (encodeType) hashed, over every struct type of the domain and message
)

// ParseTypedData decodes EIP-712 typed data given either as a JSON object or
// as a JSON string holding the object (eth_signTypedData_v4 clients send
// both), checks its types as go-ethereum does and its size against the
// MaxTypedData limits.
func ParseTypedData(field string, raw json.RawMessage) (*apitypes.TypedData, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, paramErr(field, "missing typed data")
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, paramErr(field, "not a JSON string: %v", err)
		}
		raw = []byte(s)
	}
	if len(raw) > MaxTypedDataBytes {
		return nil, paramErr(field, "%d bytes, above the limit typed_data.max_bytes = %d", len(raw), MaxTypedDataBytes)
	}
	// Decoded as apitypes.TypedData would be, but for the domain's chainId,
	// which go-ethereum parses in time quadratic in its length (every
	// occurrence of a repeated key): its length is checked first.
	var wire struct {
		Types       apitypes.Types `json:"types"`
		PrimaryType string         `json:"primaryType"`
		Domain      struct {
			Name              string          `json:"name"`
			Version           string          `json:"version"`
			ChainID           json.RawMessage `json:"chainId"`
			VerifyingContract string          `json:"verifyingContract"`
			Salt              string          `json:"salt"`
		} `json:"domain"`
		Message apitypes.TypedDataMessage `json:"message"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&wire); err != nil {
		return nil, paramErr(field, "not EIP-712 typed data: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, paramErr(field, "trailing data after the typed data")
	}
	d := wire.Domain
	td := apitypes.TypedData{Types: wire.Types, PrimaryType: wire.PrimaryType, Message: wire.Message,
		Domain: apitypes.TypedDataDomain{Name: d.Name, Version: d.Version, VerifyingContract: d.VerifyingContract, Salt: d.Salt}}
	if len(d.ChainID) > MaxTypedDataIntLen {
		return nil, paramErr(field+".domain.chainId", "%d characters, above the limit typed_data.max_int_length = %d", len(d.ChainID), MaxTypedDataIntLen)
	}
	if len(d.ChainID) > 0 && !bytes.Equal(d.ChainID, []byte("null")) {
		td.Domain.ChainId = new(math.HexOrDecimal256)
		if err := json.Unmarshal(d.ChainID, td.Domain.ChainId); err != nil {
			return nil, paramErr(field+".domain.chainId", "%v", err)
		}
	}
	if len(td.Types) > MaxTypedDataTypes {
		return nil, paramErr(field+".types", "%d types, above the limit typed_data.max_types = %d", len(td.Types), MaxTypedDataTypes)
	}
	// Member names are unique: go-ethereum only counts a struct's members
	// against the data, so a repeated member would let the domain type leave
	// out a chainId or verifyingContract the policy checks.
	for name, members := range td.Types {
		if len(members) > MaxTypedDataMembers {
			return nil, paramErr(field+".types", "%s has %d members, above the limit typed_data.max_members = %d", truncate(name), len(members), MaxTypedDataMembers)
		}
		seen := make(map[string]bool, len(members))
		for _, m := range members {
			if seen[m.Name] {
				return nil, paramErr(field+".types", "%s declares member %q twice", truncate(name), truncate(m.Name))
			}
			seen[m.Name] = true
		}
	}
	if _, ok := td.Types["EIP712Domain"]; !ok {
		return nil, paramErr(field+".types", "no EIP712Domain type")
	}
	if err := validateTypes(td.Types); err != nil {
		return nil, paramErr(field+".types", "%v", err)
	}
	if td.PrimaryType == "" {
		return nil, paramErr(field+".primaryType", "missing")
	}
	if _, ok := td.Types[td.PrimaryType]; !ok {
		return nil, paramErr(field+".primaryType", "type %q is not defined", td.PrimaryType)
	}
	if td.Message == nil {
		return nil, paramErr(field+".message", "missing")
	}
	w := &workLimit{types: td.Types, structs: map[string]bool{"EIP712Domain": true}}
	if err := w.walkStruct(td.PrimaryType, td.Message, 1); err != nil {
		return nil, paramErr(field+".message", "%v", err)
	}
	if err := w.typeStrings(); err != nil {
		return nil, paramErr(field+".types", "%v", err)
	}
	// Numbers stay exact: go-ethereum's encoder reads decimal strings
	// exactly but JSON numbers as float64.
	td.Message = numbersToStrings(map[string]any(td.Message)).(map[string]any)
	return &td, nil
}

// validateTypes runs go-ethereum's own check of the types (every member
// named and typed, references defined, no type holding itself), which it
// exports only inside EncodeData: with a domain that passes and an
// undefined type, EncodeData does nothing else.
func validateTypes(types apitypes.Types) error {
	probe := apitypes.TypedData{Types: types, Domain: apitypes.TypedDataDomain{Name: "probe"}}
	_, err := probe.EncodeData("", map[string]any{}, 1)
	return err
}

// workLimit walks a message along its types, as the encoder will, counting
// depth, array lengths and values against the limits, and checking the
// length of integers (which go-ethereum parses in quadratic time).
type workLimit struct {
	types   apitypes.Types
	values  int
	structs map[string]bool // struct types the encoder will hash
}

func (w *workLimit) walkStruct(typ string, data map[string]any, depth int) error {
	if depth > MaxTypedDataDepth {
		return fmt.Errorf("nested deeper than the limit typed_data.max_depth = %d", MaxTypedDataDepth)
	}
	w.structs[typ] = true
	for _, m := range w.types[typ] {
		if err := w.count(); err != nil {
			return err
		}
		switch v := data[m.Name]; {
		case strings.HasSuffix(m.Type, "]"):
			base, _, _ := strings.Cut(m.Type, "[")
			if err := w.walkArray(base, v, depth+1); err != nil {
				return err
			}
		case w.types[m.Type] != nil:
			if sub, ok := v.(map[string]any); ok {
				if err := w.walkStruct(m.Type, sub, depth+1); err != nil {
					return err
				}
			}
		default:
			if err := checkInt(m.Type, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// typeStrings adds up the length of the type strings the encoder will hash
// (one per struct type of the data, each holding the types it references),
// stopping at the limit: the work is bounded by the limit, not by the
// number of types times their references.
func (w *workLimit) typeStrings() error {
	total := 0
	for typ := range w.structs {
		seen := map[string]bool{}
		var visit func(string) bool
		visit = func(name string) bool {
			name, _, _ = strings.Cut(name, "[")
			if seen[name] || w.types[name] == nil {
				return true
			}
			seen[name] = true
			total += len(name) + 2
			for _, m := range w.types[name] {
				if total += len(m.Type) + len(m.Name) + 2; total > MaxTypedDataTypeHash {
					return false
				}
				if !visit(m.Type) {
					return false
				}
			}
			return total <= MaxTypedDataTypeHash
		}
		if !visit(typ) {
			return fmt.Errorf("type strings of more than the limit typed_data.max_type_hash_bytes = %d bytes to hash", MaxTypedDataTypeHash)
		}
	}
	return nil
}

// checkInt refuses an overlong value of an int or uint type.
func checkInt(typ string, v any) error {
	if !strings.HasPrefix(typ, "int") && !strings.HasPrefix(typ, "uint") {
		return nil
	}
	var n int
	switch x := v.(type) {
	case string:
		n = len(x)
	case json.Number:
		n = len(x)
	}
	if n > MaxTypedDataIntLen {
		return fmt.Errorf("a %s of %d characters, above the limit typed_data.max_int_length = %d", truncate(typ), n, MaxTypedDataIntLen)
	}
	return nil
}

func (w *workLimit) walkArray(base string, v any, depth int) error {
	if depth > MaxTypedDataDepth {
		return fmt.Errorf("nested deeper than the limit typed_data.max_depth = %d", MaxTypedDataDepth)
	}
	items, _ := v.([]any)
	if len(items) > MaxTypedDataArrayLen {
		return fmt.Errorf("an array of %d elements, above the limit typed_data.max_array_length = %d", len(items), MaxTypedDataArrayLen)
	}
	for _, item := range items {
		if err := w.count(); err != nil {
			return err
		}
		var err error
		switch x := item.(type) {
		case []any:
			err = w.walkArray(base, x, depth+1)
		case map[string]any:
			if w.types[base] != nil {
				err = w.walkStruct(base, x, depth+1)
			}
		default:
			if w.types[base] == nil {
				err = checkInt(base, x)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *workLimit) count() error {
	if w.values++; w.values > MaxTypedDataValues {
		return fmt.Errorf("more than the limit typed_data.max_values = %d values", MaxTypedDataValues)
	}
	return nil
}

func numbersToStrings(v any) any {
	switch x := v.(type) {
	case json.Number:
		return x.String()
	case map[string]any:
		for k, e := range x {
			x[k] = numbersToStrings(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = numbersToStrings(e)
		}
		return x
	}
	return v
}

// TypedDataHash is the EIP-712 digest keccak256(0x19 0x01
// domainSeparator hashStruct(message)) of typed data from ParseTypedData.
// Every domain field is optional, so an empty domain (EIP712Domain with no
// members) is hashed, as ethers, viem and eth-sig-util do: go-ethereum
// refuses it as "domain is undefined". Such a signature is valid on every
// chain; the policy refuses it by ethereum.chain_ids when that is set.
func TypedDataHash(field string, td *apitypes.TypedData) (digest []byte, err error) {
	defer func() {
		// go-ethereum's primitive encoder panics on some malformed
		// inputs; they are the client's mistake, not ours.
		if r := recover(); r != nil {
			digest, err = nil, paramErr(field, "cannot encode typed data: %v", r)
		}
	}()
	e := &typedEncoder{td: td, typeHash: map[string][]byte{}}
	domain, err := e.hashStruct("EIP712Domain", td.Domain.Map())
	if err != nil {
		return nil, paramErr(field+".domain", "cannot encode typed data: %v", err)
	}
	msg, err := e.hashStruct(td.PrimaryType, td.Message)
	if err != nil {
		return nil, paramErr(field+".message", "cannot encode typed data: %v", err)
	}
	return crypto.Keccak256([]byte{0x19, 0x01}, domain, msg), nil
}

// typedEncoder is EIP-712's hashStruct as go-ethereum's apitypes encodes it
// (the same members, values and errors, FuzzTypedDataHash_MatchesGoEthereum,
// but for the empty domain),
// with go-ethereum's encoder of primitive values, but each type's hash
// computed once: go-ethereum recomputes a type's dependencies and checks
// every type again at every struct of the message, about n⁴ for n nested
// types. Here the work is linear in the size of the typed data.
type typedEncoder struct {
	td       *apitypes.TypedData
	typeHash map[string][]byte
}

func (e *typedEncoder) hashStruct(typ string, data map[string]any) ([]byte, error) {
	members := e.td.Types[typ]
	if len(members) < len(data) {
		return nil, fmt.Errorf("there is extra data provided in the message (%d < %d)", len(members), len(data))
	}
	enc := make([]byte, 0, 32*(1+len(members)))
	enc = append(enc, e.typeHashOf(typ)...)
	for _, m := range members {
		v := data[m.Name]
		var word []byte
		var err error
		switch {
		case strings.HasSuffix(m.Type, "]"):
			word, err = e.encodeArray(m.Type, v)
		case e.td.Types[m.Type] != nil:
			sub, ok := v.(map[string]any)
			if !ok {
				return nil, mismatch(m.Type)
			}
			word, err = e.hashStruct(m.Type, sub)
		default:
			word, err = e.td.EncodePrimitiveValue(m.Type, v, 1)
		}
		if err != nil {
			return nil, err
		}
		enc = append(enc, word...)
	}
	return crypto.Keccak256(enc), nil
}

// encodeArray encodes an array member as go-ethereum does: the element type
// is the name before the first "[", nested arrays are encoded the same way
// whatever dimensions the type declares.
func (e *typedEncoder) encodeArray(typ string, v any) ([]byte, error) {
	items, ok := v.([]any)
	if !ok {
		return nil, mismatch(typ)
	}
	base, _, _ := strings.Cut(typ, "[")
	enc := make([]byte, 0, 32*len(items))
	for _, item := range items {
		var word []byte
		var err error
		switch x := item.(type) {
		case nil:
			return nil, mismatch(base)
		case []any:
			word, err = e.encodeArray(base, x)
		default:
			if e.td.Types[base] != nil {
				sub, ok := x.(map[string]any)
				if !ok {
					return nil, mismatch(base)
				}
				word, err = e.hashStruct(base, sub)
			} else {
				word, err = e.td.EncodePrimitiveValue(base, x, 1)
			}
		}
		if err != nil {
			return nil, err
		}
		enc = append(enc, word...)
	}
	return crypto.Keccak256(enc), nil
}

// typeHashOf is keccak256 of EIP-712's encodeType: the type, then the
// struct types it references (transitively) in alphabetical order, each as
// Name(type1 name1,type2 name2).
func (e *typedEncoder) typeHashOf(typ string) []byte {
	if h, ok := e.typeHash[typ]; ok {
		return h
	}
	deps := map[string]bool{}
	var visit func(string)
	visit = func(name string) {
		name, _, _ = strings.Cut(name, "[")
		if deps[name] || e.td.Types[name] == nil {
			return
		}
		deps[name] = true
		for _, m := range e.td.Types[name] {
			visit(m.Type)
		}
	}
	visit(typ)
	var order []string
	if deps[typ] {
		delete(deps, typ)
		order = append(order, typ)
	}
	rest := make([]string, 0, len(deps))
	for d := range deps {
		rest = append(rest, d)
	}
	sort.Strings(rest)
	var b strings.Builder
	for _, name := range append(order, rest...) {
		b.WriteString(name + "(")
		for i, m := range e.td.Types[name] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(m.Type + " " + m.Name)
		}
		b.WriteByte(')')
	}
	h := crypto.Keccak256([]byte(b.String()))
	e.typeHash[typ] = h
	return h
}

func mismatch(typ string) error {
	return fmt.Errorf("provided data doesn't match type '%s'", truncate(typ))
}
