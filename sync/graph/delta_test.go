package graph

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// deltaServer answers /v1.0/groups/delta with scripted pages: the request
// without $skiptoken gets pages[0], and page i links to page i+1 by an
// absolute nextLink (the last one carries the deltaLink). Each request is
// recorded with its RequestURI.
type deltaServer struct {
	t         *testing.T
	pages     [][]any
	deltaLink string // path and query on this server of the final deltaLink
	before    func(w http.ResponseWriter, r *http.Request, call int) bool

	mu    sync.Mutex
	calls int
}

func (d *deltaServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	call := d.calls
	d.calls++
	d.mu.Unlock()
	if d.before != nil && d.before(w, r, call) {
		return
	}
	i := 0
	if s := r.URL.Query().Get("$skiptoken"); s != "" {
		fmt.Sscanf(s, "page%d", &i)
	}
	body := map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups", "value": d.pages[i]}
	if i+1 < len(d.pages) {
		body["@odata.nextLink"] = fmt.Sprintf("http://%s/v1.0/groups/delta?$skiptoken=page%d", r.Host, i+1)
	} else {
		body["@odata.deltaLink"] = "http://" + r.Host + d.deltaLink
	}
	writeJSON(w, http.StatusOK, body)
}

func (d *deltaServer) Calls() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls
}

func member(typ, id string) map[string]any {
	return map[string]any{"@odata.type": "#microsoft.graph." + typ, "id": id}
}

func removedMember(typ, id string) map[string]any {
	m := member(typ, id)
	m["@removed"] = map[string]any{"reason": "deleted"}
	return m
}

func deltaGroup(id string, name any, members ...any) map[string]any {
	g := map[string]any{"id": id}
	if name != nil {
		g["displayName"] = name
	}
	if members != nil {
		g["members@delta"] = members
	}
	return g
}

func ptr[T any](v T) *T { return &v }

// changeString renders a change for comparison in tests.
func changeString(c GroupChange) string {
	name := "-"
	if c.DisplayName != nil {
		name = *c.DisplayName
	}
	return fmt.Sprintf("%s name=%s deleted=%v added=%v removed=%v", c.ID, name, c.Deleted, c.MembersAdded, c.MembersRemoved)
}

