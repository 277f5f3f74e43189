package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/teamgate/teamgate/sync/teamsync"
)

// syncMetrics are the background sync's and session re-validation's.
type syncMetrics struct {
	runs          *prometheus.CounterVec
	runSeconds    prometheus.Histogram
	runChanges    *prometheus.CounterVec
	runUsers      *prometheus.CounterVec
	revalidations *prometheus.CounterVec
}

func newSyncMetrics(reg prometheus.Registerer) *syncMetrics {
	s := &syncMetrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "teamgate_background_sync_runs_total",
			Help: "Background sync runs this replica made, by outcome (ok, error) and mode (full, incremental).",
		}, []string{"outcome", "mode"}),
		runSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "teamgate_background_sync_duration_seconds", Help: "Duration of background sync runs, Graph reads included.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 16),
		}),
		runChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "teamgate_background_sync_changes_total", Help: "What background sync runs changed, by kind.",
		}, []string{"change"}),
		runUsers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "teamgate_background_sync_users_total", Help: "Users background sync runs brought up to date, by outcome (ok, failed).",
		}, []string{"outcome"}),
		revalidations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "teamgate_session_revalidations_total",
			Help: "Session re-validations by outcome: ok, failed (Graph or database), or why sessions ended (account_disabled, account_deleted, not_assigned).",
		}, []string{"outcome"}),
	}
	reg.MustRegister(s.runs, s.runSeconds, s.runChanges, s.runUsers, s.revalidations)
	return s
}

// observeBackgroundRun is teamsync.BackgroundConfig.OnRun.
func (m *metrics) observeBackgroundRun(res teamsync.RunResult, err error) {
	s := m.sync
	outcome, mode := "ok", "incremental"
	if err != nil {
		outcome = "error"
	}
	if res.Full {
		mode = "full"
	}
	s.runs.WithLabelValues(outcome, mode).Inc()
	s.runSeconds.Observe(res.Duration.Seconds())
	for change, n := range map[string]int{
		"teams_created":       len(res.Teams.TeamsCreated),
		"teams_renamed":       len(res.Teams.TeamsRenamed),
		"teams_unassigned":    len(res.Teams.TeamsUnassigned),
		"memberships_added":   res.MembershipsAdded,
		"memberships_removed": res.MembershipsRemoved,
		"sessions_ended":      int(res.SessionsEnded),
	} {
		s.runChanges.WithLabelValues(change).Add(float64(n))
	}
	s.runUsers.WithLabelValues("ok").Add(float64(res.UsersChecked - res.UsersFailed))
	s.runUsers.WithLabelValues("failed").Add(float64(res.UsersFailed))
}

// observeRevalidation counts one session re-validation by outcome.
func (m *metrics) observeRevalidation(outcome string) {
	m.sync.revalidations.WithLabelValues(outcome).Inc()
}
