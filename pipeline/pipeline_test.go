package pipeline_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/audit/audittest"
	"github.com/keyward/keyward/config"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/pipeline"
	"github.com/keyward/keyward/pipeline/pipelinetest"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/local"
	"github.com/keyward/keyward/watermark"
	wmfile "github.com/keyward/keyward/watermark/file"
)

type env struct {
	p     *pipeline.Pipeline
	key   *keyring.Key
	back  *pipelinetest.FailingKey
	store watermark.Store
	wmDir string
	audit *audittest.Memory
	obs   *pipelinetest.Recorder
	signs atomic.Int64
}

type countingKey struct {
	signer.Key
	n *atomic.Int64
}

func (c countingKey) Sign(ctx context.Context, d []byte) ([]byte, error) {
	c.n.Add(1)
	return c.Key.Sign(ctx, d)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{wmDir: filepath.Join(t.TempDir(), "wm"), audit: &audittest.Memory{}, obs: &pipelinetest.Recorder{}}
	st, err := wmfile.Open(e.wmDir)
	if err != nil {
		t.Fatal(err)
	}
	e.store = st
	pk, err := local.Generate(signer.Secp256k1)
	if err != nil {
		t.Fatal(err)
	}
	e.back = &pipelinetest.FailingKey{Key: countingKey{pk, &e.signs}}
	u, _ := signer.ParseURI("file:///test/baker.json")
	e.key, err = keyring.NewKey("baker", u, e.back, config.KeyConfig{Tezos: &policy.TezosRules{Allow: []string{"attestation"}}})
	if err != nil {
		t.Fatal(err)
	}
	e.p = pipeline.New(pipeline.Options{Store: st, Audit: e.audit, Observer: e.obs, SummaryInterval: time.Hour})
	t.Cleanup(func() { e.p.Close(); st.Close() })
	return e
}

func digest(s string) []byte { d := sha256.Sum256([]byte(s)); return d[:] }

// attestation builds a request for a consensus mark at level with the
// payload named by salt.
func (e *env) attestation(level int64, salt string) *pipeline.Request {
	return &pipeline.Request{
		Chain: pipeline.Tezos, Caller: pipeline.Caller{Addr: "127.0.0.1:1", IDs: []string{"tz1client"}}, Key: e.key,
		Address: e.key.PKH, Kind: "attestation", Digest: digest(salt),
		Mark:  &pipeline.Mark{ID: watermark.ID{Key: e.key.PKH, Chain: "NetXdQprcVkpaWU", Kind: 0x13}, Level: level},
		Check: func() error { return nil },
	}
}

// want checks the outcome of one decision: the error's class and rule, the
// audit line and the metric.
func (e *env) want(t *testing.T, err error, class pipeline.Class, rule pipeline.Rule, audited bool) {
	t.Helper()
	got := pipeline.ErrorOf(err)
	if class == pipeline.Signed {
		if err != nil {
			t.Fatalf("want a signature, got %v (%v, rule %s)", err, got.Class, got.Rule)
		}
	} else if got == nil || got.Class != class || got.Rule != rule {
		t.Fatalf("want %v by rule %q, got %#v", class, rule, got)
	}
	d := e.obs.Last()
	if d.Class != class || d.Rule != rule || !d.Identified || d.Key != "baker" {
		t.Errorf("metric: %+v, want class %v rule %q for key baker", d, class, rule)
	}
	if !audited {
		return
	}
	rec := e.audit.Last(t)
	if rec.Outcome != class.AuditOutcome() || rec.Rule != string(rule) || rec.Key != "baker" || rec.Auth != "tz1client" || rec.Digest == "" {
		t.Errorf("audit: %+v, want outcome %s rule %q", rec, class.AuditOutcome(), rule)
	}
}

