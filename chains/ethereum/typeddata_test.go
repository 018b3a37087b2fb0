package ethereum

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

// nestedTypedData is the shape of finding 5 of issue 11: a chain of n
// struct types, each holding the next, and a message nested n deep. Its
// last type also carries a string of pad bytes.
func nestedTypedData(n, pad int) []byte {
	types := map[string][]apitypes.Type{"EIP712Domain": {{Name: "name", Type: "string"}}}
	for i := 0; i < n-1; i++ {
		types[fmt.Sprintf("T%d", i)] = []apitypes.Type{{Name: "a", Type: fmt.Sprintf("T%d", i+1)}}
	}
	types[fmt.Sprintf("T%d", n-1)] = []apitypes.Type{{Name: "x", Type: "uint8"}, {Name: "s", Type: "string"}}
	msg := map[string]any{"x": "1", "s": strings.Repeat("a", pad)}
	for i := n - 2; i >= 0; i-- {
		msg = map[string]any{"a": msg}
	}
	b, err := json.Marshal(map[string]any{"types": types, "primaryType": "T0", "domain": map[string]any{"name": "x"}, "message": msg})
	if err != nil {
		panic(err)
	}
	return b
}

// arrayTypedData has one member per entry of lens, each an array of that
// many uint8, and dims nested array dimensions.
func arrayTypedData(dims int, lens ...int) []byte {
	var fields []apitypes.Type
	msg := map[string]any{}
	for i, n := range lens {
		name := fmt.Sprintf("a%d", i)
		fields = append(fields, apitypes.Type{Name: name, Type: "uint8" + strings.Repeat("[]", dims)})
		var v any = make([]any, n)
		for j := range n {
			v.([]any)[j] = "7"
		}
		for d := 1; d < dims; d++ {
			v = []any{v}
		}
		msg[name] = v
	}
	b, _ := json.Marshal(map[string]any{"types": map[string]any{"EIP712Domain": []apitypes.Type{{Name: "name", Type: "string"}}, "M": fields},
		"primaryType": "M", "domain": map[string]any{"name": "x"}, "message": msg})
	return b
}

func manyTypes(n, fields int) []byte {
	types := map[string][]apitypes.Type{"EIP712Domain": {{Name: "name", Type: "string"}}}
	for i := range n {
		var fs []apitypes.Type
		for j := range fields {
			fs = append(fs, apitypes.Type{Name: fmt.Sprintf("f%d", j), Type: "uint8"})
		}
		types[fmt.Sprintf("T%d", i)] = fs
	}
	msg := map[string]any{}
	for j := range fields {
		msg[fmt.Sprintf("f%d", j)] = "1"
	}
	b, _ := json.Marshal(map[string]any{"types": types, "primaryType": "T0", "domain": map[string]any{"name": "x"}, "message": msg})
	return b
}

