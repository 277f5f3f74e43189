package storetest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/store"
)

// Replicas returns n stores of the given backend over one fresh, migrated
// database, as n teamgate replicas would each open it; every store has its
// own pool and is closed at cleanup. Like New, it skips the test for
// PostgreSQL when EnvPostgresURL is unset.
func Replicas(t testing.TB, backend string, n int, opts ...store.Option) []store.Store {
	t.Helper()
	var raw string
	switch backend {
	case store.DialectSQLite:
		raw = "sqlite:" + filepath.Join(t.TempDir(), "teamgate.db")
	case store.DialectPostgres:
		raw = postgresSchemaURL(t)
	default:
		t.Fatalf("storetest: unknown backend %q (want one of %v)", backend, Backends())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := make([]store.Store, 0, n)
	for range n {
		s, err := store.Open(ctx, raw, opts...)
		if err != nil {
			t.Fatalf("storetest: open %s: %v", backend, err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("storetest: close %s: %v", backend, err)
			}
		})
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("storetest: migrate %s: %v", backend, err)
		}
		out = append(out, s)
	}
	return out
}

// RunReplicaConformance runs the tests that need several stores over one
// database, as several replicas have them. newReplicas must return n fresh
// stores sharing one fresh, migrated database (see Replicas).
func RunReplicaConformance(t *testing.T, newReplicas func(t *testing.T, n int) []store.Store) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, newReplicas func(t *testing.T, n int) []store.Store)
	}{
		{"TryLeaderAcrossReplicas", testTryLeaderAcrossReplicas},
		{"OutboxPruneAndRetryAcrossReplicas", testOutboxPruneAndRetryAcrossReplicas},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newReplicas) })
	}
}

// One replica leads at a time; when it lets go, another can take over.
func testTryLeaderAcrossReplicas(t *testing.T, newReplicas func(t *testing.T, n int) []store.Store) {
	rs := newReplicas(t, 3)
	release, ok := tryLeader(t, rs[0], "background-sync")
	if !ok {
		t.Fatal("replica 0: TryLeader of a free lock: ok = false")
	}
	for i, r := range rs {
		if _, ok := tryLeader(t, r, "background-sync"); ok {
			t.Errorf("replica %d: TryLeader while replica 0 leads: ok = true", i)
		}
	}
	if _, ok := tryLeader(t, rs[1], "other-job"); !ok {
		t.Error("replica 1: TryLeader of another name: ok = false")
	}
	release()
	release2, ok := tryLeader(t, rs[2], "background-sync")
	if !ok {
		t.Fatal("replica 2: TryLeader after replica 0 released: ok = false")
	}
	if _, ok := tryLeader(t, rs[0], "background-sync"); ok {
		t.Error("replica 0: TryLeader while replica 2 leads: ok = true")
	}
	release2()
}
