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
	if c.WatermarkReplication != "warn" {
		t.Fatalf("default watermark_replication = %q, want warn", c.WatermarkReplication)
	}
}

func TestParse_WatermarkReplicationModes(t *testing.T) {
	for _, mode := range []string{"require-sync", "warn", "ignore"} {
		c, err := Parse(strings.NewReader(minimal + "watermark_replication: " + mode + "\n"))
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if c.WatermarkReplication != mode {
			t.Fatalf("watermark_replication = %q, want %q", c.WatermarkReplication, mode)
		}
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
		"ethereum open to the world without tokens":       minimal + "ethereum:\n  listen: 0.0.0.0:8550\n",
		"unknown watermark_replication":                   minimal + "watermark_replication: sync\n",
		"watermark_replication in the wrong section":      minimal + "server:\n  watermark_replication: warn\n",
		"tezos open to the world without authentication":  minimal + "tezos:\n  listen: 0.0.0.0:6732\n",
		"tezos on every interface without authentication": minimal + "tezos:\n  listen: \":6732\"\n",
		"tls without a key":                               minimal + "tezos:\n  tls: {cert: /etc/keyward/tezos.crt}\n",
		"audit_sync not a setting":                        minimal + "audit: /tmp/a.jsonl\naudit_sync: sometimes\n",
		"audit_sync without audit":                        minimal + "audit_sync: always\n",
		"shutdown_timeout not a time":                     minimal + "server:\n  shutdown_timeout: soon\n",
		"log level typo":                                  minimal + "log:\n  level: debgu\n",
		"log format typo":                                 minimal + "log:\n  format: xml\n",
		"empty":                                           "",
	}
	for name, text := range cases {
		if _, err := Parse(strings.NewReader(text)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// A listener beyond loopback needs client authentication, or
// allow_non_loopback: true, on both sides (issue 14 finding 5).
func TestParse_ListenerBeyondLoopbackNeedsAuthenticationOrAllow(t *testing.T) {
	for name, text := range map[string]string{
		"ethereum allowed":               "ethereum:\n  listen: 0.0.0.0:8550\n  allow_non_loopback: true\n",
		"ethereum with client TLS":       "ethereum:\n  listen: 0.0.0.0:8550\n  tls: {cert: /c, key: /k, client_ca: /ca}\n",
		"tezos allowed":                  "tezos:\n  listen: 0.0.0.0:6732\n  allow_non_loopback: true\n",
		"tezos with authorized keys":     "tezos:\n  listen: 0.0.0.0:6732\n  authorized_keys: [tz1KqTpEZ7Yob7QbPE4Hy4Wo8fHG8LhKxZSx]\n",
		"tezos with client TLS":          "tezos:\n  listen: 0.0.0.0:6732\n  tls: {cert: /c, key: /k, client_ca: /ca}\n",
		"tezos disabled":                 "tezos:\n  listen: 0.0.0.0:6732\n  disabled: true\n",
		"tezos on localhost":             "tezos:\n  listen: localhost:6732\n",
		"audit_sync always beside audit": "audit: /tmp/a.jsonl\naudit_sync: always\n",
	} {
		if _, err := Parse(strings.NewReader(minimal + text)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	_, err := Parse(strings.NewReader(minimal + "tezos:\n  listen: 0.0.0.0:6732\n  tls: {cert: /c, key: /k}\n"))
	if err == nil || !strings.Contains(err.Error(), "tezos.listen") || !strings.Contains(err.Error(), "allow_non_loopback") {
		t.Fatalf("tezos beyond loopback with server-only TLS: %v", err)
	}
}

// Finding 7 of issue 14: an unknown field is named by its YAML path, never
// by a Go type.
func TestParse_UnknownFieldNamesTheYAMLPath(t *testing.T) {
	for text, want := range map[string]string{
		minimal + "tezos:\n  listn: 127.0.0.1:1\n":                  "tezos.listn: unknown field",
		minimal + "tezos:\n  tls: {cert: a, key: b, cient_ca: c}\n": "tezos.tls.cient_ca: unknown field",
		minimal + "    tezos: {allw: []}\n":                         "keys.baker.tezos.allw: unknown field",
	} {
		_, err := Parse(strings.NewReader(text))
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "config.") {
			t.Errorf("err = %v, want %q", err, want)
		}
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

// Finding 2 of issue 11: a merge key carried a typo and null rules past the
// strict decode, and a 10¹² mutez transaction with a 100 tez fee was signed.
// Merge keys, anchors and aliases are refused anywhere, with the line.
func TestParse_RefusesMergeKeysAnchorsAndAliases(t *testing.T) {
	for name, tc := range map[string]struct {
		text, want string
	}{
		"merge key in rules (the finding)": {minimal + "    tezos: {<<: {to: , max_fee: , mxa_amount: \"0 tez\"}, allow: [generic], operations: [transaction]}\n",
			"line 6: keys.baker.tezos: merge key <<"},
		"merge key in a listener": {minimal + "tezos:\n  <<: {authorized_keys: []}\n", "line 7: tezos: merge key <<"},
		"merge key at the top":    {"<<: {audit: /tmp/a}\n" + minimal, "line 1: merge key <<"},
		"anchor and alias":        {minimal + "  other:\n    ref: file:///tmp/o.json\n    tezos: &r {allow: [generic]}\n  third:\n    ref: file:///tmp/t.json\n    tezos: *r\n", "line 8: keys.other.tezos: anchor &r"},
		"alias of a scalar":       {"watermark: file:///tmp/wm\nkeys:\n  a:\n    ref: &f file:///k\n", "line 4: keys.a.ref: anchor &f"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// An unknown field is named by its YAML path, not by a Go type; a setting
// written without a value is an error anywhere (authorized_keys: with its
// items commented out would turn request authentication off); a second YAML
// document is not silently ignored.
func TestParse_NamesTheYAMLPath(t *testing.T) {
	for name, tc := range map[string]struct {
		text, want string
	}{
		"unknown listener field": {minimal + "tezos:\n  listne: 127.0.0.1:1\n", "line 7: tezos.listne: unknown field"},
		"unknown key field":      {minimal + "    polcy: {}\n", "line 6: keys.baker.polcy: unknown field"},
		"unknown nested rule":    {minimal + "    ethereum:\n      typed_data_domains: [{chainid: 1}]\n", "line 7: keys.baker.ethereum.typed_data_domains[0].chainid: unknown field"},
		"authorized keys null":   {minimal + "tezos:\n  authorized_keys:\n    # - edpk…\n", "line 7: tezos.authorized_keys: has no value"},
		"audit null":             {minimal + "audit:\n", "line 6: audit: has no value"},
		"second document":        {minimal + "---\nkeys: {}\n", "more than one YAML document"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "config.") {
				t.Fatalf("err = %v names a Go type", err)
			}
		})
	}
}
