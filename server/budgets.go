package server

import (
	"context"
	"math/big"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/limits"
)

// budgetCollector exports keyward_budget_remaining and
// keyward_budget_spent for every key's rolling limits, read from the
// budget store at each scrape (as `keyward limits show` reads them).
type budgetCollector struct {
	store     limits.Store
	ring      func() *keyring.Ring
	remaining *prometheus.Desc
	spent     *prometheus.Desc
}

func newBudgetCollector(store limits.Store, ring func() *keyring.Ring) *budgetCollector {
	return &budgetCollector{
		store: store, ring: ring,
		remaining: prometheus.NewDesc("keyward_budget_remaining",
			"What a key may still sign within a rolling limit's window (mutez, wei, requests or raw token units, as the unit label says).",
			[]string{"key", "limit", "unit"}, nil),
		spent: prometheus.NewDesc("keyward_budget_spent",
			"What a key signed within a rolling limit's window.",
			[]string{"key", "limit", "unit"}, nil),
	}
}

func (c *budgetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.remaining
	ch <- c.spent
}

func (c *budgetCollector) Collect(ch chan<- prometheus.Metric) {
	ring := c.ring()
	if ring == nil || c.store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := time.Now()
	for _, k := range ring.Keys() {
		ls := k.Tezos.Limits()
		if k.Ethereum != nil {
			ls = append(append([]limits.Limit(nil), ls...), k.Ethereum.Limits()...)
		}
		if len(ls) == 0 {
			continue
		}
		us, err := c.store.Usage(ctx, k.Name, ls, now)
		if err != nil {
			continue // the store's errors show in /readyz and the refusals
		}
		for _, u := range us {
			ch <- prometheus.MustNewConstMetric(c.remaining, prometheus.GaugeValue, float(u.Remaining), k.Name, u.Rule, u.Unit)
			ch <- prometheus.MustNewConstMetric(c.spent, prometheus.GaugeValue, float(u.Spent), k.Name, u.Rule, u.Unit)
		}
	}
}

func float(v *big.Int) float64 {
	if v == nil {
		return 0
	}
	f, _ := new(big.Float).SetInt(v).Float64()
	return f
}
