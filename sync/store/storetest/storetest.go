// Package storetest opens fresh, migrated, isolated stores for tests on every
// backend, and holds the conformance suite every backend must pass.
//
// PostgreSQL is used only when TEAMGATE_TEST_POSTGRES_URL names a server;
// each store gets a schema of its own (dropped at cleanup), so tests may run
// in parallel against one database.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/store"
)

// EnvPostgresURL names the PostgreSQL server tests may use.
const EnvPostgresURL = "TEAMGATE_TEST_POSTGRES_URL"

// EnvRequirePostgres, when set (CI sets it), turns a missing PostgreSQL into
// a test failure instead of a skip.
const EnvRequirePostgres = "TEAMGATE_REQUIRE_POSTGRES"

const skipPostgres = "PostgreSQL tests skipped: set " + EnvPostgresURL +
	"=postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run them"

// Backends lists the backend names New accepts.
func Backends() []string { return []string{store.DialectSQLite, store.DialectPostgres} }

// New returns a fresh, migrated store of the given backend that only this
// test sees, closed (and on PostgreSQL dropped) at cleanup. It skips the test
// for PostgreSQL when EnvPostgresURL is unset. opts are passed to store.Open.
func New(t testing.TB, backend string, opts ...store.Option) store.Store {
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
	return s
}

// ForEachBackend runs fn as one subtest per backend, each with a fresh store.
func ForEachBackend(t *testing.T, fn func(t *testing.T, s store.Store)) {
	t.Helper()
	for _, b := range Backends() {
		t.Run(b, func(t *testing.T) { fn(t, New(t, b)) })
	}
}

// PostgresURL returns the URL of a fresh, empty PostgreSQL schema of this
// test's own (dropped at cleanup), for tests that start teamgate processes
// against it. It skips (or fails, see EnvRequirePostgres) without PostgreSQL.
func PostgresURL(t testing.TB) string {
	t.Helper()
	return postgresSchemaURL(t)
}

// postgresSchemaURL creates a schema with a random name and returns a URL
// whose every connection uses it: lib/pq sends unknown URL parameters such as
// search_path as run-time parameters at connection start-up.
func postgresSchemaURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgresURL)
	if base == "" {
		if os.Getenv(EnvRequirePostgres) != "" {
			t.Fatalf("storetest: %s is set, so PostgreSQL is required, but %s is empty", EnvRequirePostgres, EnvPostgresURL)
		}
		t.Skip(skipPostgres)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("storetest: %s is not a URL", EnvPostgresURL) // never echo it: it may hold a password
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema := "teamgate_test_" + hex.EncodeToString(b[:])

	admin, err := sql.Open("postgres", base)
	if err != nil {
		t.Fatalf("storetest: open %s: %v", store.RedactURL(base), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		_ = admin.Close()
		t.Fatalf("storetest: create schema on %s: %v", store.RedactURL(base), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("storetest: drop schema %s: %v", schema, err)
		}
		_ = admin.Close()
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// KillSessionListener terminates w's listening backend, found by its own
// application_name and channel (no other test's listener is touched), and
// returns how many backends it terminated.
func KillSessionListener(t testing.TB, w *store.SessionWatch) int {
	t.Helper()
	db, err := sql.Open("postgres", os.Getenv(EnvPostgresURL))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1 AND query = $2",
		w.ApplicationName(), `LISTEN "`+w.Channel()+`"`).Scan(&n); err != nil {
		t.Fatalf("storetest: terminate the session listener: %v", err)
	}
	return n
}