// Finding 5 of issue 11: typed data of n nested struct types cost about n⁴
// in go-ethereum's encoder (n=300, a 15 KB body: 2.2 s). The work is bounded
// before anything is hashed; each bound is refused as invalid params naming
// it. BenchmarkTypedDataHash_WorstWithinLimits measures what stays allowed.
func TestParseTypedData_RefusesWorkBeyondTheLimits(t *testing.T) {
	for _, tc := range []struct {
		name  string
		data  []byte
		limit string
	}{
		{"300 nested types (the finding)", nestedTypedData(300, 0), "typed_data.max_types"},
		{"nested too deep", nestedTypedData(MaxTypedDataDepth+1, 0), "typed_data.max_depth"},
		{"1 MiB of nesting", nestedTypedData(1<<20/40, 0), "typed_data.max_bytes"},
		{"1 MiB string", nestedTypedData(2, 1<<20), "typed_data.max_bytes"},
		{"too many types", manyTypes(MaxTypedDataTypes, 1), "typed_data.max_types"},
		{"too many members", manyTypes(1, MaxTypedDataMembers+1), "typed_data.max_members"},
		{"array too long", arrayTypedData(1, MaxTypedDataArrayLen+1), "typed_data.max_array_length"},
		{"arrays too deep", arrayTypedData(MaxTypedDataDepth, 1), "typed_data.max_depth"},
		{"too many values", arrayTypedData(1, 8192, 8192, 8192, 8192, 8192, 8192, 8192, 8192), "typed_data.max_values"},
		{"type strings", wideSharedTail(MaxTypedDataTypes-6, 4, 100<<10), "typed_data.max_type_hash_bytes"},
		{"500 KB integer", []byte(`{"types":{"EIP712Domain":[{"name":"name","type":"string"}],"M":[{"name":"a","type":"uint256"}]},"primaryType":"M","domain":{"name":"x"},"message":{"a":"` + strings.Repeat("1", 500_000) + `"}}`), "typed_data.max_int_length"},
		{"500 KB integer in an array", []byte(`{"types":{"EIP712Domain":[{"name":"name","type":"string"}],"M":[{"name":"a","type":"int8[]"}]},"primaryType":"M","domain":{"name":"x"},"message":{"a":[` + strings.Repeat("1", 500_000) + `]}}`), "typed_data.max_int_length"},
		{"500 KB chainId", []byte(`{"types":{"EIP712Domain":[{"name":"chainId","type":"uint256"}],"M":[]},"primaryType":"M","domain":{"chainId":` + strings.Repeat("1", 500_000) + `},"message":{}}`), "typed_data.max_int_length"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			td, err := ParseTypedData("params[1]", tc.data)
			var pe *ParamError
			if !errors.As(err, &pe) || !strings.Contains(pe.Reason, tc.limit) {
				if err == nil {
					_, err = TypedDataHash("params[1]", td)
				}
				t.Fatalf("%d bytes: err = %v, want a refusal naming %s", len(tc.data), err, tc.limit)
			}
		})
	}
	// Just within the limits, the same shapes are hashed.
	for name, data := range map[string][]byte{
		"nested to the depth limit": nestedTypedData(MaxTypedDataDepth, 0),
		"types limit":               manyTypes(MaxTypedDataTypes-1, 8),
		"members limit":             manyTypes(1, MaxTypedDataMembers),
		"array length limit":        arrayTypedData(1, MaxTypedDataArrayLen),
		"array depth limit":         arrayTypedData(MaxTypedDataDepth-1, 2),
		"values limit":              arrayTypedData(1, 8192, 8192, 8192, 8192, 8192, 8192, 8192, 8192-8),
		"type strings at the limit": wideSharedTail(MaxTypedDataTypes-3, 1, (MaxTypedDataTypeHash-64<<10)/MaxTypedDataTypes),
		"integers at the length limit": []byte(`{"types":{"EIP712Domain":[{"name":"chainId","type":"uint256"}],"M":[{"name":"a","type":"uint256"},{"name":"b","type":"int256[]"}]},"primaryType":"M",
			"domain":{"chainId":"0x` + strings.Repeat("0", MaxTypedDataIntLen-5) + `1"},"message":{"a":"` + strings.Repeat("0", MaxTypedDataIntLen-1) + `1","b":[-1` + strings.Repeat("0", 76) + `]}}`),
	} {
		td, err := ParseTypedData("p", data)
		if err == nil {
			_, err = TypedDataHash("p", td)
		}
		if err != nil {
			t.Errorf("%s (%d bytes): %v", name, len(data), err)
		}
	}
}

// sharedTailTypedData nests n struct types as nestedTypedData does, and each
// of them also references, through an empty array, a type whose one member
// has a name of pad bytes: every type's encodeType holds that name.
func sharedTailTypedData(n, pad int) []byte {
	var td map[string]any
	_ = json.Unmarshal(nestedTypedData(n, 0), &td)
	types := td["types"].(map[string]any)
	for name, members := range types {
		if name != "EIP712Domain" {
			types[name] = append(members.([]any), map[string]any{"name": "z", "type": "Big[]"})
		}
	}
	types["Big"] = []any{map[string]any{"name": strings.Repeat("b", pad), "type": "uint8"}}
	msg := td["message"].(map[string]any)
	for msg != nil {
		msg["z"] = []any{}
		msg, _ = msg["a"].(map[string]any)
	}
	b, _ := json.Marshal(td)
	return b
}

