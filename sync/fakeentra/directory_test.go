package fakeentra

import (
	"net/http"
	"strings"
	"testing"
)

func TestLoadDirectoryExample(t *testing.T) {
	t.Parallel()
	d, err := LoadDirectory("testdata/directory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Users) != 2 || len(d.Groups) != 3 || len(d.DirectoryRoles) != 1 || len(d.AdministrativeUnits) != 1 || len(d.AppAssignments) != 2 {
		t.Fatalf("unexpected directory: %+v", d)
	}
	if d.Users[1].Mail != "" || d.Users[0].MemberOf[1] != "7f1d9e2b-3333-4c4c-9d9d-000000000001" {
		t.Fatalf("fields not decoded: %+v", d.Users)
	}
}

func TestParseDirectoryRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml string
		wantErr    []string // every problem must be named
	}{
		{name: "unknown key", yaml: "users:\n  - id: u1\n    upn: a@x\n    email: a@x\n", wantErr: []string{"email"}},
		{name: "unknown top-level key", yaml: "groupz: []\n", wantErr: []string{"groupz"}},
		{name: "dangling member_of", yaml: "users:\n  - id: u1\n    upn: a@x\n    member_of: [g-missing]\n", wantErr: []string{"g-missing"}},
		{name: "dangling assignment", yaml: "app_assignments: [nobody]\n", wantErr: []string{"nobody"}},
		{name: "assignment of a role", yaml: "directory_roles: [{id: r1}]\napp_assignments: [r1]\n", wantErr: []string{"r1"}},
		{name: "member of a user", yaml: "users:\n  - {id: u1, upn: a@x}\n  - {id: u2, upn: b@x, member_of: [u1]}\n", wantErr: []string{"is a user"}},
		{name: "duplicate ids across kinds", yaml: "users: [{id: x1, upn: a@x}]\ngroups: [{id: X1}]\n", wantErr: []string{"duplicate"}},
		{name: "missing upn", yaml: "users: [{id: u1}]\n", wantErr: []string{"upn is required"}},
		{name: "self nesting", yaml: "groups: [{id: g1, member_of: [g1]}]\n", wantErr: []string{"itself"}},
		{name: "several problems at once", yaml: "users: [{id: u1, member_of: [nope]}]\napp_assignments: [gone]\n",
			wantErr: []string{"upn is required", "nope", "gone"}},
		{name: "two documents", yaml: "users: []\n---\ngroups: []\n", wantErr: []string{"more than one"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseDirectory([]byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParseDirectoryAcceptsCyclesAndEmpty(t *testing.T) {
	t.Parallel()
	for name, y := range map[string]string{
		"empty":        "",
		"nested cycle": "groups:\n  - {id: g1, member_of: [g2]}\n  - {id: g2, member_of: [g1]}\n",
	} {
		if _, err := ParseDirectory([]byte(y)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestDemoDirectory(t *testing.T) {
	t.Parallel()
	d := DemoDirectory()
	if _, err := indexDirectory(d); err != nil {
		t.Fatal(err)
	}
	tn := startTenant(t, Config{Directory: d, AssignmentRequired: true})
	ix := tn.snapshot()
	erin := ix.user("erin@example.com")
	assigned := 0
	for _, g := range erin.MemberOf {
		if ix.assigned[key(g)] {
			assigned++
		}
	}
	if len(erin.MemberOf) != 300 || assigned != 250 {
		t.Errorf("erin: %d groups, %d assigned", len(erin.MemberOf), assigned)
	}
	if ix.user("dave@example.com").Mail != "" || ix.isAssigned(ix.user("dave@example.com")) {
		t.Error("dave should have no mail and no assignment")
	}
	if DemoID("alice") != DemoDirectory().Users[0].ID || len(DemoID("alice")) != 36 {
		t.Errorf("unstable or odd demo id %q", DemoID("alice"))
	}
	token := appToken(t, tn)
	groups, _ := collect(t, tn, token, "/v1.0/users/"+DemoID("alice")+"/transitiveMemberOf/microsoft.graph.group")
	if len(groups) != 4 { // Engineering, Data Science, teamgate admins, All Staff (via Engineering)
		t.Errorf("alice transitive groups = %v", groups)
	}
}

func TestDirectoryChangesWhileServing(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{})
	token := appToken(t, tn)
	groupsOf := func(user string) map[string]string {
		t.Helper()
		items, _ := collect(t, tn, token, "/v1.0/users/"+user+"/memberOf/microsoft.graph.group")
		out := map[string]string{}
		for _, it := range items {
			out[it["id"].(string)], _ = it["displayName"].(string)
		}
		return out
	}
	tn.AddGroup("g-new", "New Team")
	tn.AddMember("g-new", "u-dave")
	tn.AddMember("g-new", "u-dave") // idempotent
	tn.RenameGroup("g-mkt", "Marketing & Sales")
	if got := groupsOf("u-dave"); len(got) != 2 || got["g-new"] != "New Team" || got["g-mkt"] != "Marketing & Sales" {
		t.Fatalf("after add/rename: %v", got)
	}
	tn.RemoveMember("g-mkt", "u-dave")
	if got := groupsOf("u-dave"); len(got) != 1 {
		t.Fatalf("after remove: %v", got)
	}
	tn.AssignToApp("g-new")
	tn.UnassignFromApp("g-eng")
	items, _ := collect(t, tn, token, "/v1.0/servicePrincipals/"+tn.ServicePrincipalID()+"/appRoleAssignedTo")
	ids := map[string]bool{}
	for _, it := range items {
		ids[it["principalId"].(string)] = true
	}
	if !ids["g-new"] || ids["g-eng"] || !ids["g-all"] {
		t.Fatalf("assignments = %v", ids)
	}

	if err := tn.TryUpdate(func(d *Directory) { d.AppAssignments = append(d.AppAssignments, "ghost") }); err == nil {
		t.Fatal("TryUpdate accepted a dangling assignment")
	}
	if ids := tn.Directory().AppAssignments; len(ids) != 3 {
		t.Fatalf("failed update changed the directory: %v", ids)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("AddMember of an unknown member did not panic")
			}
		}()
		tn.AddMember("g-eng", "nobody")
	}()

	tn.SetAppPermissions("User.Read.All")
	if resp, _ := graphGet(t, tn, token, "/v1.0/users/u-alice"); resp.StatusCode != http.StatusOK {
		t.Error("a token issued before SetAppPermissions lost its roles")
	}
	resp, _ := graphGet(t, tn, appToken(t, tn), "/v1.0/servicePrincipals/"+tn.ServicePrincipalID()+"/appRoleAssignedTo")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("new token without Application.Read.All: %d, want 403", resp.StatusCode)
	}
}
