package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"
)

// openSQLite opens a migrated store whose retry pauses are recorded instead
// of slept.
func openSQLite(t *testing.T) (*sqlStore, *[]time.Duration) {
	t.Helper()
	s, err := Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "tx.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	ss := s.(*sqlStore)
	var slept []time.Duration
	ss.sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	return ss, &slept
}

var (
	serializationFailure = &pq.Error{Code: "40001", Message: "could not serialize access"}
	deadlock             = &pq.Error{Code: "40P01", Message: "deadlock detected"}
)

func TestInTxRetries(t *testing.T) {
	permanent := errors.New("permanent")
	tests := []struct {
		name      string
		failures  []error // returned by successive calls of fn; nil afterwards
		wantCalls int
		wantSleep int
		wantErr   error // nil: success
	}{
		{"success first time", nil, 1, 0, nil},
		{"serialization failure then success", []error{serializationFailure, serializationFailure}, 3, 2, nil},
		{"deadlock then success", []error{fmt.Errorf("add memberships: %w", deadlock)}, 2, 1, nil},
		{"permanent error is not retried", []error{permanent}, 1, 0, permanent},
		{"gives up after five attempts", []error{deadlock, deadlock, deadlock, deadlock, deadlock, deadlock}, 5, 4, deadlock},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, slept := openSQLite(t)
			calls := 0
			err := s.InTx(t.Context(), func(tx Tx) error {
				calls++
				// Each attempt writes; a failed attempt must leave nothing.
				if _, _, err := tx.UpsertUser(t.Context(), UserIdentity{ID: fmt.Sprintf("u%d", calls)}, UserParams{}, time.Now()); err != nil {
					return err
				}
				if calls <= len(tc.failures) {
					return tc.failures[calls-1]
				}
				return nil
			})
			if calls != tc.wantCalls {
				t.Errorf("fn called %d times, want %d", calls, tc.wantCalls)
			}
			if len(*slept) != tc.wantSleep {
				t.Errorf("slept %d times, want %d", len(*slept), tc.wantSleep)
			}
			if tc.wantErr == nil && err != nil {
				t.Fatalf("InTx: %v", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("InTx error = %v, want %v", err, tc.wantErr)
			}
			users, err := s.Users(t.Context(), 0, 0)
			if err != nil {
				t.Fatalf("Users: %v", err)
			}
			wantUsers := 0
			if tc.wantErr == nil {
				wantUsers = 1
			}
			if len(users) != wantUsers {
				t.Errorf("%d users stored, want %d (only the successful attempt's)", len(users), wantUsers)
			}
		})
	}
}

func TestInTxStopsWhenContextEnds(t *testing.T) {
	s, _ := openSQLite(t)
	ctx, cancel := context.WithCancel(t.Context())
	s.sleep = func(ctx context.Context, _ time.Duration) error { cancel(); return ctx.Err() }
	calls := 0
	err := s.InTx(ctx, func(Tx) error { calls++; return serializationFailure })
	if calls != 1 {
		t.Errorf("fn called %d times after the context ended, want 1", calls)
	}
	if !errors.Is(err, context.Canceled) || !errors.Is(err, serializationFailure) {
		t.Errorf("error = %v, want it to wrap both the conflict and context.Canceled", err)
	}
}

func TestBackoffBounds(t *testing.T) {
	for n := 1; n <= 10; n++ {
		step := min(10*time.Millisecond<<min(n-1, 5), 250*time.Millisecond)
		for range 50 {
			if d := backoff(n); d < step/2 || d > step {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", n, d, step/2, step)
			}
		}
	}
}

// A real SQLITE_BUSY (another connection holds the write lock and this one
// does not wait) is classified as transient.
func TestSQLiteBusyIsTransient(t *testing.T) {
	path := filepath.Join(t.TempDir(), "busy.db")
	open := func() *sql.DB {
		db, err := sql.Open("sqlite", path+"?_busy_timeout=0&_journal_mode=WAL")
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
	holder, other := open(), open()
	if _, err := holder.ExecContext(t.Context(), "CREATE TABLE x (v INTEGER)"); err != nil {
		t.Fatal(err)
	}
	conn, err := holder.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = conn.ExecContext(context.Background(), "ROLLBACK") }()
	_, err = other.ExecContext(t.Context(), "INSERT INTO x VALUES (1)")
	if err == nil {
		t.Fatal("insert succeeded while another connection held the write lock")
	}
	if !isTransient(err) {
		t.Errorf("isTransient(%v) = false", err)
	}
	if isTransient(errors.New("database is locked")) {
		t.Errorf("a plain error that merely mentions locking counted as transient")
	}
	if !isTransient(fmt.Errorf("wrapped: %w", deadlock)) || isTransient(&pq.Error{Code: "23505"}) {
		t.Errorf("PostgreSQL codes misclassified")
	}
}

func TestOpenInMemory(t *testing.T) {
	s, err := Open(t.Context(), "sqlite::memory:")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if err := s.InTx(t.Context(), func(tx Tx) error {
		_, err := tx.InsertTeams(t.Context(), []Team{{ID: "a", Alias: "A"}}, time.Now())
		return err
	}); err != nil {
		t.Fatalf("InTx: %v", err)
	}
	if _, err := s.Team(t.Context(), "a"); err != nil {
		t.Errorf("Team: %v (reads must see the same in-memory database)", err)
	}
	if s.Dialect() != DialectSQLite || !strings.HasPrefix(RedactURL("sqlite::memory:"), "sqlite:") {
		t.Errorf("Dialect() = %q", s.Dialect())
	}
}