func TestPipeline_Outcomes(t *testing.T) {
	ctx := context.Background()
	t.Run("signs and records", func(t *testing.T) {
		e := newEnv(t)
		res, err := e.p.Sign(ctx, e.attestation(10, "a"))
		e.want(t, err, pipeline.Signed, pipeline.RuleNone, true)
		if len(res.Sig) != 64 || !signer.Verify(e.key.Pub, digest("a"), res.Sig) {
			t.Fatalf("signature does not verify: %x", res.Sig)
		}
	})
	t.Run("policy refusal names the rule and signs nothing", func(t *testing.T) {
		e := newEnv(t)
		req := e.attestation(10, "a")
		req.Check = func() error { return policy.Refuse("tezos.allow", "not allowed") }
		_, err := e.p.Sign(ctx, req)
		e.want(t, err, pipeline.Refused, "tezos.allow", true)
		if e.signs.Load() != 0 {
			t.Fatal("refused request reached the backend")
		}
		if marks, _ := e.store.Marks(ctx); len(marks) != 0 {
			t.Fatalf("refused request moved a mark: %v", marks)
		}
	})
	t.Run("watermark refuses another payload at the same level", func(t *testing.T) {
		e := newEnv(t)
		if _, err := e.p.Sign(ctx, e.attestation(10, "a")); err != nil {
			t.Fatal(err)
		}
		_, err := e.p.Sign(ctx, e.attestation(10, "b"))
		e.want(t, err, pipeline.Conflict, pipeline.RuleWatermark, true)
		if e.signs.Load() != 1 {
			t.Fatalf("%d signatures, want 1", e.signs.Load())
		}
	})
	t.Run("identical retry returns the stored signature", func(t *testing.T) {
		e := newEnv(t)
		req := e.attestation(10, "a")
		req.Encode = func(sig []byte) ([]byte, error) { return append([]byte("enc:"), sig...), nil }
		first, err := e.p.Sign(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		retry := e.attestation(10, "a")
		retry.Encode = req.Encode
		again, err := e.p.Sign(ctx, retry)
		e.want(t, err, pipeline.Signed, pipeline.RuleNone, true)
		if !again.Retry || !bytes.Equal(again.Encoded, first.Encoded) || e.signs.Load() != 1 {
			t.Fatalf("retry: %+v, %d backend signatures", again, e.signs.Load())
		}
	})
	t.Run("store down signs nothing", func(t *testing.T) {
		e := newEnv(t)
		if err := os.RemoveAll(e.wmDir); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(e.wmDir, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := e.p.Sign(ctx, e.attestation(10, "a"))
		e.want(t, err, pipeline.Unavailable, pipeline.RuleWatermark, true)
		if e.signs.Load() != 0 {
			t.Fatal("signed with the store down")
		}
		if pe := pipeline.ErrorOf(err); pe.Msg != "watermark store unavailable: nothing signed" || pe.Err == nil {
			t.Fatalf("client message %q (store details must stay in the log)", pe.Msg)
		}
	})
	t.Run("backend down gives the mark back", func(t *testing.T) {
		e := newEnv(t)
		if _, err := e.p.Sign(ctx, e.attestation(9, "a")); err != nil {
			t.Fatal(err)
		}
		e.back.SetErr(signer.ErrUnavailable)
		_, err := e.p.Sign(ctx, e.attestation(10, "a"))
		e.want(t, err, pipeline.Unavailable, pipeline.RuleBackend, true)
		if pe := pipeline.ErrorOf(err); pe.Msg != "backend unavailable for key baker: nothing signed" {
			t.Fatalf("client message %q", pe.Msg)
		}
		e.back.SetErr(nil)
		// Nothing was signed at level 10, so another payload there may be.
		if _, err := e.p.Sign(ctx, e.attestation(10, "b")); err != nil {
			t.Fatalf("after the backend came back: %v", err)
		}
	})
	t.Run("backend error is BackendFailed", func(t *testing.T) {
		e := newEnv(t)
		e.back.SetErr(errors.New("CKR_DEVICE_ERROR in slot 3"))
		_, err := e.p.Sign(ctx, e.attestation(10, "a"))
		e.want(t, err, pipeline.BackendFailed, pipeline.RuleBackend, true)
		if bytes.Contains([]byte(err.Error()), []byte("CKR")) {
			t.Fatalf("backend detail reached the client: %v", err)
		}
	})
	t.Run("audit failure withholds the signature", func(t *testing.T) {
		e := newEnv(t)
		e.audit.Fail(audit.ErrUnavailable)
		res, err := e.p.Sign(ctx, e.attestation(10, "a"))
		e.want(t, err, pipeline.Unavailable, pipeline.RuleAudit, false)
		if res.Sig != nil || res.Encoded != nil {
			t.Fatal("signature released without its audit line")
		}
		if e.audit.Len() != 0 {
			t.Fatal("record written despite the failure")
		}
	})
	t.Run("missing policy check is refused", func(t *testing.T) {
		e := newEnv(t)
		req := e.attestation(10, "a")
		req.Check = nil
		_, err := e.p.Sign(ctx, req)
		e.want(t, err, pipeline.Internal, pipeline.RuleNone, true)
		if e.signs.Load() != 0 {
			t.Fatal("signed without a policy check")
		}
	})
	t.Run("hash runs only after the policy allowed", func(t *testing.T) {
		e := newEnv(t)
		hashed := false
		req := e.attestation(10, "a")
		req.Mark, req.Digest = nil, nil
		req.Hash = func() ([]byte, error) { hashed = true; return digest("x"), nil }
		req.Check = func() error { return policy.Refuse("ethereum.sign_typed_data", "off") }
		_, err := e.p.Sign(ctx, req)
		e.want(t, err, pipeline.Refused, "ethereum.sign_typed_data", false)
		if hashed {
			t.Fatal("refused request was hashed")
		}
	})
}

// TestPipeline_RejectedRequestsAreSummarized: strangers' requests cost a
// count, not an audit line each.
func TestPipeline_RejectedRequestsAreSummarized(t *testing.T) {
	m := &audittest.Memory{}
	obs := &pipelinetest.Recorder{}
	p := pipeline.New(pipeline.Options{Audit: m, Observer: obs, SummaryInterval: time.Hour,
		Codes: map[pipeline.Chain]func(pipeline.Class, pipeline.Rule) int{pipeline.Tezos: func(pipeline.Class, pipeline.Rule) int { return 401 }}})
	for i := 0; i < 2000; i++ {
		p.Reject(pipeline.Tezos, pipeline.Caller{Addr: "10.0.0.1:1"}, pipeline.Fail(pipeline.Unauthenticated, "tezos.authorized_keys", "authentication required"))
	}
	p.Reject(pipeline.Tezos, pipeline.Caller{Addr: "10.0.0.1:1"}, pipeline.Fail(pipeline.UnknownKey, pipeline.RuleKey, "no key"))
	if n := len(obs.All()); n != 2001 {
		t.Fatalf("%d rejections counted, want 2001", n)
	}
	if n := m.Len(); n != 2 {
		t.Fatalf("%d audit records before the interval ended, want 2 (one per cause)", n)
	}
	p.Close()
	total := 0
	for _, r := range m.Records() {
		if r.Rule == "tezos.authorized_keys" {
			total += r.Count
			if r.Outcome != audit.Refused || r.Status != 401 || r.Key != "" {
				t.Errorf("summary %+v", r)
			}
		}
	}
	if total != 2000 || m.Len() != 3 {
		t.Fatalf("summaries count %d requests in %d records, want 2000 in 3", total, m.Len())
	}
}
