package main

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/teamgate/teamgate/sync/provision"
)

// activeSessionsTTL is how long a count of active sessions is reused, so
// that frequent scrapes (several Prometheus servers, a dashboard) do not
// each count the sessions table.
const activeSessionsTTL = 5 * time.Second

// cachedCount is a database count read at scrape time and reused for ttl.
// A scrape during a refresh waits for it rather than sending another query.
type cachedCount struct {
	read func(ctx context.Context, now time.Time) (int64, error)
	ttl  time.Duration

	mu    sync.Mutex
	now   func() time.Time // tests move it
	at    time.Time
	val   float64
	valid bool
}

func (c *cachedCount) value() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.valid && now.Sub(c.at) < c.ttl && !now.Before(c.at) {
		return c.val
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := c.read(ctx, now)
	if err != nil {
		c.valid = false
		return math.NaN() // the database is down: say "unknown", not 0
	}
	c.val, c.at, c.valid = float64(n), now, true
	return c.val
}

// watchSessions exports the number of live sessions in the database (on
// every replica the same figure: do not sum it across replicas).
func (m *metrics) watchSessions(st interface {
	CountActiveSessions(ctx context.Context, now time.Time) (int64, error)
}) {
	m.activeSessions = &cachedCount{read: st.CountActiveSessions, ttl: activeSessionsTTL, now: time.Now}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "teamgate_active_sessions",
		Help: "Unexpired sessions in the database, shared by every replica (read at most every 5s; idle timeouts not applied).",
	}, m.activeSessions.value))
}

// newDeliveryMetrics registers the LiteLLM delivery counter.
func newDeliveryMetrics(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "teamgate_litellm_deliveries_total",
		Help: "Attempts of this replica's outbox worker to deliver LiteLLM operations, by kind and outcome (ok, retry: failed for now, parked: refused for good).",
	}, []string{"kind", "outcome"})
	reg.MustRegister(c)
	return c
}

// observeDelivery is the provisioning worker's observer hook.
func (m *metrics) observeDelivery(d provision.Delivery) {
	m.deliveries.WithLabelValues(d.Kind, d.Outcome).Inc()
}
