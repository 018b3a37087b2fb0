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
		"ethereum open to the world without tokens": minimal + "ethereum:\n  listen: 0.0.0.0:8550\n",
		"empty":                         "",
		"unknown watermark_replication": minimal + "watermark_replication: sync\n",
		"watermark_replication in the wrong section": minimal + "server:\n  watermark_replication: warn\n",
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
