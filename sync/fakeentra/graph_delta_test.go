package fakeentra

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// deltaRound is what one round of groups/delta said, merged per group as a
// client must merge it.
type deltaRound struct {
	pages     int
	items     []map[string]any
	deltaLink string
	groups    map[string]*deltaGroup
	order     []string // group ids, first-seen order
}

type deltaGroup struct {
	displayName any // nil when no item carried it
	hasName     bool
	deleted     bool
	added       []string // "user:id" / "group:id"
	removed     []string
}

// followDelta runs one round from start (a path or a deltaLink) to its
// deltaLink, checking the paging rules on the way.
func followDelta(t *testing.T, tn *Tenant, token, start string, pageSize int) deltaRound {
	t.Helper()
	r := deltaRound{groups: map[string]*deltaGroup{}}
	for next := start; ; {
		r.pages++
		if r.pages > 100 {
			t.Fatal("delta paging does not end")
		}
		resp, body := graphGet(t, tn, token, next)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v", next, resp.StatusCode, body)
		}
		vals, ok := body["value"].([]any)
		if !ok {
			t.Fatalf("page without a value array: %v", body)
		}
		if len(vals) > pageSize {
			t.Fatalf("page of %d items, page size %d", len(vals), pageSize)
		}
		for _, v := range vals {
			it := v.(map[string]any)
			r.items = append(r.items, it)
			r.merge(t, it, pageSize)
		}
		nextLink, _ := body["@odata.nextLink"].(string)
		deltaLink, _ := body["@odata.deltaLink"].(string)
		if (nextLink == "") == (deltaLink == "") {
			t.Fatalf("a page must carry exactly one of nextLink and deltaLink: %v", body)
		}
		for _, l := range []string{nextLink, deltaLink} {
			if l != "" && !strings.HasPrefix(l, tn.GraphURL()+"/v1.0/groups/delta?") {
				t.Fatalf("link %q is not an absolute groups/delta URL", l)
			}
		}
		if deltaLink != "" {
			r.deltaLink = deltaLink
			return r
		}
		next = nextLink
	}
}

func (r *deltaRound) merge(t *testing.T, it map[string]any, pageSize int) {
	t.Helper()
	id, _ := it["id"].(string)
	if id == "" {
		t.Fatalf("item without an id: %v", it)
	}
	g := r.groups[id]
	if g == nil {
		g = &deltaGroup{}
		r.groups[id] = g
		r.order = append(r.order, id)
	}
	if name, ok := it["displayName"]; ok {
		g.displayName, g.hasName = name, true
	}
	if rm, ok := it["@removed"].(map[string]any); ok {
		if rm["reason"] != "deleted" || len(it) != 2 {
			t.Fatalf("deleted group item = %v", it)
		}
		g.deleted = true
	}
	members, _ := it["members@delta"].([]any)
	if _, ok := it["members@delta"]; ok && len(members) == 0 {
		t.Fatalf("item with an empty members@delta: %v", it)
	}
	if len(members) > pageSize {
		t.Fatalf("item with %d members, page size %d", len(members), pageSize)
	}
	for _, m := range members {
		e := m.(map[string]any)
		typ, _ := e["@odata.type"].(string)
		short, ok := strings.CutPrefix(typ, "#microsoft.graph.")
		if !ok || (short != "user" && short != "group") {
			t.Fatalf("member entry type %q: %v", typ, e)
		}
		ref := short + ":" + e["id"].(string)
		if _, removed := e["@removed"]; removed {
			g.removed = append(g.removed, ref)
		} else {
			g.added = append(g.added, ref)
		}
	}
}

// deltaDirectory: g-big has five user members, one of them in g-small too,
// and g-small is nested in g-big (so g-big has a group member).
func deltaDirectory() Directory {
	d := Directory{Groups: []Group{
		{ID: "g-big", DisplayName: "Big"},
		{ID: "g-small", DisplayName: "Small", MemberOf: []string{"g-big"}},
		{ID: "g-empty", DisplayName: "Empty"},
	}}
	for i := range 5 {
		u := User{ID: fmt.Sprintf("u-%d", i), UPN: fmt.Sprintf("u%d@example.com", i), MemberOf: []string{"g-big"}}
		if i == 0 {
			u.MemberOf = append(u.MemberOf, "g-small")
		}
		d.Users = append(d.Users, u)
	}
	return d
}

