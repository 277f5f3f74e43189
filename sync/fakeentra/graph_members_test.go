package fakeentra

import (
	"net/http"
	"slices"
	"testing"
)

func TestGroupMembersEndpoints(t *testing.T) {
	t.Parallel()
	d := deltaDirectory() // g-small is nested in g-big; u-0 is in both
	d.Users = append(d.Users, User{ID: "u-deep", UPN: "deep@example.com", MemberOf: []string{"g-small"}})
	tn := startTenant(t, Config{Directory: d})
	token := appToken(t, tn)
	ids := func(path string) []string {
		t.Helper()
		items, _ := collect(t, tn, token, path)
		var out []string
		for _, it := range items {
			out = append(out, it["@odata.type"].(string)[len("#microsoft.graph."):]+":"+it["id"].(string))
			if len(it) != 2 {
				t.Errorf("$select=id item = %v", it)
			}
		}
		return out
	}
	direct := ids("/v1.0/groups/g-big/members?$select=id&$top=2")
	if want := []string{"user:u-0", "user:u-1", "user:u-2", "user:u-3", "user:u-4", "group:g-small"}; !slices.Equal(direct, want) {
		t.Errorf("members = %v, want %v", direct, want)
	}
	all := ids("/v1.0/groups/g-big/transitiveMembers?$select=id")
	if want := []string{"user:u-0", "user:u-1", "user:u-2", "user:u-3", "user:u-4", "group:g-small", "user:u-deep"}; !slices.Equal(all, want) {
		t.Errorf("transitiveMembers = %v, want %v", all, want)
	}
	if resp, _ := graphGet(t, tn, token, "/v1.0/groups/nope/members"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown group: %d", resp.StatusCode)
	}
	tn.SetAppPermissions("User.Read.All")
	if resp, _ := graphGet(t, tn, appToken(t, tn), "/v1.0/groups/g-big/members"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("without a group permission: %d", resp.StatusCode)
	}
}
