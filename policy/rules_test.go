package policy

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/keyward/keyward/internal/strictyaml"
)

// nullDoc is a YAML document that reaches one place of a rule struct and
// leaves it without a value.
type nullDoc struct {
	path string // YAML path of the null, as the error names it
	src  string
}

// nullDocs walks every yaml-tagged field of t, and of every struct nested in
// it (through pointers, lists and maps), and returns one document per place
// a value can be left out: the field itself, a list item, a map value. A
// field added later is covered without touching this test.
func nullDocs(t reflect.Type) []nullDoc {
	var out []nullDoc
	var walk func(t reflect.Type, path, indent string, wrap func(string) string)
	walk = func(t reflect.Type, path, indent string, wrap func(string) string) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Struct:
			for i := 0; i < t.NumField(); i++ {
				f := t.Field(i)
				name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				if name == "" || name == "-" {
					continue
				}
				p := name
				if path != "" {
					p = path + "." + name
				}
				out = append(out, nullDoc{p, wrap(indent + name + ":\n")})
				in := indent
				walk(f.Type, p, in+"  ", func(inner string) string { return wrap(in + name + ":\n" + inner) })
			}
		case reflect.Slice:
			out = append(out, nullDoc{path + "[0]", wrap(indent + "-\n")})
			walk(t.Elem(), path+"[0]", indent+"  ", func(inner string) string { return wrap(indent + "- " + strings.TrimLeft(inner, " ")) })
		case reflect.Map:
			out = append(out, nullDoc{path + ".k", wrap(indent + "k:\n")})
			walk(t.Elem(), path+".k", indent+"  ", func(inner string) string { return wrap(indent + "k:\n" + inner) })
		}
	}
	walk(t, "", "", func(s string) string { return s })
	return out
}

// Every rule of either chain, written without a value (its list items all
// commented out, a forgotten amount), is refused with its path and line:
// left as null it would decode like a rule left out, which for tezos.allow
// is the consensus default and for chain_ids, to or max_value is "any".
func TestRules_RefuseEveryRuleWithoutValue(t *testing.T) {
	for _, root := range []any{&TezosRules{}, &EthereumRules{}} {
		rt := reflect.TypeOf(root).Elem()
		docs := nullDocs(rt)
		if len(docs) < rt.NumField() {
			t.Fatalf("%s: only %d documents", rt.Name(), len(docs))
		}
		for _, d := range docs {
			for _, null := range []string{"", " ~", " null"} {
				src := strings.TrimSuffix(d.src, "\n") + null + "\n" // the last line is the one left without a value
				t.Run(fmt.Sprintf("%s/%s/%q", rt.Name(), d.path, null), func(t *testing.T) {
					v := reflect.New(rt).Interface()
					err := yaml.Unmarshal([]byte(src), v)
					var se *strictyaml.Error
					if !errors.As(err, &se) || se.Reason != strictyaml.ErrNoValue {
						t.Fatalf("%q: err = %v, want %q", src, err, strictyaml.ErrNoValue)
					}
					if se.Path != d.path || se.Line != strings.Count(src, "\n") {
						t.Fatalf("%q: error at line %d path %s, want line %d path %s", src, se.Line, se.Path, strings.Count(src, "\n"), d.path)
					}
				})
			}
		}
	}
}

// The rules of finding 1 of issue 11, verbatim: chain_ids, to and max_value
// with their items commented out were read as "any chain, any recipient,
// no cap".
func TestEthereumRules_CommentedOutRulesAreAnError(t *testing.T) {
	src := "chain_ids:\n  # - 1\nto:\n  # - \"0x…dEaD\"\nmax_value:\n"
	var r EthereumRules
	err := yaml.Unmarshal([]byte(src), &r)
	var se *strictyaml.Error
	if !errors.As(err, &se) || se.Path != "chain_ids" || se.Line != 1 {
		t.Fatalf("err = %v, want chain_ids at line 1 refused", err)
	}
}

// Decoding stays strict in nested rule structs, and refuses merge keys and
// aliases, which would carry rules past these checks.
func TestRules_RefuseUnknownFieldsMergeKeysAndAliases(t *testing.T) {
	for name, tc := range map[string]struct {
		v    any
		src  string
		path string
	}{
		"unknown tezos field":    {&TezosRules{}, "allow: [generic]\nmxa_amount: 0 tez\n", "mxa_amount"},
		"unknown ethereum field": {&EthereumRules{}, "chain_id: [1]\n", "chain_id"},
		"unknown nested field":   {&EthereumRules{}, "typed_data_domains:\n  - chain_id: 1\n    verifying_contact: \"0x00\"\n", "typed_data_domains[0].verifying_contact"},
		"merge key":              {&TezosRules{}, "<<: {max_fee: 1 tez}\nallow: [generic]\n", ""},
		"alias":                  {&EthereumRules{}, "chain_ids: &c [1]\nto: *c\n", "chain_ids"},
	} {
		t.Run(name, func(t *testing.T) {
			err := yaml.Unmarshal([]byte(tc.src), tc.v)
			var se *strictyaml.Error
			if !errors.As(err, &se) || se.Path != tc.path {
				t.Fatalf("err = %v, want a strictyaml error at %q", err, tc.path)
			}
		})
	}
	var r EthereumRules
	if err := yaml.Unmarshal([]byte("chain_ids: [1]\nto: []\nmethods: {}\ntyped_data_domains: [{chain_id: 1}]\nmax_value: \"\"\n"), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.ChainIDs) != 1 || r.To == nil || len(r.TypedDataDomains) != 1 || r.TypedDataDomains[0].ChainID != 1 {
		t.Fatalf("%+v", r)
	}
}
