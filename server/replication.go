package server

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyward/keyward/config"
	"github.com/keyward/keyward/watermark"
)

// setupReplication applies watermark_replication to a replicated watermark
// store (first check, logged) and exports its replication state as metrics.
// require-sync on a store that is not replicated is a start-up error.
func (s *Server) setupReplication(ctx context.Context, cfg *config.Config) error {
	v := cfg.WatermarkReplication
	if v == "" {
		v = config.DefaultWatermarkReplication
	}
	mode, err := watermark.ParseReplicationMode(v)
	if err != nil {
		return err
	}
	r, ok := s.store.(watermark.Replicated)
	if !ok {
		if mode == watermark.RequireSync {
			scheme := "this"
			if u, err := url.Parse(cfg.Watermark); err == nil {
				scheme = u.Scheme + "://"
			}
			return fmt.Errorf("watermark_replication: require-sync needs a replicated watermark store (postgres://…); a %s store is not", scheme)
		}
		return nil
	}
	if err := r.SetReplicationMode(ctx, mode, s.log); err != nil {
		return fmt.Errorf("watermark_replication: %w", err)
	}
	s.metrics.Registry.MustRegister(replicationCollector{r})
	return nil
}

// replicationDetails is the /readyz line on the watermark store's
// replication ("" when the store is not replicated). Under require-sync a
// state other than sync also makes the store not ready (its Ready fails).
func (s *Server) replicationDetails(ctx context.Context) string {
	r, ok := s.store.(watermark.Replicated)
	if !ok {
		return ""
	}
	return "watermark replication: " + r.ReplicationStatus(ctx).String() + "\n"
}

var (
	replicationStateDesc = prometheus.NewDesc("keyward_watermark_replication",
		"Replication of the watermark database: 1 for the state of the last check (sync: commits acknowledged by synchronous standbys; async: they wait for none; blocked: they wait for standbys that are not streaming; unknown).",
		[]string{"state"}, nil)
	syncStandbysDesc = prometheus.NewDesc("keyward_watermark_sync_standbys",
		"Synchronous standbys streaming from the watermark database at the last check.", nil, nil)
)

// replicationCollector reports the store's replication check at each
// scrape (made anew when older than the store's check interval).
type replicationCollector struct{ r watermark.Replicated }

func (c replicationCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- replicationStateDesc
	ch <- syncStandbysDesc
}

func (c replicationCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st := c.r.ReplicationStatus(ctx)
	for _, state := range watermark.ReplicationStates {
		v := 0.0
		if state == st.State {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(replicationStateDesc, prometheus.GaugeValue, v, string(state))
	}
	ch <- prometheus.MustNewConstMetric(syncStandbysDesc, prometheus.GaugeValue, float64(st.SyncStandbys))
}
