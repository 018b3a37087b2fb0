package strictyaml

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"gopkg.in/yaml.v3"
)

type inner struct {
	Cap string `yaml:"cap"`
}

type base struct {
	Name string `yaml:"name"`
}

type doc struct {
	base   `yaml:",inline"`
	Addr   netip.Addr       `yaml:"addr"` // read from text: not walked as a struct
	List   []inner          `yaml:"list"`
	ByName map[string]inner `yaml:"by_name"`
	Ptr    *inner           `yaml:"ptr"`
	Any    any              `yaml:"any"`
	Untagd string
	//lint:ignore U1000 an unexported field, which the walk must skip
	hidden string
}

func TestCheck_NamesPathAndLine(t *testing.T) {
	for name, tc := range map[string]struct {
		src        string
		line       int
		path, want string
	}{
		"unknown field":        {"name: a\nnmae: b\n", 2, "nmae", "unknown field"},
		"unknown in list item": {"list:\n  - cap: 1\n  - cpa: 2\n", 3, "list[1].cpa", "unknown field"},
		"unknown in map value": {"by_name:\n  x:\n    cap: 1\n    kap: 2\n", 4, "by_name.x.kap", "unknown field"},
		"unknown under ptr":    {"ptr: {cop: 1}\n", 1, "ptr.cop", "unknown field"},
		"null field":           {"name: a\nptr:\n", 2, "ptr", ErrNoValue},
		"null list item":       {"list:\n  -\n", 2, "list[0]", ErrNoValue},
		"null map value":       {"by_name: {x: ~}\n", 1, "by_name.x", ErrNoValue},
		"null inside any":      {"any: [1, null]\n", 1, "any[1]", ErrNoValue},
		"merge key":            {"ptr:\n  <<: {cap: 1}\n", 2, "ptr", "merge key <<: merge keys are not allowed, write the fields out"},
		"anchor":               {"name: &n a\n", 1, "name", "anchor &n: anchors and aliases are not allowed, write the value out"},
		"alias in any":         {"any: [*x]\n", 1, "any[0]", "alias *x: anchors and aliases are not allowed, write the value out"},
	} {
		t.Run(name, func(t *testing.T) {
			var n yaml.Node
			if err := yaml.Unmarshal([]byte(tc.src), &n); err != nil && name != "alias in any" {
				t.Fatal(err)
			}
			if name == "alias in any" { // an undefined alias does not parse; define it outside the checked value
				if err := yaml.Unmarshal([]byte("x: &x 1\n"+tc.src), &n); err != nil {
					t.Fatal(err)
				}
				n.Content[0].Content = n.Content[0].Content[2:]
				tc.line++
			}
			err := Check(&n, reflect.TypeFor[doc](), "")
			var e *Error
			if !errors.As(err, &e) || e.Line != tc.line || e.Path != tc.path || e.Reason != tc.want {
				t.Fatalf("err = %#v, want line %d %s: %s", err, tc.line, tc.path, tc.want)
			}
		})
	}
}

func TestDecode_AcceptsWhatYAMLDecodes(t *testing.T) {
	src := "name: a\naddr: 127.0.0.1\nlist: [{cap: \"1\"}]\nby_name: {x: {cap: \"2\"}}\nptr: {cap: \"\"}\nany: {k: [1]}\nuntagd: u\nlist2: []\n"
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src[:len(src)-len("list2: []\n")]), &n); err != nil {
		t.Fatal(err)
	}
	var d doc
	if err := Decode(&n, &d, "top"); err != nil {
		t.Fatal(err)
	}
	if d.Name != "a" || !d.Addr.IsLoopback() || d.List[0].Cap != "1" || d.ByName["x"].Cap != "2" || d.Ptr == nil || d.Untagd != "u" {
		t.Fatalf("%+v", d)
	}
	if err := Check(&n, reflect.TypeFor[doc](), "top"); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte("hidden: x\n"), &n); err != nil {
		t.Fatal(err)
	}
	var e *Error
	if err := Check(&n, reflect.TypeFor[doc](), "top"); !errors.As(err, &e) || e.Path != "top.hidden" {
		t.Fatalf("unexported field: %v", err)
	}
}
