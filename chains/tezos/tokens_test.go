package tezos

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"testing"

	"github.com/keyward/keyward/internal/testutil"
)

type tokenVectors struct {
	Token   string `json:"token"`
	Vectors []struct {
		Name       string          `json:"name"`
		Standard   TokenStandard   `json:"standard"`
		Entrypoint string          `json:"entrypoint"`
		Hex        string          `json:"hex"`
		Value      json.RawMessage `json:"value"`
		Expect     struct {
			Error     string `json:"error"`
			Transfers []struct {
				From, To, Amount string
				TokenID          *string `json:"token_id"`
			} `json:"transfers"`
			Approval *struct {
				Spender, Amount string
			} `json:"approval"`
			Operators []struct {
				Add             bool
				Owner, Operator string
				TokenID         string `json:"token_id"`
			} `json:"operators"`
		} `json:"expect"`
	} `json:"vectors"`
}

const tokenVectorsFile = "testdata/taquito_tokens.json"

func loadTokenVectors(t testing.TB) (*tokenVectors, []byte) {
	t.Helper()
	b, err := os.ReadFile(tokenVectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var v tokenVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return &v, b
}

// The committed vectors are what Taquito forges today: test/forge/tokens.js
// is run again and must print the same file.
func TestTokenVectors_AreTaquitoOutput(t *testing.T) {
	_, want := loadTokenVectors(t)
	got := testutil.NodeScript(t, "forge", "@taquito/michelson-encoder", "tokens.js")
	if !bytes.Equal(got, want) {
		t.Fatalf("test/forge/tokens.js output differs from %s; run `cd test/forge && npm run tokens`", tokenVectorsFile)
	}
}

// Token calls forged by Taquito (values from its Michelson encoder, or
// written as combs, sequences and binary addresses) decode to what they
// were forged from; the malformed ones and the entrypoints the standards do
// not fix are refused.
func TestDecodeTokenCall_TaquitoForged(t *testing.T) {
	vs, _ := loadTokenVectors(t)
	for _, v := range vs.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			req, err := ParseRequest(mustHex(t, v.Hex))
			if err != nil {
				t.Fatal(err)
			}
			op := req.Operations[0]
			if op.Destination != vs.Token || op.Entrypoint != v.Entrypoint {
				t.Fatalf("transaction to %s%%%s", op.Destination, op.Entrypoint)
			}
			c, err := DecodeTokenCall(v.Standard, op.Entrypoint, op.Parameters)
			switch v.Expect.Error {
			case "entrypoint":
				if !errors.Is(err, ErrTokenEntrypoint) || c != nil {
					t.Fatalf("%+v, %v; want ErrTokenEntrypoint", c, err)
				}
				return
			case "parameters":
				if !errors.Is(err, ErrTokenParameters) || c != nil {
					t.Fatalf("%+v, %v; want ErrTokenParameters", c, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			e := v.Expect
			if c.Standard != v.Standard || c.Entrypoint != v.Entrypoint || len(c.Transfers) != len(e.Transfers) || len(c.Operators) != len(e.Operators) || (c.Approval == nil) != (e.Approval == nil) {
				t.Fatalf("decoded %+v, want %+v", c, e)
			}
			total := new(big.Int)
			for i, w := range e.Transfers {
				g := c.Transfers[i]
				id := "<nil>"
				if w.TokenID != nil {
					id = *w.TokenID
				}
				if g.From != w.From || g.To != w.To || g.Amount.String() != w.Amount || fmt.Sprint(g.TokenID) != id {
					t.Errorf("transfer %d = %s→%s id %v amount %s, want %+v", i, g.From, g.To, g.TokenID, g.Amount, w)
				}
				a, _ := new(big.Int).SetString(w.Amount, 10)
				total.Add(total, a)
			}
			if a := e.Approval; a != nil {
				if c.Approval.Spender != a.Spender || c.Approval.Amount.String() != a.Amount {
					t.Errorf("approval %+v, want %+v", c.Approval, a)
				}
				n, _ := new(big.Int).SetString(a.Amount, 10)
				total.Add(total, n)
			}
			for i, w := range e.Operators {
				g := c.Operators[i]
				if g.Add != w.Add || g.Owner != w.Owner || g.Operator != w.Operator || g.TokenID.String() != w.TokenID {
					t.Errorf("operator update %d = %+v, want %+v", i, g, w)
				}
			}
			if c.Total().Cmp(total) != 0 {
				t.Errorf("Total %s, want %s", c.Total(), total)
			}
		})
	}
}

func TestDecodeTokenCall_RefusesWhatIsNotAValue(t *testing.T) {
	pair := func(args ...[]byte) []byte { return append([]byte{mPrim2, primPair}, bytes.Join(args, nil)...) }
	str := func(s string) []byte { return append([]byte{mString, 0, 0, 0, byte(len(s))}, s...) }
	nat := []byte{mInt, 0x05}
	from, to := str("tz1W7Hs43hbxDJY9DPS3XRoon96RHN6CpV2Y"), str("tz1gDZwfViZ8cFJz6aTfB3SSmqjuzZLhB66e")
	ok := pair(from, pair(to, nat))
	if _, err := DecodeTokenCall(FA12, "transfer", ok); err != nil {
		t.Fatal(err)
	}
	deep := nat
	for i := 0; i < 40; i++ {
		deep = append([]byte{mPrim1, primLeft}, deep...)
	}
	for name, tc := range map[string]struct {
		std    TokenStandard
		ep     string
		params []byte
		want   error
	}{
		"no parameters":         {FA12, "transfer", nil, ErrTokenParameters},
		"empty parameters":      {FA12, "transfer", []byte{}, ErrTokenParameters},
		"trailing byte":         {FA12, "transfer", append(bytes.Clone(ok), 0), ErrTokenParameters},
		"truncated":             {FA12, "transfer", ok[:len(ok)-1], ErrTokenParameters},
		"unknown node tag":      {FA12, "transfer", []byte{11}, ErrTokenParameters},
		"nested too deep":       {FA2, "transfer", deep, ErrTokenParameters},
		"address with %default": {FA12, "transfer", pair(from, pair(str("KT1WvzYHCNBvDSdwafTHv7nJ1dWmZ8GCYuuC%default"), nat)), ErrTokenParameters},
		"unknown standard":      {"fa3", "transfer", ok, ErrTokenEntrypoint},
		"root entrypoint":       {FA12, "root", ok, ErrTokenEntrypoint},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := DecodeTokenCall(tc.std, tc.ep, tc.params)
			if !errors.Is(err, tc.want) || c != nil {
				t.Fatalf("%+v, %v; want %v", c, err, tc.want)
			}
		})
	}
}

