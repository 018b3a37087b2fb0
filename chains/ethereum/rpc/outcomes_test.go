package rpc_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/audit/audittest"
	"github.com/keyward/keyward/chains/ethereum/rpc"
	"github.com/keyward/keyward/config"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/pipeline"
	"github.com/keyward/keyward/pipeline/pipelinetest"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/local"
)

// TestOutcomes_CodeAuditMetric runs the pipeline's outcome classes through
// the Ethereum transport: each answers its JSON-RPC code, writes its audit
// line with the rule (or, before identification, only a count) and is
// counted under that rule, as on the Tezos side.
func TestOutcomes_CodeAuditMetric(t *testing.T) {
	type fx struct {
		backend *pipelinetest.FailingKey
		audit   *audittest.Memory
	}
	cases := []struct {
		name       string
		setup      func(f *fx)
		method     string
		params     func(addr string) string
		header     []string
		status     int
		code       int
		class      pipeline.Class
		rule       pipeline.Rule
		identified bool
	}{
		{"signed", nil, "personal_sign", func(a string) string { return `["0x68656c6c6f","` + a + `"]` }, nil, 200, 0, pipeline.Signed, "", true},
		{"policy refusal", nil, "eth_signTransaction", func(a string) string {
			return `[{"from":"` + a + `","to":"0x2222222222222222222222222222222222222222","nonce":"0x0","gas":"0x5208","gasPrice":"0x1","chainId":"0x1"}]`
		}, nil, 200, rpc.CodeRefused, pipeline.Refused, "ethereum.to", true},
		{"backend down", func(f *fx) { f.backend.SetErr(signer.ErrUnavailable) }, "personal_sign", func(a string) string { return `["0x00","` + a + `"]` },
			nil, 200, rpc.CodeServer, pipeline.Unavailable, pipeline.RuleBackend, true},
		{"backend error", func(f *fx) { f.backend.SetErr(errors.New(`pkcs11 token "advtok": CKR_DEVICE_ERROR`)) }, "personal_sign",
			func(a string) string { return `["0x00","` + a + `"]` }, nil, 200, rpc.CodeServer, pipeline.BackendFailed, pipeline.RuleBackend, true},
		{"audit down", func(f *fx) { f.audit.Fail(audit.ErrUnavailable) }, "personal_sign", func(a string) string { return `["0x00","` + a + `"]` },
			nil, 200, rpc.CodeServer, pipeline.Unavailable, pipeline.RuleAudit, true},
		{"malformed params", nil, "personal_sign", func(a string) string { return `["0xzz","` + a + `"]` }, nil, 200, rpc.CodeInvalidParams, pipeline.Malformed, pipeline.RuleRequest, false},
		{"unknown account", nil, "personal_sign", func(string) string { return `["0x00","0x9999999999999999999999999999999999999999"]` },
			nil, 200, rpc.CodeServer, pipeline.UnknownKey, pipeline.RuleKey, false},
		{"browser origin", nil, "personal_sign", func(a string) string { return `["0x00","` + a + `"]` }, []string{"Origin", ""},
			http.StatusForbidden, rpc.CodeUnauthorized, pipeline.Refused, rpc.RuleOrigin, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pk, err := local.ParseHexSecret(secretOpen)
			if err != nil {
				t.Fatal(err)
			}
			f := &fx{backend: &pipelinetest.FailingKey{Key: pk}, audit: &audittest.Memory{}}
			u, _ := signer.ParseURI("file:///keys/bot.json")
			rules := &policy.EthereumRules{ChainIDs: []uint64{1}, To: []string{dead.Hex()}, SignMessages: true}
			k, err := keyring.NewKey("bot", u, f.backend, config.KeyConfig{Ethereum: rules})
			if err != nil {
				t.Fatal(err)
			}
			ring, _ := keyring.New([]*keyring.Key{k})
			obs := &pipelinetest.Recorder{}
			p := pipeline.New(pipeline.Options{Audit: f.audit, Observer: obs, Codes: rpc.Codes(), SummaryInterval: time.Hour})
			defer p.Close()
			h, err := rpc.NewHandler(rpc.Options{Ring: func() *keyring.Ring { return ring }, Pipeline: p, ChainID: 1})
			if err != nil {
				t.Fatal(err)
			}
			e := &env{h: h, audit: f.audit}
			e.srv = httptest.NewServer(h)
			defer e.srv.Close()
			if tc.setup != nil {
				tc.setup(f)
			}
			body := `{"jsonrpc":"2.0","id":1,"method":"` + tc.method + `","params":` + tc.params(k.EthAddress) + `}`
			status, raw := e.post(t, []byte(body), tc.header...)
			var ans rpcAnswer
			if err := json.Unmarshal(raw, &ans); err != nil || status != tc.status {
				t.Fatalf("status %d %s", status, raw)
			}
			if got := 0; ans.Error != nil {
				got = ans.Error.Code
				if got != tc.code {
					t.Fatalf("code %d, want %d: %s", got, tc.code, raw)
				}
				if strings.Contains(ans.Error.Message, "CKR") || strings.Contains(ans.Error.Message, "advtok") {
					t.Fatalf("backend details reached the client: %s", raw)
				}
			} else if tc.code != 0 {
				t.Fatalf("no error, want code %d: %s", tc.code, raw)
			}
			d := obs.Last()
			if d.Class != tc.class || d.Rule != tc.rule || d.Identified != tc.identified {
				t.Errorf("metric %+v, want class %v rule %q identified %v", d, tc.class, tc.rule, tc.identified)
			}
			recs := f.audit.Records()
			switch {
			case tc.rule == pipeline.RuleAudit:
				if len(recs) != 0 {
					t.Fatalf("audit records %+v", recs)
				}
			case tc.identified:
				if len(recs) != 1 || recs[0].Outcome != tc.class.AuditOutcome() || recs[0].Rule != string(tc.rule) || recs[0].Status != tc.code || recs[0].Key != "bot" || recs[0].Count != 0 {
					t.Fatalf("audit records %+v, want one line, outcome %s rule %q", recs, tc.class.AuditOutcome(), tc.rule)
				}
			default:
				if len(recs) != 1 || recs[0].Count != 1 || recs[0].Rule != string(tc.rule) || recs[0].Key != "" {
					t.Fatalf("audit records %+v, want one summary", recs)
				}
			}
		})
	}
}