// wideSharedTail has n struct types in the message side by side, each
// referencing (through empty arrays) the same bigs types, each with one
// member whose name is pad bytes long.
func wideSharedTail(n, bigs, pad int) []byte {
	types := map[string][]apitypes.Type{"EIP712Domain": {{Name: "name", Type: "string"}}}
	var top []apitypes.Type
	msg := map[string]any{}
	for i := range n {
		name := fmt.Sprintf("T%d", i)
		var ms []apitypes.Type
		for j := range bigs {
			ms = append(ms, apitypes.Type{Name: fmt.Sprintf("z%d", j), Type: fmt.Sprintf("Big%d[]", j)})
		}
		types[name] = ms
		top = append(top, apitypes.Type{Name: fmt.Sprintf("m%d", i), Type: name})
		sub := map[string]any{}
		for j := range bigs {
			sub[fmt.Sprintf("z%d", j)] = []any{}
		}
		msg[fmt.Sprintf("m%d", i)] = sub
	}
	for j := range bigs {
		types[fmt.Sprintf("Big%d", j)] = []apitypes.Type{{Name: strings.Repeat("b", pad), Type: "uint8"}}
	}
	types["M"] = top
	b, _ := json.Marshal(map[string]any{"types": types, "primaryType": "M", "domain": map[string]any{"name": "x"}, "message": msg})
	return b
}

// BenchmarkTypedDataHash_WorstWithinLimits parses and hashes the costliest
// shapes the limits allow. go test -bench TypedDataHash ./chains/ethereum
func BenchmarkTypedDataHash_WorstWithinLimits(b *testing.B) {
	for name, data := range map[string][]byte{
		"nested64":      nestedTypedData(MaxTypedDataDepth, 0),
		"nested64+pad":  nestedTypedData(MaxTypedDataDepth, MaxTypedDataBytes-4096),
		"types255x48":   manyTypes(MaxTypedDataTypes-1, 48),
		"values65528":   arrayTypedData(1, 8192, 8192, 8192, 8192, 8192, 8192, 8192, 8192-8),
		"arraydepth63":  arrayTypedData(MaxTypedDataDepth-1, 2),
		"finding-n=300": nestedTypedData(300, 0),
		"sharedtail":    sharedTailTypedData(MaxTypedDataDepth-1, (MaxTypedDataTypeHash-64<<10)/MaxTypedDataDepth),
		"widetail":      wideSharedTail(MaxTypedDataTypes-3, 1, (MaxTypedDataTypeHash-64<<10)/MaxTypedDataTypes),
		"ints7000x66":   bytes.ReplaceAll(arrayTypedData(1, 7000), []byte(`"7"`), []byte(`"0x`+strings.Repeat("f", 62)+`"`)),
	} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if td, err := ParseTypedData("p", data); err == nil {
					_, _ = TypedDataHash("p", td)
				}
			}
		})
	}
}

