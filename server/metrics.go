package server

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/pipeline"
)

// Metrics are keyward's Prometheus metrics, fed by the signing pipeline.
type Metrics struct {
	Registry         *prometheus.Registry
	requests         *prometheus.CounterVec
	latency          *prometheus.HistogramVec
	backendLatency   *prometheus.HistogramVec
	refusals         *prometheus.CounterVec
	rejected         *prometheus.CounterVec
	backendErrors    *prometheus.CounterVec
	watermarkErrors  prometheus.Counter
	reloads          *prometheus.CounterVec
	auditChainBreaks prometheus.Counter

	// Children resolved once per label set: a label lookup hashes every
	// label value, on every request.
	decisions sync.Map // decisionLabels → *decisionSeries
}

type decisionLabels struct {
	chain pipeline.Chain
	key   string
	kind  string
	class pipeline.Class
	rule  pipeline.Rule
}

type decisionSeries struct {
	requests prometheus.Counter
	latency  prometheus.Observer
	refusal  prometheus.Counter // nil unless the class is a refusal
	backend  prometheus.Counter // nil unless a backend failed
	store    bool               // the watermark store failed
}

// NewMetrics registers keyward's metrics on a fresh registry.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_sign_requests_total", Help: "Signing requests by chain, key, kind and outcome (signed, refused, error); key is empty for requests refused before their key and caller were known.",
		}, []string{"chain", "key", "kind", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "keyward_request_duration_seconds", Help: "Time from request arrival to decision.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"chain", "outcome"}),
		backendLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "keyward_backend_sign_duration_seconds", Help: "Time the key backend took to sign.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}, []string{"backend"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_refusals_total", Help: "Refused requests by the rule that refused them (watermark, tezos.allow, ethereum.to, tezos.authorized_keys, ...).",
		}, []string{"chain", "rule"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_rejected_requests_total", Help: "Requests refused before their key and caller were known (malformed, too_large, unauthenticated, refused, unknown_key), by rule; summarized in the audit log, not one line each.",
		}, []string{"chain", "class", "rule"}),
		backendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_backend_errors_total", Help: "Errors from key backends.",
		}, []string{"chain", "key"}),
		watermarkErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_watermark_store_errors_total", Help: "Requests refused because the watermark store could not be read or written.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_config_reloads_total", Help: "Configuration reloads (SIGHUP) by outcome: ok, or failed (the previous configuration stays; the log says why).",
		}, []string{"outcome"}),
		auditChainBreaks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_audit_chain_breaks_total", Help: "Audit logs found at start with their tail missing or edited (not matching the anchor); a chain-break record was written. Alert on any.",
		}),
	}
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("failed")
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "keyward_build_info", Help: "Build information."}, []string{"version"})
	build.WithLabelValues(ReadBuildInfo().Version).Set(1)
	reg.MustRegister(m.requests, m.latency, m.backendLatency, m.refusals, m.rejected, m.backendErrors, m.watermarkErrors, m.reloads, m.auditChainBreaks, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

var _ pipeline.Observer = (*Metrics)(nil)

func (m *Metrics) series(l decisionLabels) *decisionSeries {
	if s, ok := m.decisions.Load(l); ok {
		return s.(*decisionSeries)
	}
	chain, outcome := l.chain.String(), l.class.AuditOutcome()
	kind := l.kind
	if kind == "" {
		kind = "unknown"
	}
	s := &decisionSeries{
		requests: m.requests.WithLabelValues(chain, l.key, kind, outcome),
		latency:  m.latency.WithLabelValues(chain, outcome),
	}
	switch l.class {
	case pipeline.Refused, pipeline.Conflict, pipeline.Unauthenticated, pipeline.UnknownKey:
		s.refusal = m.refusals.WithLabelValues(chain, string(l.rule))
	case pipeline.Unavailable, pipeline.BackendFailed:
		switch l.rule {
		case pipeline.RuleBackend:
			s.backend = m.backendErrors.WithLabelValues(chain, l.key)
		case pipeline.RuleWatermark:
			s.store = true
		}
	}
	v, _ := m.decisions.LoadOrStore(l, s)
	return v.(*decisionSeries)
}

// Decision counts one decision about an identified key.
func (m *Metrics) Decision(chain pipeline.Chain, key *keyring.Key, kind string, class pipeline.Class, rule pipeline.Rule, elapsed time.Duration) {
	if m == nil {
		return
	}
	name := ""
	if key != nil {
		name = key.Name
	}
	s := m.series(decisionLabels{chain: chain, key: name, kind: kind, class: class, rule: rule})
	s.requests.Inc()
	s.latency.Observe(elapsed.Seconds())
	if s.refusal != nil {
		s.refusal.Inc()
	}
	if s.backend != nil {
		s.backend.Inc()
	}
	if s.store {
		m.watermarkErrors.Inc()
	}
}

// Rejected counts one request refused before its key and caller were known.
func (m *Metrics) Rejected(chain pipeline.Chain, class pipeline.Class, rule pipeline.Rule) {
	if m == nil {
		return
	}
	s := m.series(decisionLabels{chain: chain, class: class, rule: rule, kind: "unknown"})
	s.requests.Inc()
	if s.refusal != nil {
		s.refusal.Inc()
	}
	m.rejected.WithLabelValues(chain.String(), class.String(), string(rule)).Inc()
}

// reloaded counts one configuration reload.
func (m *Metrics) reloaded(err error) {
	outcome := "ok"
	if err != nil {
		outcome = "failed"
	}
	m.reloads.WithLabelValues(outcome).Inc()
}
