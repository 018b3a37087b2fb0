package config

import (
	"strings"
	"testing"
)

const minimal = `
watermark: file:///tmp/wm
keys:
  baker:
    ref: file:///tmp/baker.json
`

func TestParse_Minimal(t *testing.T) {
	c, err := Parse(strings.NewReader(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.Tezos.Listen != DefaultTezosListen {
		t.Fatalf("default listen = %q", c.Tezos.Listen)
	}
	if c.Ethereum.MaxBatch != DefaultMaxBatch {
		t.Fatalf("default batch = %d", c.Ethereum.MaxBatch)
	}
}

func TestParse_RejectsInvalid(t *testing.T) {
	cases := map[string]string{
		"unknown top-level field": minimal + "colour: blue\n",
		"unknown key field":       "watermark: file:///x\nkeys:\n  a:\n    ref: file:///k\n    polcy: {}\n",
		"unknown tezos rule":      "watermark: file:///x\nkeys:\n  a:\n    ref: file:///k\n    tezos:\n      allow: [blocks]\n",
		"no watermark":            "keys:\n  a:\n    ref: file:///k\n",
		"no keys":                 "watermark: file:///x\n",
		"key without ref":         "watermark: file:///x\nkeys:\n  a: {}\n",
		"bad listen":              minimal + "tezos:\n  listen: nonsense\n",
		"bad ethereum amount":     "watermark: file:///x\nkeys:\n  a:\n    ref: file:///k\n    ethereum:\n      max_value: lots\n",
		"ethereum open to the world without tokens": minimal + "ethereum:\n  listen: 0.0.0.0:8550\n",
		"empty": "",
	}
	for name, text := range cases {
		if _, err := Parse(strings.NewReader(text)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParse_EthereumBeyondLoopbackWhenAllowed(t *testing.T) {
	if _, err := Parse(strings.NewReader(minimal + "ethereum:\n  listen: 0.0.0.0:8550\n  allow_non_loopback: true\n")); err != nil {
		t.Fatal(err)
	}
}

// Finding 1 of issue 11: Ethereum rules whose items are all commented out
// passed `config check` and signed anything on any chain.
func TestParse_RefusesRulesWithoutValue(t *testing.T) {
	for name, rules := range map[string]string{
		"ethereum": "    ethereum:\n      chain_ids:\n        # - 1\n      to:\n        # - \"0x…dEaD\"\n      max_value:\n",
		"tezos":    "    tezos:\n      allow: [generic]\n      operations: [transaction]\n      to:\n        # - KT1…%update\n",
	} {
		if _, err := Parse(strings.NewReader(minimal + rules)); err == nil || !strings.Contains(err.Error(), "has no value") {
			t.Errorf("%s: err = %v, want a rule without value refused", name, err)
		}
	}
}
