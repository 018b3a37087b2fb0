// Package strictyaml checks a YAML document against the Go type it decodes into, refusing unknown fields, settings without a value, merge keys, anchors and aliases with the YAML path and line.
package strictyaml

import (
	"encoding"
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is one problem in a document: where (YAML path and line) and what.
type Error struct {
	Line   int
	Path   string // dotted YAML path: "keys.poster.ethereum.chain_ids", "tezos.to[1]"; "" for the document
	Reason string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
	}
	return fmt.Sprintf("line %d: %s: %s", e.Line, e.Path, e.Reason)
}

// ErrNoValue is the Reason of an Error about a setting written without a
// value. YAML reads "to:" whose items are all commented out as null, which
// decodes like a setting left out: for a policy rule that means its
// permissive default, so it is refused instead.
const ErrNoValue = "has no value (write the value, [] for an empty list or {} for an empty map, or remove the line)"

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// Check walks n against t (the type n decodes into) and returns the first
// problem as an *Error, each named by its path below prefix:
//   - a mapping key that is no yaml-tagged field of the struct it fills;
//   - a null value (a key without a value, an empty list item), anywhere;
//   - a merge key (<<), an anchor (&a) or an alias (*a): a merged mapping
//     escapes the per-field checks of the mapping it lands in, and a
//     configuration that signs should read the same to a human and to the
//     decoder.
//
// A struct is checked by its fields even when it has its own UnmarshalYAML
// (which may call Decode to stay strict on its own); a type read from text
// (encoding.TextUnmarshaler) or an interface is checked only for the rules
// that apply everywhere.
func Check(n *yaml.Node, t reflect.Type, prefix string) error {
	return check(n, t, prefix)
}

// Decode checks n against v's type (see Check) and decodes it into v, a pointer.
func Decode(n *yaml.Node, v any, prefix string) error {
	if err := check(n, reflect.TypeOf(v), prefix); err != nil {
		return err
	}
	return n.Decode(v)
}

func check(n *yaml.Node, t reflect.Type, path string) error {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.AliasNode {
		return &Error{n.Line, path, fmt.Sprintf("alias *%s: anchors and aliases are not allowed, write the value out", n.Value)}
	}
	if n.Anchor != "" {
		return &Error{n.Line, path, fmt.Sprintf("anchor &%s: anchors and aliases are not allowed, write the value out", n.Anchor)}
	}
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			if err := check(c, t, path); err != nil {
				return err
			}
		}
		return nil
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return &Error{n.Line, path, ErrNoValue}
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(textUnmarshaler) {
		t = nil // no structure to check against: the rules that apply everywhere only
	}
	switch n.Kind {
	case yaml.MappingNode:
		var fields map[string]reflect.Type
		if t != nil && t.Kind() == reflect.Struct {
			fields = map[string]reflect.Type{}
			structFields(t, fields)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
				return &Error{k.Line, path, "merge key <<: merge keys are not allowed, write the fields out"}
			}
			if err := check(k, nil, path); err != nil {
				return err
			}
			sub := join(path, k.Value)
			var vt reflect.Type
			switch {
			case fields != nil:
				ft, ok := fields[k.Value]
				if !ok {
					return &Error{k.Line, sub, "unknown field"}
				}
				vt = ft
			case t != nil && t.Kind() == reflect.Map:
				vt = t.Elem()
			}
			if err := check(v, vt, sub); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		var et reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			et = t.Elem()
		}
		for i, c := range n.Content {
			if err := check(c, et, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// structFields adds the YAML names of t's fields (inline structs
// flattened, as yaml.v3 does) to fields.
func structFields(t reflect.Type, fields map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() && !f.Anonymous { // yaml.v3 reads embedded structs, exported or not
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				structFields(ft, fields)
				continue
			}
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
