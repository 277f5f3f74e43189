package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testURLs names a fresh database per available backend.
func testURLs(t *testing.T) map[string]string {
	t.Helper()
	urls := map[string]string{DialectSQLite: "sqlite:" + filepath.Join(t.TempDir(), "m.db")}
	if pgURL := os.Getenv("TEAMGATE_TEST_POSTGRES_URL"); pgURL != "" {
		urls[DialectPostgres] = freshPostgresSchema(t, pgURL)
	}
	return urls
}

func openStore(t *testing.T, url string) *sqlStore {
	t.Helper()
	s, err := Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s.(*sqlStore)
}

// Migration 0006 on a database at 0005 that holds users, sessions and sync
// events: the old rows read back with the new fields' defaults, and users
// count as validated at their last sign-in.
func TestMigration0006KeepsData(t *testing.T) {
	for name, url := range testURLs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			s := openStore(t, url)
			ms, err := loadMigrations(name)
			if err != nil {
				t.Fatal(err)
			}
			if ms[5].Version != 6 {
				t.Fatalf("migration #6 is %s", ms[5].Name)
			}
			if err := s.migrate(ctx, s.w, ms[:5]); err != nil {
				t.Fatalf("migrate to 0005: %v", err)
			}
			t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
			w := s.writer()
			for _, st := range []struct {
				sql  string
				args []any
			}{
				{"INSERT INTO users (id, email, created_at, last_login_at) VALUES ($1, $2, $3, $4)",
					[]any{"u1", "u1@example.com", s.d.time(t0), s.d.time(t0.Add(time.Hour))}},
				{"INSERT INTO users (id, email, created_at) VALUES ($1, $2, $3)", []any{"u2", "u2@example.com", s.d.time(t0)}},
				{"INSERT INTO sessions (id, user_id, created_at, expires_at, last_seen_at) VALUES ($1, $2, $3, $4, $5)",
					[]any{"s1", "u1", s.d.time(t0), s.d.time(t0.Add(24 * time.Hour)), s.d.time(t0.Add(time.Hour))}},
				{"INSERT INTO sync_events (user_id, at, outcome, error, actor) VALUES ($1, $2, $3, $4, $5)",
					[]any{"u1", s.d.time(t0), OutcomeOK, "", ""}},
			} {
				if _, err := w.exec(ctx, st.sql, st.args...); err != nil {
					t.Fatalf("seed at 0005: %s: %v", st.sql, err)
				}
			}

			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("Migrate from 0005: %v", err)
			}
			if n := appliedCount(t, s); n != len(ms) {
				t.Errorf("schema_migrations has %d rows, want %d", n, len(ms))
			}

			u1, err := s.User(ctx, "u1")
			if err != nil {
				t.Fatal(err)
			}
			if u1.ValidatedAt == nil || !u1.ValidatedAt.Equal(t0.Add(time.Hour)) {
				t.Errorf("u1 ValidatedAt = %v, want its last sign-in %v", u1.ValidatedAt, t0.Add(time.Hour))
			}
			if u2, err := s.User(ctx, "u2"); err != nil || u2.ValidatedAt != nil {
				t.Errorf("u2 (never signed in) = %+v, %v; want ValidatedAt nil", u2, err)
			}
			now := t0.Add(2 * time.Hour)
			a, err := s.ActiveSession(ctx, "s1", now)
			if err != nil || a.EndedReason != "" || !a.LastSeenAt.Equal(t0.Add(time.Hour)) {
				t.Errorf("old session = %+v, %v; want live, last seen at +1h", a, err)
			}
			if _, err := s.Session(ctx, "s1", now); err != nil {
				t.Errorf("Session(old session): %v", err)
			}
			evs, err := s.SyncEvents(ctx, EventFilter{Kind: EventSignIn})
			if err != nil || len(evs) != 1 || evs[0].Kind != EventSignIn || evs[0].Detail != "" {
				t.Errorf("old events by kind signin = %+v, %v; want the one event", evs, err)
			}
			if _, _, err := s.SyncState(ctx, "groups.delta"); !errors.Is(err, ErrNotFound) {
				t.Errorf("SyncState on a migrated database: %v, want ErrNotFound", err)
			}
			if n, err := s.EndUserSessions(ctx, "u1", "account disabled", now); err != nil || n != 1 {
				t.Errorf("EndUserSessions of the old session = %d, %v; want 1", n, err)
			}
		})
	}
}

// The PostgreSQL leadership lock lives and dies with its connection: when
// the leader's connection ends (a crashed replica, a network cut), another
// replica can take over, and the old leader's release does no harm.
func TestTryLeaderLostWithConnection(t *testing.T) {
	pgURL := os.Getenv("TEAMGATE_TEST_POSTGRES_URL")
	if pgURL == "" {
		t.Skip("set TEAMGATE_TEST_POSTGRES_URL to run PostgreSQL tests")
	}
	url := freshPostgresSchema(t, pgURL)
	a, b := openStore(t, url), openStore(t, url)
	ctx := t.Context()
	const name = "background-sync"
	release, ok, err := a.TryLeader(ctx, name)
	if err != nil || !ok {
		t.Fatalf("a: TryLeader = %v, %v", ok, err)
	}
	if _, ok, _ := b.TryLeader(ctx, name); ok {
		t.Fatal("b: TryLeader while a leads: ok = true")
	}

	// objid holds the key's 32 bits unsigned.
	const holder = "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = 7306 AND objsubid = 2" +
		" AND database = (SELECT oid FROM pg_database WHERE datname = current_database())" +
		" AND objid = CAST(CAST(hashtext(coalesce(current_schema(), '') || '/' || $1) AS bigint) & 4294967295 AS oid)"
	var pid int
	if err := b.writer().get(ctx, &pid, holder, name); err != nil {
		t.Fatalf("find the leader's connection: %v", err)
	}
	var terminated bool
	if err := b.writer().get(ctx, &terminated, "SELECT pg_terminate_backend($1, 5000)", pid); err != nil || !terminated {
		t.Fatalf("terminate the leader's connection: %v, %v", terminated, err)
	}

	releaseB, ok, err := b.TryLeader(ctx, name)
	if err != nil || !ok {
		t.Fatalf("b: TryLeader after a's connection died = %v, %v; want ok", ok, err)
	}
	defer releaseB()
	release() // the connection is gone: nothing to unlock, nothing to panic about
	if _, ok, err := a.TryLeader(ctx, name); err != nil || ok {
		t.Errorf("a: TryLeader while b leads = %v, %v; want false, nil", ok, err)
	}
	if err := a.Ping(ctx); err != nil {
		t.Errorf("a unusable after losing its leader connection: %v", err)
	}
}
