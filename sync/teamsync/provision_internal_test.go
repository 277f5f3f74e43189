package teamsync

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/teamgate/teamgate/sync/store"
)

func TestProvisionOps(t *testing.T) {
	budget := 100.0
	user := store.User{ID: "u1", Email: "u1@example.com", UserRole: "internal_user", BudgetDuration: "7d", Models: []string{"m"}}
	plan := Plan{
		Create: []store.Team{
			{ID: "new1", Alias: "New One", MaxBudget: &budget, BudgetDuration: "30d", Models: []string{"gpt"}},
			{ID: "new2", Alias: "New Two"},
		},
		Rename: map[string]string{"ren": "Renamed"},
	}
	on := Provisioning{Enabled: true, BlockUnassignedTeams: true}
	tests := []struct {
		name        string
		prov        Provisioning
		userCreated bool
		changes     Changes
		want        []string // kind:team:user
	}{
		{name: "nothing changed", prov: on},
		{
			name: "first sign-in in delivery order", prov: on, userCreated: true,
			changes: Changes{TeamsCreated: []string{"new1", "new2"}, MembershipsAdded: []string{"new1", "new2"}},
			want:    []string{"user_new::u1", "team_new:new1:", "team_new:new2:", "member_add:new1:u1", "member_add:new2:u1"},
		},
		{
			// Under a concurrent sign-in another reconcile created new2:
			// only what this one actually changed is sent.
			name: "only what was actually changed", prov: on,
			changes: Changes{TeamsCreated: []string{"new1"}},
			want:    []string{"team_new:new1:"},
		},
		{
			name: "everything, blocks last", prov: on,
			changes: Changes{
				TeamsRenamed: []string{"ren"}, TeamsAssigned: []string{"back"}, TeamsUnassigned: []string{"gone"},
				MembershipsAdded: []string{"back"}, MembershipsRemoved: []string{"left"},
			},
			want: []string{"team_update:ren:", "team_unblock:back:", "member_add:back:u1", "member_delete:left:u1", "team_block:gone:"},
		},
		{
			name: "no blocks when block_unassigned_teams is off", prov: Provisioning{Enabled: true},
			changes: Changes{TeamsUnassigned: []string{"gone"}, TeamsAssigned: []string{"back"}},
			want:    []string{"team_unblock:back:"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ops := provisionOps(tc.prov, user, tc.userCreated, plan, tc.changes)
			var got []string
			for _, o := range ops {
				got = append(got, o.Kind+":"+o.TeamID+":"+o.UserID)
				if !json.Valid(o.Body) {
					t.Errorf("%s body is not JSON: %s", o.Kind, o.Body)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("ops = %q, want %q", got, tc.want)
			}
		})
	}
}

// Bodies carry the params a team or user was created with, and the new alias.
func TestProvisionOpBodies(t *testing.T) {
	budget := 100.0
	user := store.User{ID: "u1", Email: "u1@example.com", UserRole: "internal_user_viewer", BudgetDuration: "7d", Models: []string{"m"}}
	plan := Plan{
		Create: []store.Team{{ID: "t1", Alias: "Team One", MaxBudget: &budget, BudgetDuration: "30d", Models: []string{"gpt"}}},
		Rename: map[string]string{"t2": "Two"},
	}
	ops := provisionOps(Provisioning{Enabled: true}, user, true, plan, Changes{TeamsCreated: []string{"t1"}, TeamsRenamed: []string{"t2"}})
	if len(ops) != 3 {
		t.Fatalf("got %d ops, want 3", len(ops))
	}
	decode := func(b []byte) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	u := decode(ops[0].Body)
	if u["user_id"] != "u1" || u["sso_user_id"] != "u1" || u["user_email"] != "u1@example.com" || u["user_role"] != "internal_user_viewer" ||
		u["budget_duration"] != "7d" || u["auto_create_key"] != false {
		t.Errorf("user_new body = %v", u)
	}
	tm := decode(ops[1].Body)
	if tm["team_id"] != "t1" || tm["team_alias"] != "Team One" || tm["max_budget"] != 100.0 || tm["budget_duration"] != "30d" {
		t.Errorf("team_new body = %v", tm)
	}
	if up := decode(ops[2].Body); up["team_id"] != "t2" || up["team_alias"] != "Two" {
		t.Errorf("team_update body = %v", up)
	}
}