// FuzzTypedDataHash_MatchesGoEthereum: for typed data ParseTypedData
// accepts, TypedDataHash and go-ethereum's apitypes.TypedDataAndHash agree:
// both refuse it, or both give the same digest.
func FuzzTypedDataHash_MatchesGoEthereum(f *testing.F) {
	f.Add([]byte(`{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],
		"Person":[{"name":"name","type":"string"},{"name":"wallet","type":"address"}],
		"Mail":[{"name":"from","type":"Person"},{"name":"to","type":"Person[]"},{"name":"contents","type":"string"},{"name":"tags","type":"bytes32[2][]"}]},
		"primaryType":"Mail","domain":{"name":"Ether Mail","version":"1","chainId":1,"verifyingContract":"0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
		"message":{"from":{"name":"Cow","wallet":"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},"to":[{"name":"Bob","wallet":"0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"}],"contents":"Hello, Bob!",
		"tags":[["0x0000000000000000000000000000000000000000000000000000000000000001","0x0000000000000000000000000000000000000000000000000000000000000002"]]}}`))
	f.Add(nestedTypedData(5, 3))
	f.Add([]byte(`{"types":{"EIP712Domain":[{"name":"chainId","type":"uint256"}],"M":[]},"primaryType":"M","domain":{"chainId":"0x01","ChainID":"7"},"message":{}}`))
	f.Add([]byte(`{"types":{"EIP712Domain":[{"name":"name","type":"string"}],"M":[]},"primaryType":"M","domain":{"name":"n","chainId":null},"message":{}}`))
	f.Add(arrayTypedData(3, 2, 1))
	f.Add(manyTypes(3, 2))
	f.Add([]byte(`{"types":{"EIP712Domain":[{"name":"salt","type":"bytes32"}],"A":[{"name":"b","type":"B[]"},{"name":"n","type":"int8"}],"B":[{"name":"a","type":"A[]"},{"name":"x","type":"bool"}]},
		"primaryType":"A","domain":{"salt":"0x0000000000000000000000000000000000000000000000000000000000000001"},"message":{"b":[{"a":[],"x":true}],"n":"-128"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		td, err := ParseTypedData("p", data)
		if err != nil {
			return
		}
		var ref apitypes.TypedData // the domain decodes as go-ethereum's does
		if err := json.Unmarshal(data, &ref); err == nil && !reflect.DeepEqual(ref.Domain, td.Domain) {
			t.Fatalf("domain %+v, go-ethereum decodes %+v", td.Domain, ref.Domain)
		}
		ours, err := TypedDataHash("p", td)
		theirs, gerr := func() (h []byte, err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("panic: %v", r)
				}
			}()
			h, _, err = apitypes.TypedDataAndHash(*td)
			return h, err
		}()
		if len(td.Domain.Map()) == 0 {
			return // go-ethereum refuses the empty domain (TestTypedDataHash_EmptyDomainSignsAsEthers)
		}
		if (err == nil) != (gerr == nil) || err == nil && string(ours) != string(theirs) {
			t.Fatalf("keyward %x, %v; go-ethereum %x, %v", ours, err, theirs, gerr)
		}
	})
}

// FuzzTypedDataHash_StructuredMatchesGoEthereum builds typed data from the
// fuzzer's bytes (up to four struct types referencing each other, members of
// every kind of type, values right and wrong for them) and compares the
// digests as FuzzTypedDataHash_MatchesGoEthereum does.
func FuzzTypedDataHash_StructuredMatchesGoEthereum(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	f.Add([]byte("nested structs and arrays of them"))
	memberTypes := []string{"uint8", "int16", "uint256", "bool", "address", "string", "bytes", "bytes2", "bytes32", "uint8[]", "uint8[][]", "string[2]",
		"T0", "T1", "T2", "T3", "T0[]", "T1[]", "T2[][]", "uint", "int", "bytes0", "uint7", "T9"}
	values := []any{"1", "-1", "255", "256", "0x01", "0x0102", true, "abc", "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826", map[string]any{}, []any{}, []any{"1", "2"},
		[]any{[]any{"1"}}, []any{map[string]any{}}, nil, []any{nil}, "0x" + strings.Repeat("00", 32), "1e3", "0xzz"}
	f.Fuzz(func(t *testing.T, in []byte) {
		next := func() int {
			if len(in) == 0 {
				return 0
			}
			b := int(in[0])
			in = in[1:]
			return b
		}
		types := map[string][]apitypes.Type{"EIP712Domain": {{Name: "name", Type: "string"}}}
		nTypes := 1 + next()%4
		for i := range nTypes {
			var ms []apitypes.Type
			for j := range next() % 5 {
				ms = append(ms, apitypes.Type{Name: fmt.Sprintf("m%d", j), Type: memberTypes[next()%len(memberTypes)]})
			}
			types[fmt.Sprintf("T%d", i)] = ms
		}
		var value func(depth int) any
		value = func(depth int) any {
			if depth > 3 || next()%3 != 0 {
				return values[next()%len(values)]
			}
			m := map[string]any{}
			for j := range next() % 5 {
				m[fmt.Sprintf("m%d", j)] = value(depth + 1)
			}
			if next()%2 == 0 {
				return m
			}
			return []any{m, value(depth + 1)}
		}
		msg := map[string]any{}
		for j := range len(types["T0"]) {
			msg[fmt.Sprintf("m%d", j)] = value(0)
		}
		data, err := json.Marshal(map[string]any{"types": types, "primaryType": "T0", "domain": map[string]any{"name": "x"}, "message": msg})
		if err != nil {
			t.Skip()
		}
		td, err := ParseTypedData("p", data)
		if err != nil {
			return
		}
		ours, err := TypedDataHash("p", td)
		theirs, gerr := func() (h []byte, err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("panic: %v", r)
				}
			}()
			h, _, err = apitypes.TypedDataAndHash(*td)
			return h, err
		}()
		if (err == nil) != (gerr == nil) || err == nil && string(ours) != string(theirs) {
			t.Fatalf("%s\nkeyward %x, %v; go-ethereum %x, %v", data, ours, err, theirs, gerr)
		}
	})
}
