package teamsync_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/teamgate/teamgate/sync/fakeentra"
	"github.com/teamgate/teamgate/sync/graph"
	"github.com/teamgate/teamgate/sync/store"
	"github.com/teamgate/teamgate/sync/store/storetest"
	"github.com/teamgate/teamgate/sync/teamsync"
)

func TestInAdminGroup(t *testing.T) {
	admins := map[string]bool{"admins": true, "ops": true}
	tests := []struct {
		name   string
		groups []graph.Group
		want   bool
	}{
		{"no groups", nil, false},
		{"other groups", []graph.Group{{ID: "eng"}}, false},
		{"one of them", []graph.Group{{ID: "eng"}, {ID: "ops"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := teamsync.InAdminGroup(tt.groups, admins); got != tt.want {
				t.Errorf("InAdminGroup = %v, want %v", got, tt.want)
			}
		})
	}
}

// The flag follows the user's groups at every sign-in, whether or not the
// administrators group is assigned to the app (and so is a team).
func TestReconcileRecordsAdminGroup(t *testing.T) {
	storetest.ForEachBackend(t, func(t *testing.T, st store.Store) {
		dir := seedDir()
		dir.Groups = append(dir.Groups, fakeentra.Group{ID: "admins", DisplayName: "teamgate admins"})
		h := newHarness(t, st, setup{dir: dir, appScoped: true})
		h.recon = teamsync.New(h.graph, st, defaults, teamsync.WithLogger(slog.New(slog.DiscardHandler)),
			teamsync.WithAdminGroups("admins", ""))
		inAdmin := func(user string) bool {
			t.Helper()
			p, err := st.UserPrefs(context.Background(), user)
			if err != nil {
				t.Fatal(err)
			}
			return p.InAdminGroup
		}

		h.reconcile(t, "alice")
		if inAdmin("alice") {
			t.Error("alice is flagged before joining the group")
		}
		h.tenant.AddMember("admins", "alice")
		h.reconcile(t, "alice")
		h.reconcile(t, "bob")
		if !inAdmin("alice") || inAdmin("bob") {
			t.Errorf("after alice joined: alice %v, bob %v", inAdmin("alice"), inAdmin("bob"))
		}
		equal(t, "alice's teams (the admin group is not assigned)", userTeamIDs(t, st, "alice"), []string{"eng", "ops"})
		h.tenant.RemoveMember("admins", "alice")
		h.reconcile(t, "alice")
		if inAdmin("alice") {
			t.Error("alice is still flagged after leaving the group")
		}
	})
}