func FuzzDecodeTokenCall(f *testing.F) {
	vs, _ := loadTokenVectors(f)
	for _, v := range vs.Vectors {
		req, err := ParseRequest(mustHex(f, v.Hex))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(v.Standard), v.Entrypoint, req.Operations[0].Parameters)
	}
	f.Fuzz(func(t *testing.T, std, ep string, params []byte) {
		c, err := DecodeTokenCall(TokenStandard(std), ep, params)
		if err != nil {
			if c != nil || !errors.Is(err, ErrTokenEntrypoint) && !errors.Is(err, ErrTokenParameters) {
				t.Fatalf("%+v, %v", c, err)
			}
			return
		}
		for _, tr := range c.Transfers {
			if tr.Amount.Sign() < 0 || tr.From == "" || tr.To == "" || (tr.TokenID == nil) != (c.Standard == FA12) {
				t.Fatalf("transfer %+v", tr)
			}
		}
		if a := c.Approval; a != nil && (a.Amount.Sign() < 0 || a.Spender == "") {
			t.Fatalf("approval %+v", a)
		}
		for _, u := range c.Operators {
			if u.TokenID.Sign() < 0 || u.Owner == "" || u.Operator == "" {
				t.Fatalf("operator update %+v", u)
			}
		}
		if c.Total().Sign() < 0 {
			t.Fatal("negative total")
		}
	})
}
