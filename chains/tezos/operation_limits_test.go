package tezos

import (
	"encoding/json"
	"os"
	"testing"
)

// Every Taquito-forged manager operation decodes with the gas and storage
// limits it was forged with, and a transaction's parameters as exactly one
// Micheline expression (none when it was forged without).
func TestParseRequest_GasStorageLimitsAndParameters(t *testing.T) {
	b, err := os.ReadFile("testdata/taquito_forged.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Operations []struct {
			Name string
			Hex  string
			JSON struct {
				Contents []struct {
					Kind         string          `json:"kind"`
					GasLimit     string          `json:"gas_limit"`
					StorageLimit string          `json:"storage_limit"`
					Parameters   json.RawMessage `json:"parameters"`
				} `json:"contents"`
			} `json:"json"`
		}
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	managers, params := 0, 0
	for _, v := range f.Operations {
		req, err := ParseRequest(mustHex(t, v.Hex))
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		for i, c := range v.JSON.Contents {
			op := req.Operations[i]
			if c.GasLimit == "" {
				if op.GasLimit != nil || op.StorageLimit != nil {
					t.Errorf("%s[%d] %s: limits %v/%v on a non-manager operation", v.Name, i, c.Kind, op.GasLimit, op.StorageLimit)
				}
				continue
			}
			managers++
			if op.GasLimit == nil || op.GasLimit.String() != c.GasLimit || op.StorageLimit == nil || op.StorageLimit.String() != c.StorageLimit {
				t.Errorf("%s[%d]: gas %v storage %v, want %s %s", v.Name, i, op.GasLimit, op.StorageLimit, c.GasLimit, c.StorageLimit)
			}
			if c.Kind != "transaction" {
				continue
			}
			// Taquito leaves out parameters that are default and Unit.
			var pj struct {
				Entrypoint string `json:"entrypoint"`
				Value      struct {
					Prim string          `json:"prim"`
					Args json.RawMessage `json:"args"`
				} `json:"value"`
			}
			if c.Parameters != nil {
				if err := json.Unmarshal(c.Parameters, &pj); err != nil {
					t.Fatal(err)
				}
			}
			forged := c.Parameters != nil && !(pj.Entrypoint == "default" && pj.Value.Prim == "Unit" && pj.Value.Args == nil)
			if forged != (op.Parameters != nil) {
				t.Errorf("%s[%d]: parameters %x, forged with %s", v.Name, i, op.Parameters, c.Parameters)
				continue
			}
			if op.Parameters != nil {
				params++
				r := newReader(op.Parameters)
				r.skipMicheline("parameters")
				if r.err != nil || r.off != len(op.Parameters) {
					t.Errorf("%s[%d]: parameters are not one Micheline expression: %v", v.Name, i, r.err)
				}
			}
		}
	}
	if managers < 20 || params < 5 {
		t.Fatalf("only %d manager operations and %d with parameters checked", managers, params)
	}
}
