package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/keyward/keyward/audit"
)

// Metrics are keyward's Prometheus metrics, fed from audit records.
type Metrics struct {
	Registry        *prometheus.Registry
	requests        *prometheus.CounterVec
	latency         *prometheus.HistogramVec
	backendLatency  *prometheus.HistogramVec
	refusals        *prometheus.CounterVec
	backendErrors   *prometheus.CounterVec
	watermarkErrors prometheus.Counter
}

// Version is set by the build (-ldflags "-X github.com/keyward/keyward/server.Version=…").
var Version = "dev"

// NewMetrics registers keyward's metrics on a fresh registry.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_sign_requests_total", Help: "Signing requests by chain, key, kind and outcome (signed, refused, error).",
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
			Name: "keyward_refusals_total", Help: "Refused requests by the rule that refused them (watermark, tezos.allow, ethereum.to, ...).",
		}, []string{"chain", "rule"}),
		backendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_backend_errors_total", Help: "Errors from key backends.",
		}, []string{"chain", "key"}),
		watermarkErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_watermark_store_errors_total", Help: "Requests refused because the watermark store could not be read or written.",
		}),
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "keyward_build_info", Help: "Build information."}, []string{"version"})
	build.WithLabelValues(Version).Set(1)
	reg.MustRegister(m.requests, m.latency, m.backendLatency, m.refusals, m.backendErrors, m.watermarkErrors, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Observe counts one decision.
func (m *Metrics) Observe(rec *audit.Record, start time.Time) {
	if m == nil {
		return
	}
	kind := rec.Kind
	if kind == "" {
		kind = "unknown"
	}
	m.requests.WithLabelValues(rec.Chain, rec.Key, kind, rec.Outcome).Inc()
	m.latency.WithLabelValues(rec.Chain, rec.Outcome).Observe(time.Since(start).Seconds())
	switch rec.Outcome {
	case audit.Refused:
		m.refusals.WithLabelValues(rec.Chain, rec.Rule).Inc()
	case audit.Failed:
		switch rec.Rule {
		case "backend":
			m.backendErrors.WithLabelValues(rec.Chain, rec.Key).Inc()
		case "watermark":
			m.watermarkErrors.Inc()
		}
	}
}

// ObserveBackend records one backend signing latency.
func (m *Metrics) ObserveBackend(backend string, d time.Duration) {
	if m == nil {
		return
	}
	m.backendLatency.WithLabelValues(backend).Observe(d.Seconds())
}