func TestGroupsDeltaFullRound(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{Directory: deltaDirectory()})
	tn.SetDeltaPageSize(2)
	token := appToken(t, tn)

	r := followDelta(t, tn, token, "/v1.0/groups/delta?$select=displayName,members", 2)
	if !slices.Equal(r.order, []string{"g-big", "g-small", "g-empty"}) {
		t.Fatalf("groups = %v", r.order)
	}
	// g-big: 6 members at 2 an item = 3 items; g-small 1; g-empty 1 (no members@delta).
	if len(r.items) != 5 || r.pages != 3 {
		t.Fatalf("%d items in %d pages, want 5 in 3", len(r.items), r.pages)
	}
	big := r.groups["g-big"]
	want := []string{"user:u-0", "user:u-1", "user:u-2", "user:u-3", "user:u-4", "group:g-small"}
	if !slices.Equal(big.added, want) || len(big.removed) != 0 || big.displayName != "Big" {
		t.Errorf("g-big = %+v, want members %v", big, want)
	}
	if small := r.groups["g-small"]; !slices.Equal(small.added, []string{"user:u-0"}) {
		t.Errorf("g-small members = %v", small.added)
	}
	for _, it := range r.items {
		if it["id"] == "g-empty" {
			if _, ok := it["members@delta"]; ok || it["displayName"] != "Empty" {
				t.Errorf("empty group item = %v", it)
			}
		}
		if got := slices.Sorted(maps.Keys(it)); it["id"] != "g-empty" && !slices.Equal(got, []string{"displayName", "id", "members@delta"}) {
			t.Errorf("item keys = %v, want $select's", got)
		}
	}
	if n := tn.Calls("groups/delta"); n != 3 {
		t.Errorf("Calls(groups/delta) = %d, want 3", n)
	}

	// Without members in $select, no members@delta; the default page size
	// takes everything at once.
	tn.SetDeltaPageSize(0)
	r = followDelta(t, tn, token, "/v1.0/groups/delta?$select=displayName", 100)
	for _, it := range r.items {
		if len(it) != 2 {
			t.Errorf("$select=displayName item = %v", it)
		}
	}
	if r.pages != 1 || len(r.items) != 3 {
		t.Errorf("%d items in %d pages, want 3 in 1", len(r.items), r.pages)
	}
	if resp, body := graphGet(t, tn, token, "/v1.0/groups/delta?$select=nope"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown $select property: %d %v", resp.StatusCode, body)
	}
	if resp, body := graphGet(t, tn, token, "/v1.0/groups/delta?$filter=x"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("$filter: %d %v", resp.StatusCode, body)
	}
}

func TestGroupsDeltaIncremental(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{Directory: deltaDirectory()})
	token := appToken(t, tn)
	first := followDelta(t, tn, token, "/v1.0/groups/delta?$select=displayName,members", 100)

	// Nothing changed: an empty round with a deltaLink.
	same := followDelta(t, tn, token, first.deltaLink, 100)
	if len(same.items) != 0 || same.pages != 1 {
		t.Fatalf("unchanged tenant: %v", same.items)
	}

	tn.RenameGroup("g-small", "Smaller")
	tn.AddMember("g-empty", "u-3")
	tn.RemoveMember("g-big", "u-4")
	tn.AddGroup("g-new", "New")
	tn.AddMember("g-new", "u-1")
	tn.DeleteUser("u-2") // leaves g-big
	tn.AddMember("g-small", "u-1")
	tn.RemoveMember("g-small", "u-1") // net nothing
	r := followDelta(t, tn, token, same.deltaLink, 100)

	want := map[string]deltaGroup{
		"g-big":   {removed: []string{"user:u-2", "user:u-4"}},
		"g-small": {displayName: "Smaller", hasName: true},
		"g-empty": {added: []string{"user:u-3"}},
		"g-new":   {displayName: "New", hasName: true, added: []string{"user:u-1"}},
	}
	if !slices.Equal(r.order, []string{"g-big", "g-small", "g-empty", "g-new"}) {
		t.Fatalf("changed groups = %v", r.order)
	}
	for id, w := range want {
		if got := *r.groups[id]; fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s = %+v, want %+v", id, got, w)
		}
	}

	tn.DeleteGroup("g-small")
	r = followDelta(t, tn, token, r.deltaLink, 100)
	// g-small is deleted, and leaves g-big, of which it was a member.
	if !slices.Equal(r.order, []string{"g-big", "g-small"}) || !r.groups["g-small"].deleted ||
		!slices.Equal(r.groups["g-big"].removed, []string{"group:g-small"}) {
		t.Fatalf("after DeleteGroup: %v", r.items)
	}
	if tn.Directory().Users[0].MemberOf[0] != "g-big" || len(tn.Directory().Users[0].MemberOf) != 1 {
		t.Errorf("DeleteGroup left memberships: %v", tn.Directory().Users[0].MemberOf)
	}

	// An old deltaLink still works (until ExpireDeltaTokens): it reports
	// everything since its own version.
	r = followDelta(t, tn, token, first.deltaLink, 100)
	if !r.groups["g-small"].deleted || !slices.Equal(r.groups["g-new"].added, []string{"user:u-1"}) {
		t.Fatalf("from the first deltaLink: %v", r.items)
	}
}

