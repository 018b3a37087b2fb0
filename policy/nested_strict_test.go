package policy_test

import (
	"strings"
	"testing"

	"github.com/keyward/keyward/config"
)

// TestRules_NestedEntriesDecodeStrictly: a misspelt field or a field
// without a value inside a limit or a token entry is a configuration error,
// not a missing cap.
func TestRules_NestedEntriesDecodeStrictly(t *testing.T) {
	for name, rules := range map[string]string{
		"misspelt limit field":        "tezos: {allow: [generic], operations: [transaction], limits: [{window: 24h, max_amout: \"5 tez\"}]}",
		"limit field without a value": "tezos:\n      allow: [generic]\n      operations: [transaction]\n      limits:\n        - window: 24h\n          max_amount:\n",
		"misspelt token field":        "tezos: {allow: [generic], operations: [transaction], tokens: {KT1PWx2mnDueood7fEmfbBDKx1D9BAnnXitn: {standard: fa2, max_amont: \"1\"}}}",
		"ethereum limit typo":         "ethereum: {limits: [{window: 1h, max_vale: \"1 ether\"}]}",
	} {
		t.Run(name, func(t *testing.T) {
			src := "watermark: file:///tmp/wm\nkeys:\n  k:\n    ref: file:///tmp/k.json\n    " + rules + "\n"
			if _, err := config.Parse(strings.NewReader(src)); err == nil {
				t.Fatalf("accepted:\n%s", src)
			} else {
				t.Log(err)
			}
		})
	}
}
