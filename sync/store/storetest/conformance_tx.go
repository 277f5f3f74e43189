package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/teamgate/teamgate/sync/store"
)

var txTests = []namedTest{
	{"RollbackOnErrorLeavesNothing", testRollbackOnError},
	{"RollbackOnPanic", testRollbackOnPanic},
	{"StatsCountStatements", testStatsCount},
	{"PingDialectMigrateAgain", testPingDialectMigrate},
}

var batchTests = []namedTest{
	{"FiveThousandIDs", func(t *testing.T, s store.Store) { runBatchSequence(t, s, "big-", 5000) }},
	{"StatementCountIndependentOfSize", testStatementCountIndependent},
}

func testRollbackOnError(t *testing.T, s store.Store) {
	seedUsers(t, s, "existing")
	seedTeams(t, s, "old")
	err := s.InTx(t.Context(), func(tx store.Tx) error {
		ctx := t.Context()
		if _, _, err := tx.UpsertUser(ctx, identity("u1"), store.UserParams{}, t0); err != nil {
			return err
		}
		if _, _, err := tx.UpsertUser(ctx, store.UserIdentity{ID: "existing", Email: "changed@example.com"}, store.UserParams{}, at(1)); err != nil {
			return err
		}
		if _, err := tx.InsertTeams(ctx, []store.Team{team("new", "New", true)}, t0); err != nil {
			return err
		}
		if _, err := tx.RenameTeams(ctx, map[string]string{"old": "Renamed"}, t0); err != nil {
			return err
		}
		if _, err := tx.AddMemberships(ctx, "u1", []string{"new", "old"}, "user", store.SourceEntra, t0); err != nil {
			return err
		}
		if err := tx.InsertSyncEvent(ctx, store.SyncEvent{UserID: "u1", At: t0, Outcome: "ok"}); err != nil {
			return err
		}
		return fmt.Errorf("reconcile: %w", errBoom)
	})
	wantErrIs(t, "InTx", err, errBoom)
	assertRolledBack(t, s)
}

func assertRolledBack(t *testing.T, s store.Store) {
	t.Helper()
	if _, err := s.User(t.Context(), "u1"); err == nil {
		t.Errorf("user u1 survived the rollback")
	}
	if u, err := s.User(t.Context(), "existing"); err != nil || u.Email != "existing@example.com" {
		t.Errorf("user existing = %+v, %v; want it unchanged", u, err)
	}
	if _, err := s.Team(t.Context(), "new"); err == nil {
		t.Errorf("team new survived the rollback")
	}
	if tm, err := s.Team(t.Context(), "old"); err != nil || tm.Alias != "Team old" {
		t.Errorf("team old = %+v, %v; want its alias unchanged", tm, err)
	}
	if ms, err := s.MembersOfTeams(t.Context(), nil); err != nil || len(ms) != 0 {
		t.Errorf("memberships = %v, %v; want none", ms, err)
	}
	if es, err := s.SyncEvents(t.Context(), store.EventFilter{}); err != nil || len(es) != 0 {
		t.Errorf("events = %v, %v; want none", es, err)
	}
}

func testRollbackOnPanic(t *testing.T, s store.Store) {
	seedUsers(t, s, "existing")
	seedTeams(t, s, "old")
	func() {
		defer func() {
			if r := recover(); r != errBoom {
				t.Errorf("recovered %v, want the panic to propagate", r)
			}
		}()
		_ = s.InTx(t.Context(), func(tx store.Tx) error {
			if _, _, err := tx.UpsertUser(t.Context(), identity("u1"), store.UserParams{}, t0); err != nil {
				return err
			}
			if _, err := tx.InsertTeams(t.Context(), []store.Team{team("new", "New", true)}, t0); err != nil {
				return err
			}
			panic(errBoom)
		})
	}()
	assertRolledBack(t, s)
	seedUsers(t, s, "after") // the store still works: the connection was released
}

