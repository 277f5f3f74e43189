package litellm

import (
	"encoding/json"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func TestBuildersProduceExactBodies(t *testing.T) {
	tests := []struct {
		name             string
		op               Op
		kind, team, user string
		body             string
	}{
		{
			name: "team_new with every param",
			op: TeamNew("g1", "Research", TeamParams{
				MaxBudget: ptr(100.5), BudgetDuration: "30d", Models: []string{"gpt-4o", "claude"},
				TPMLimit: ptr[int64](1000), RPMLimit: ptr[int64](60),
			}),
			kind: KindTeamNew, team: "g1",
			body: `{"team_id":"g1","team_alias":"Research","models":["gpt-4o","claude"],"max_budget":100.5,"budget_duration":"30d","tpm_limit":1000,"rpm_limit":60,"metadata":{"entra_group_id":"g1","source":"teamgate"}}`,
		},
		{
			name: "team_new without params leaves LiteLLM's defaults",
			op:   TeamNew("g2", "Ops", TeamParams{}),
			kind: KindTeamNew, team: "g2",
			body: `{"team_id":"g2","team_alias":"Ops","metadata":{"entra_group_id":"g2","source":"teamgate"}}`,
		},
		{
			name: "team_new keeps a zero budget",
			op:   TeamNew("g3", "Frozen", TeamParams{MaxBudget: ptr(0.0), TPMLimit: ptr[int64](0)}),
			kind: KindTeamNew, team: "g3",
			body: `{"team_id":"g3","team_alias":"Frozen","max_budget":0,"tpm_limit":0,"metadata":{"entra_group_id":"g3","source":"teamgate"}}`,
		},
		{
			name: "team_update sends only the alias",
			op:   TeamUpdateAlias("g1", "Research & Dev"),
			kind: KindTeamUpdate, team: "g1",
			body: `{"team_id":"g1","team_alias":"Research \u0026 Dev"}`,
		},
		{name: "team_block", op: TeamBlock("g1"), kind: KindTeamBlock, team: "g1", body: `{"team_id":"g1"}`},
		{name: "team_unblock", op: TeamUnblock("g1"), kind: KindTeamUnblock, team: "g1", body: `{"team_id":"g1"}`},
		{
			name: "user_new lower-cases the email and never mints a key",
			op: UserNew("oid-1", " Ada.Lovelace@Example.COM ", "sub-1", UserParams{
				UserRole: "internal_user", MaxBudget: ptr(10.0), BudgetDuration: "1mo", Models: []string{"gpt-4o"},
			}),
			kind: KindUserNew, user: "oid-1",
			body: `{"user_id":"oid-1","user_email":"ada.lovelace@example.com","sso_user_id":"sub-1","user_role":"internal_user","max_budget":10,"budget_duration":"1mo","models":["gpt-4o"],"auto_create_key":false}`,
		},
		{
			name: "user_new with no email or params",
			op:   UserNew("oid-2", "", "", UserParams{}),
			kind: KindUserNew, user: "oid-2",
			body: `{"user_id":"oid-2","auto_create_key":false}`,
		},
		{
			name: "member_add with role user",
			op:   MemberAdd("g1", "oid-1"),
			kind: KindMemberAdd, team: "g1", user: "oid-1",
			body: `{"team_id":"g1","member":{"user_id":"oid-1","role":"user"}}`,
		},
		{
			name: "member_delete",
			op:   MemberDelete("g1", "oid-1"),
			kind: KindMemberDelete, team: "g1", user: "oid-1",
			body: `{"team_id":"g1","user_id":"oid-1"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.op.Kind != tt.kind || tt.op.TeamID != tt.team || tt.op.UserID != tt.user {
				t.Errorf("op = {%q %q %q}, want {%q %q %q}", tt.op.Kind, tt.op.TeamID, tt.op.UserID, tt.kind, tt.team, tt.user)
			}
			if string(tt.op.Body) != tt.body {
				t.Errorf("body\n got %s\nwant %s", tt.op.Body, tt.body)
			}
			if !json.Valid(tt.op.Body) {
				t.Error("body is not valid JSON")
			}
			if Path(tt.op.Kind) == "" {
				t.Errorf("no path for kind %q", tt.op.Kind)
			}
		})
	}
}

func TestBuildersDoNotAliasCallerSlices(t *testing.T) {
	models := []string{"a"}
	op := TeamNew("g", "G", TeamParams{Models: models})
	models[0] = "changed"
	if got := string(op.Body); got != `{"team_id":"g","team_alias":"G","models":["a"],"metadata":{"entra_group_id":"g","source":"teamgate"}}` {
		t.Errorf("body changed with the caller's slice: %s", got)
	}
}

func TestPathOfEveryKind(t *testing.T) {
	want := map[string]string{
		KindUserNew: "/user/new", KindTeamNew: "/team/new", KindTeamUpdate: "/team/update",
		KindTeamBlock: "/team/block", KindTeamUnblock: "/team/unblock",
		KindMemberAdd: "/team/member_add", KindMemberDelete: "/team/member_delete",
		"bogus": "",
	}
	for kind, path := range want {
		if got := Path(kind); got != path {
			t.Errorf("Path(%q) = %q, want %q", kind, got, path)
		}
	}
}
