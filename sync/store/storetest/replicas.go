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
