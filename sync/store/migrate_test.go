package store

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

func versions(t *testing.T, dialect string) []int {
	t.Helper()
	ms, err := loadMigrations(dialect)
	if err != nil {
		t.Fatalf("loadMigrations(%s): %v", dialect, err)
	}
	var out []int
	for _, m := range ms {
		out = append(out, m.Version)
	}
	return out
}

func TestMigrationNumbering(t *testing.T) {
	lite, pg := versions(t, DialectSQLite), versions(t, DialectPostgres)
	for name, vs := range map[string][]int{DialectSQLite: lite, DialectPostgres: pg} {
		if len(vs) == 0 {
			t.Errorf("%s: no migrations", name)
		}
		for i, v := range vs {
			if v != i+1 {
				t.Errorf("%s: migration #%d is numbered %d; numbering must start at 1 without gaps", name, i+1, v)
			}
		}
	}
	if !slices.Equal(lite, pg) {
		t.Errorf("sqlite migrations %v and postgres migrations %v differ", lite, pg)
	}
}

// Several replicas starting at once (here: several stores on one database)
// must all migrate successfully, and apply each migration exactly once.
func TestMigrateConcurrently(t *testing.T) {
	urls := map[string]string{DialectSQLite: "sqlite:" + filepath.Join(t.TempDir(), "m.db")}
	if pgURL := os.Getenv("TEAMGATE_TEST_POSTGRES_URL"); pgURL != "" {
		urls[DialectPostgres] = freshPostgresSchema(t, pgURL)
	}
	for name, url := range urls {
		t.Run(name, func(t *testing.T) {
			const replicas = 4
			stores := make([]Store, replicas)
			for i := range stores {
				s, err := Open(t.Context(), url)
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				t.Cleanup(func() { _ = s.Close() })
				stores[i] = s
			}
			errs := make([]error, replicas)
			var wg sync.WaitGroup
			for i, s := range stores {
				wg.Go(func() { errs[i] = s.Migrate(t.Context()) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("replica %d: Migrate: %v", i, err)
				}
			}
			want := len(versions(t, name))
			if n := appliedCount(t, stores[0]); n != want {
				t.Errorf("schema_migrations has %d rows, want %d", n, want)
			}
			if err := stores[1].Migrate(t.Context()); err != nil {
				t.Fatalf("Migrate again: %v", err)
			}
			if n := appliedCount(t, stores[0]); n != want {
				t.Errorf("after migrating again, schema_migrations has %d rows, want %d", n, want)
			}
		})
	}
}

func appliedCount(t *testing.T, s Store) int {
	t.Helper()
	var n int
	if err := s.(*sqlStore).reader().get(t.Context(), &n, "SELECT count(*) FROM schema_migrations"); err != nil {
		t.Fatalf("count schema_migrations: %v", err)
	}
	return n
}

// freshPostgresSchema mirrors storetest's isolation without importing it
// (storetest imports this package).
func freshPostgresSchema(t *testing.T, base string) string {
	t.Helper()
	s, err := Open(context.Background(), base)
	if err != nil {
		t.Fatalf("Open postgres: %v", err)
	}
	schema := "teamgate_migrate_test_" + randomHex(t)
	w := s.(*sqlStore).writer()
	if _, err := w.exec(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := w.exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
		_ = s.Close()
	})
	sep := "?"
	if slices.Contains([]byte(base), '?') {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}
