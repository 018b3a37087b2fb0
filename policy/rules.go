package policy

import (
	"gopkg.in/yaml.v3"

	"github.com/keyward/keyward/internal/strictyaml"
)

// decodeRules decodes a key's rules for either chain, and every struct
// nested in them, strictly: an unknown field is an error, as in the rest of
// the configuration, and so is a rule written without a value. YAML reads
// "to:" whose items are all commented out as null, which would otherwise
// mean "left out": the consensus default for tezos.allow, any chain,
// recipient or amount for the others. Merge keys, anchors and aliases are
// refused, so every rule is checked where it is written.
func decodeRules(n *yaml.Node, v any) error {
	return strictyaml.Decode(n, v, "")
}