func TestGroupsDeltaRoundIsASnapshot(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{Directory: deltaDirectory()})
	tn.SetDeltaPageSize(1)
	token := appToken(t, tn)
	_, body := graphGet(t, tn, token, "/v1.0/groups/delta")
	next := body["@odata.nextLink"].(string)
	tn.RenameGroup("g-empty", "Renamed mid-round")
	rest := followDelta(t, tn, token, next, 1)
	if name := rest.groups["g-empty"].displayName; name != "Empty" {
		t.Fatalf("a change made while paging tore the round: g-empty = %v", name)
	}
	r := followDelta(t, tn, token, rest.deltaLink, 1)
	if !slices.Equal(r.order, []string{"g-empty"}) || r.groups["g-empty"].displayName != "Renamed mid-round" {
		t.Fatalf("next round = %v", r.items)
	}
}

func TestGroupsDeltaExpiredTokens(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{Directory: deltaDirectory()})
	tn.SetDeltaPageSize(2)
	token := appToken(t, tn)
	done := followDelta(t, tn, token, "/v1.0/groups/delta", 2)
	_, body := graphGet(t, tn, token, "/v1.0/groups/delta")
	midRound := body["@odata.nextLink"].(string)

	tn.ExpireDeltaTokens()
	for name, link := range map[string]string{"deltaLink": done.deltaLink, "nextLink": midRound} {
		resp, body := graphGet(t, tn, token, link)
		if resp.StatusCode != http.StatusGone || graphErrorCode(body) != "syncStateNotFound" {
			t.Errorf("%s after ExpireDeltaTokens: %d %v, want 410 syncStateNotFound", name, resp.StatusCode, body)
		}
	}
	// A new full round works and its token is good.
	fresh := followDelta(t, tn, token, "/v1.0/groups/delta", 2)
	if len(fresh.order) != 3 {
		t.Fatalf("full round after expiry: %v", fresh.order)
	}
	if r := followDelta(t, tn, token, fresh.deltaLink, 2); len(r.items) != 0 {
		t.Fatalf("incremental after expiry: %v", r.items)
	}
	for _, bad := range []string{"?$deltatoken=garbage", "?$skiptoken=garbage", "?$deltatoken=x&$skiptoken=y"} {
		if resp, body := graphGet(t, tn, token, "/v1.0/groups/delta"+bad); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %v, want 400", bad, resp.StatusCode, body)
		}
	}
}

func TestGroupsDeltaLatest(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{Directory: deltaDirectory()})
	token := appToken(t, tn)
	r := followDelta(t, tn, token, "/v1.0/groups/delta?$deltatoken=latest&$select=displayName", 100)
	if len(r.items) != 0 {
		t.Fatalf("$deltatoken=latest returned items: %v", r.items)
	}
	tn.RenameGroup("g-big", "Bigger")
	r = followDelta(t, tn, token, r.deltaLink, 100)
	if len(r.items) != 1 || r.items[0]["displayName"] != "Bigger" || len(r.items[0]) != 2 {
		t.Fatalf("after latest: %v", r.items)
	}
}

func TestGroupsDeltaFaultsAndPermissions(t *testing.T) {
	t.Parallel()
	tn := startTenant(t, Config{Directory: deltaDirectory()})
	token := appToken(t, tn)
	tn.FailNext("groups/delta", 1, http.StatusTooManyRequests, "2")
	resp, body := graphGet(t, tn, token, "/v1.0/groups/delta")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" || graphErrorCode(body) != "TooManyRequests" {
		t.Fatalf("injected 429: %d %v", resp.StatusCode, body)
	}
	if resp, _ := graphGet(t, tn, token, "/v1.0/groups/delta"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the fault: %d", resp.StatusCode)
	}
	if n := tn.Calls("groups/delta"); n != 2 {
		t.Errorf("Calls = %d, want 2", n)
	}
	tn.SetAppPermissions("User.Read.All", "Application.Read.All")
	resp, body = graphGet(t, tn, appToken(t, tn), "/v1.0/groups/delta")
	if resp.StatusCode != http.StatusForbidden || graphErrorCode(body) != "Authorization_RequestDenied" {
		t.Fatalf("without a group permission: %d %v", resp.StatusCode, body)
	}
}
