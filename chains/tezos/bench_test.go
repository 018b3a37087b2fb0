package tezos

import "testing"

func benchVector(b *testing.B, name string) []byte {
	for _, v := range loadForged(b).Operations {
		if v.Name == name {
			return mustHex(b, v.Hex)
		}
	}
	for _, v := range loadForged(b).Consensus {
		if v.Name == name {
			return mustHex(b, v.Hex)
		}
	}
	b.Fatalf("no vector %s", name)
	return nil
}

func BenchmarkParseRequest_Transaction(b *testing.B) {
	p := benchVector(b, "transaction_kt1_update")
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if _, err := ParseRequest(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRequest_Attestation(b *testing.B) {
	p := benchVector(b, "attestation_with_dal")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRequest(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkB58Encode_Address(b *testing.B) {
	h := make([]byte, 20)
	b.ReportAllocs()
	for b.Loop() {
		B58Encode(PrefixTz1, h)
	}
}