func testStatsCount(t *testing.T, s store.Store) {
	before := s.Stats().Statements
	if _, err := s.Teams(t.Context(), store.TeamFilter{}); err != nil {
		t.Fatalf("Teams: %v", err)
	}
	if got := s.Stats().Statements - before; got != 1 {
		t.Errorf("Teams sent %d statements, want 1", got)
	}
}

func testPingDialectMigrate(t *testing.T, s store.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if !slices.Contains(Backends(), s.Dialect()) {
		t.Errorf("Dialect() = %q, want one of %v", s.Dialect(), Backends())
	}
	seedUsers(t, s, "u1")
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if _, err := s.User(t.Context(), "u1"); err != nil {
		t.Errorf("data lost by the second Migrate: %v", err)
	}
}

// batchOps are the list-taking operations, in an order where each finds the
// state it needs (teams exist before they are renamed, and so on).
var batchOps = []string{"InsertTeams", "TeamsByID", "RenameTeams", "SetAssigned", "AddMemberships", "MembersOfTeams", "RemoveMemberships"}

// runBatchSequence runs every batch operation on n fresh ids, checks that
// each affected all n, and returns the statements each sent.
func runBatchSequence(t *testing.T, s store.Store, prefix string, n int) map[string]int64 {
	t.Helper()
	user := prefix + "user"
	seedUsers(t, s, user)
	ids := make([]string, n)
	in := make([]store.Team, n)
	aliases := make(map[string]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("%s%05d", prefix, n-i) // reverse order on purpose
		in[i] = team(ids[i], "Team "+ids[i], true)
		aliases[ids[i]] = "Renamed " + ids[i]
	}
	ctx := t.Context()
	steps := map[string]func(tx store.Tx) (int, error){
		"InsertTeams": func(tx store.Tx) (int, error) { r, err := tx.InsertTeams(ctx, in, t0); return len(r), err },
		"TeamsByID":   func(tx store.Tx) (int, error) { r, err := tx.TeamsByID(ctx, ids); return len(r), err },
		"RenameTeams": func(tx store.Tx) (int, error) { r, err := tx.RenameTeams(ctx, aliases, t0); return len(r), err },
		"SetAssigned": func(tx store.Tx) (int, error) { r, err := tx.SetAssigned(ctx, ids, false, t0); return len(r), err },
		"AddMemberships": func(tx store.Tx) (int, error) {
			r, err := tx.AddMemberships(ctx, user, ids, "user", store.SourceEntra, t0)
			return len(r), err
		},
		"MembersOfTeams": func(store.Tx) (int, error) { r, err := s.MembersOfTeams(ctx, ids); return len(r), err },
		"RemoveMemberships": func(tx store.Tx) (int, error) {
			r, err := tx.RemoveMemberships(ctx, user, ids, store.SourceEntra)
			return len(r), err
		},
	}
	counts := make(map[string]int64, len(batchOps))
	for _, op := range batchOps {
		var got int
		before := s.Stats().Statements
		if op == "MembersOfTeams" { // a Store read, outside any transaction
			var err error
			if got, err = steps[op](nil); err != nil {
				t.Fatalf("%s(%d ids): %v", op, n, err)
			}
		} else {
			inTx(t, s, func(tx store.Tx) error {
				var err error
				got, err = steps[op](tx)
				return err
			})
		}
		counts[op] = s.Stats().Statements - before
		if got != n {
			t.Errorf("%s(%d ids) affected %d", op, n, got)
		}
	}
	return counts
}

func testStatementCountIndependent(t *testing.T, s store.Store) {
	small := runBatchSequence(t, s, "small-", 1)
	large := runBatchSequence(t, s, "large-", 300)
	for _, op := range batchOps {
		if small[op] != large[op] {
			t.Errorf("%s sent %d statements for 1 id but %d for 300", op, small[op], large[op])
		}
		t.Logf("%s: %d statements (including BEGIN and COMMIT)", op, small[op])
	}
}