func TestGroupsDeltaFullRoundMergesPages(t *testing.T) {
	ft := newFakeTenant(t)
	ds := &deltaServer{t: t, deltaLink: "/v1.0/groups/delta?$deltatoken=tok-1", pages: [][]any{
		{deltaGroup("g-big", "Big", member("user", "u-1"), member("user", "u-2"))},
		{deltaGroup("g-big", "Big", member("user", "u-3"), member("group", "g-small")), deltaGroup("g-small", "Small", member("user", "u-1"))},
		{}, // pages may be empty
		{deltaGroup("g-empty", "Empty"), deltaGroup("g-big", "Big", member("servicePrincipal", "sp-9"))},
	}}
	ft.Graph.Handle("GET /v1.0/groups/delta", ds)
	var labels []string
	var mu sync.Mutex
	env := newTestEnv(t, ft, nil, WithObserver(func(ev RequestEvent) {
		mu.Lock()
		labels = append(labels, ev.Endpoint)
		mu.Unlock()
	}))

	d, err := env.GroupsDelta(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !d.Full || d.DeltaLink != ft.URL()+"/v1.0/groups/delta?$deltatoken=tok-1" {
		t.Errorf("Full = %v, DeltaLink = %q", d.Full, d.DeltaLink)
	}
	var got []string
	for _, c := range d.Changes {
		got = append(got, changeString(c))
	}
	want := []string{
		"g-big name=Big deleted=false added=[{u-1 user} {u-2 user} {u-3 user} {g-small group} {sp-9 servicePrincipal}] removed=[]",
		"g-small name=Small deleted=false added=[{u-1 user}] removed=[]",
		"g-empty name=Empty deleted=false added=[] removed=[]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if first := ft.Requests()[0]; first != "/v1.0/groups/delta?$select=displayName,members" {
		t.Errorf("first request = %s", first)
	}
	if ds.Calls() != 4 || ft.TokensIssued() != 1 {
		t.Errorf("calls = %d, tokens = %d; want 4 and 1", ds.Calls(), ft.TokensIssued())
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(labels, []string{"token", "groupsDelta", "groupsDelta", "groupsDelta", "groupsDelta"}) {
		t.Errorf("observer labels = %v", labels)
	}
}

func TestGroupsDeltaIncremental(t *testing.T) {
	ft := newFakeTenant(t)
	ds := &deltaServer{t: t, deltaLink: "/v1.0/groups/delta?$deltatoken=tok-3", pages: [][]any{{
		deltaGroup("g-renamed", "New name"),
		deltaGroup("g-members", nil, member("user", "u-new"), removedMember("user", "u-gone")),
		map[string]any{"id": "g-deleted", "@removed": map[string]any{"reason": "deleted"}},
		map[string]any{"id": "g-soft", "@removed": map[string]any{"reason": "changed"}},
		deltaGroup("g-nameless", nil), // limited or unchanged properties: not an error
	}, {
		// The same member again: its last entry wins.
		deltaGroup("g-members", nil, removedMember("user", "u-new"), member("user", "u-back")),
		deltaGroup("g-members", nil, member("user", "u-new")),
	}}}
	var stored string
	ds.before = func(w http.ResponseWriter, r *http.Request, call int) bool {
		if call == 0 {
			stored = r.URL.RequestURI()
		}
		return false
	}
	ft.Graph.Handle("GET /v1.0/groups/delta", ds)
	env := newTestEnv(t, ft, nil)

	// Stored links are used verbatim (%3d%3d must not become ==).
	link := ft.URL() + "/v1.0/groups/delta?$deltatoken=tok%3d%3d-2"
	d, err := env.GroupsDelta(t.Context(), link)
	if err != nil {
		t.Fatal(err)
	}
	if stored != "/v1.0/groups/delta?$deltatoken=tok%3d%3d-2" {
		t.Errorf("first request %q, want the stored deltaLink verbatim", stored)
	}
	if d.Full || !strings.HasSuffix(d.DeltaLink, "tok-3") {
		t.Errorf("Full = %v, DeltaLink = %q", d.Full, d.DeltaLink)
	}
	var got []string
	for _, c := range d.Changes {
		got = append(got, changeString(c))
	}
	want := []string{
		"g-renamed name=New name deleted=false added=[] removed=[]",
		"g-members name=- deleted=false added=[{u-new user} {u-back user}] removed=[{u-gone user}]",
		"g-deleted name=- deleted=true added=[] removed=[]",
		"g-soft name=- deleted=true added=[] removed=[]",
		"g-nameless name=- deleted=false added=[] removed=[]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestGroupsDeltaErrors(t *testing.T) {
	tests := []struct {
		name        string
		answer      func(w http.ResponseWriter, r *http.Request)
		wantExpired bool
		wantPerm    bool
	}{
		{name: "410 Gone", answer: status(http.StatusGone, "syncStateNotFound"), wantExpired: true},
		{name: "410 without a code", answer: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) }, wantExpired: true},
		{name: "400 syncStateNotFound", answer: status(http.StatusBadRequest, "syncStateNotFound"), wantExpired: true},
		{name: "400 resyncRequired", answer: status(http.StatusBadRequest, "resyncRequired"), wantExpired: true},
		{name: "400 other", answer: status(http.StatusBadRequest, "Request_BadRequest")},
		{name: "403", answer: status(http.StatusForbidden, "Authorization_RequestDenied"), wantPerm: true},
		{name: "neither nextLink nor deltaLink", answer: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"value": []any{}})
		}},
		{name: "deltaLink to another host", answer: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"value": []any{}, "@odata.deltaLink": "https://evil.example/v1.0/groups/delta?$deltatoken=x"})
		}},
		{name: "nextLink to another host", answer: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"value": []any{}, "@odata.nextLink": "https://evil.example/v1.0/groups/delta?$skiptoken=x"})
		}},
		{name: "nextLink to the same page", answer: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"value": []any{}, "@odata.nextLink": "http://" + r.Host + r.URL.RequestURI()})
		}},
		{name: "item without an id", answer: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"value": []any{map[string]any{"displayName": "x"}}, "@odata.deltaLink": "http://" + r.Host + "/v1.0/groups/delta?$deltatoken=x"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := newFakeTenant(t)
			ft.Graph.HandleFunc("GET /v1.0/groups/delta", tt.answer)
			env := newTestEnv(t, ft, nil)
			d, err := env.GroupsDelta(t.Context(), "")
			if err == nil {
				t.Fatalf("no error; got %+v", d)
			}
			if errors.Is(err, ErrDeltaExpired) != tt.wantExpired {
				t.Errorf("errors.Is(%v, ErrDeltaExpired) = %v, want %v", err, !tt.wantExpired, tt.wantExpired)
			}
			var ae *APIError
			if tt.wantExpired && !errors.As(err, &ae) {
				t.Errorf("%v does not keep the *APIError", err)
			}
			var pe *PermissionError
			if errors.As(err, &pe) != tt.wantPerm {
				t.Errorf("PermissionError: %v, want %v", err, tt.wantPerm)
			}
			if tt.wantPerm && (pe.Permission != PermGroupMemberReadAll || pe.Endpoint != "/v1.0/groups/delta") {
				t.Errorf("PermissionError = %+v", pe)
			}
		})
	}
}

func TestGroupsDeltaRefusesForeignStoredLink(t *testing.T) {
	ft := newFakeTenant(t)
	env := newTestEnv(t, ft, nil)
	for _, link := range []string{
		"https://evil.example/v1.0/groups/delta?$deltatoken=x",
		"https://" + strings.TrimPrefix(ft.URL(), "http://") + "/v1.0/groups/delta?$deltatoken=x", // scheme differs
		"/v1.0/groups/delta?$deltatoken=x",
		"::not a url",
	} {
		if _, err := env.GroupsDelta(t.Context(), link); err == nil || errors.Is(err, ErrDeltaExpired) {
			t.Errorf("stored link %q: %v, want a refusal", link, err)
		}
	}
	if n := len(ft.TokenRequests()); n != 0 {
		t.Errorf("%d token requests: a refused link must not cost a token", n)
	}
}

func TestGroupsDeltaRetriesThrottling(t *testing.T) {
	ft := newFakeTenant(t)
	ds := &deltaServer{t: t, deltaLink: "/v1.0/groups/delta?$deltatoken=t", pages: [][]any{
		{deltaGroup("g-1", "One")}, {deltaGroup("g-2", "Two")},
	}}
	ds.before = func(w http.ResponseWriter, r *http.Request, call int) bool {
		if call == 1 || call == 2 { // the second page, twice
			status(http.StatusTooManyRequests, "TooManyRequests", "Retry-After", "7")(w, r)
			return true
		}
		return false
	}
	ft.Graph.Handle("GET /v1.0/groups/delta", ds)
	env := newTestEnv(t, ft, nil)
	d, err := env.GroupsDelta(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Changes) != 2 || ds.Calls() != 4 {
		t.Errorf("%d changes after %d calls, want 2 after 4", len(d.Changes), ds.Calls())
	}
	if got := env.sleeper.Slept(); !slices.Equal(got, []time.Duration{7 * time.Second, 7 * time.Second}) {
		t.Errorf("slept %v, want the Retry-After twice", got)
	}
}

func TestGroupsDeltaTokenRefreshOn401(t *testing.T) {
	ft := newFakeTenant(t)
	ds := &deltaServer{t: t, deltaLink: "/v1.0/groups/delta?$deltatoken=t", pages: [][]any{{deltaGroup("g-1", "One")}, {}}}
	ds.before = func(w http.ResponseWriter, r *http.Request, call int) bool {
		if call == 0 {
			ft.Revoke() // the token dies between the pages
		}
		return false
	}
	ft.Graph.Handle("GET /v1.0/groups/delta", ds)
	env := newTestEnv(t, ft, nil)
	if _, err := env.GroupsDelta(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	if n := ft.TokensIssued(); n != 2 {
		t.Errorf("tokens issued = %d, want 2", n)
	}
}
