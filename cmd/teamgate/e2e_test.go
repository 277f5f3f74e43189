package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/teamgate/teamgate/gateway"
	"github.com/teamgate/teamgate/sync/fakeentra"
	"github.com/teamgate/teamgate/sync/store"
)

var id = fakeentra.DemoID

// The seed tutorial's scenarios, driven through the browser flow.
func TestE2ESeedScenarios(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := startE2E(t, st, e2eOptions{})

		alice := e.browser()
		res, body := alice.signIn(e.gw.URL, "/ui/?page=1", id("alice"))
		if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/ui/" || res.Request.URL.RawQuery != "page=1" {
			t.Fatalf("after sign-in: %d at %s, want the original page: %s", res.StatusCode, res.Request.URL, body)
		}
		up := e.upstream.last(t)
		wantHeaders(t, up.Header, map[string]string{
			"X-Forwarded-User":               id("alice"),
			"X-Forwarded-Email":              "alice@example.com",
			"X-Forwarded-Preferred-Username": "alice@example.com",
			"X-LiteLLM-Team-Id":              id("data-science"), // first of her teams by alias
		})
		if got := strings.Split(up.Header.Get("X-Forwarded-Groups"), ","); !sameSet(got, []string{id("engineering"), id("data-science")}) {
			t.Errorf("groups header = %v", got)
		}

		// 1. A group newly assigned to the app becomes a team at the next
		//    sign-in by anyone (carol is not a member of it).
		e.tenant.AddGroup("evals-id", "Production LLM Evals Group")
		e.tenant.AssignToApp("evals-id")
		e.browser().signIn(e.gw.URL, "/", id("carol"))
		var team gateway.AdminTeam
		if code := e.admin("/teamgate/api/teams/evals-id", &team); code != http.StatusOK {
			t.Fatalf("GET team evals-id: %d", code)
		}
		// 3. It carries default_team_params.
		if team.TeamAlias != "Production LLM Evals Group" || !team.Assigned || team.MaxBudget == nil || *team.MaxBudget != 100 ||
			team.BudgetDuration == nil || *team.BudgetDuration != "30d" || !slices.Equal(team.Models, []string{"gpt-3.5-turbo"}) || len(team.Members) != 0 {
			t.Errorf("new team = %+v", team)
		}

		// 2. A user added to the group in Entra becomes a member at their next sign-in.
		e.tenant.AddMember("evals-id", id("alice"))
		alice2 := e.browser()
		alice2.signIn(e.gw.URL, "/", id("alice"))
		if got := e.upstream.last(t).Header.Get("X-Forwarded-Groups"); !strings.Contains(got, "evals-id") {
			t.Errorf("groups header after joining = %q, want evals-id in it", got)
		}
		var user gateway.AdminUser
		e.admin("/teamgate/api/users/"+id("alice"), &user)
		if !slices.Contains(user.Teams, "evals-id") || user.UserRole != "internal_user" {
			t.Errorf("alice = %+v", user)
		}
		var events []gateway.AdminSyncEvent
		e.admin("/teamgate/api/sync-events?user_id="+id("alice"), &events)
		if len(events) != 2 || !slices.Equal(events[0].MembershipsAdded, []string{"evals-id"}) || events[0].Outcome != "ok" {
			t.Errorf("alice's sync events = %+v", events)
		}
	})
}

func wantHeaders(t *testing.T, h http.Header, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := h.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("upstream header %s = %q, want [%q]", k, got, v)
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestE2ESpoofedIdentityHeadersNeverReachUpstream(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := startE2E(t, st, e2eOptions{})
		b := e.browser()
		b.signIn(e.gw.URL, "/", id("alice"))
		spoofs := []string{
			"X-Forwarded-User", "x-forwarded-user", "X-FORWARDED-USER", "X_Forwarded_User", "x_forwarded-user",
			"X-Forwarded-Email", "x_forwarded_email", "X-Forwarded-Preferred-Username", "x_forwarded_preferred_username",
			"X-Forwarded-Groups", "X_FORWARDED_GROUPS",
			// The team header in any other spelling is not a team choice:
			// stripped, and the user's own default team is sent.
			"X_LiteLLM_Team_Id", "x_litellm_team_id", "X-LiteLLM_Team-Id",
			"X-Teamgate-Assertion", "x_teamgate_assertion", "X_TEAMGATE_ASSERTION",
		}
		for _, h := range spoofs {
			t.Run(h, func(t *testing.T) {
				for _, client := range []string{"session", "api-key"} {
					req, _ := http.NewRequest(http.MethodGet, e.gw.URL+"/v1/models", nil)
					req.Header[h] = []string{"evil"}
					req.Header.Set("Connection", "X-Forwarded-User") // hop-by-hop abuse must not drop the real header
					c := b.client
					if client == "api-key" {
						req.Header.Set("Authorization", "Bearer sk-test-key")
						c = http.DefaultClient
					}
					res, _ := do(t, c, req)
					if res.StatusCode != http.StatusOK {
						t.Fatalf("%s: status %d", client, res.StatusCode)
					}
					up := e.upstream.last(t)
					for name, vals := range up.Header {
						if slices.Contains(vals, "evil") {
							t.Errorf("%s: upstream received spoofed %s: %v", client, name, vals)
						}
					}
					if client == "session" && up.Header.Get("X-Forwarded-User") != id("alice") {
						t.Errorf("session: X-Forwarded-User = %q", up.Header.Get("X-Forwarded-User"))
					}
					if client == "session" && up.Header.Get("X-Litellm-Team-Id") == "" {
						t.Errorf("session: no default team sent")
					}
				}
			})
		}
	})
}

func TestE2ETeamSelectionAndPassthrough(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := startE2E(t, st, e2eOptions{})
		b := e.browser()
		b.signIn(e.gw.URL, "/", id("alice"))

		res, _ := b.api("POST", e.gw.URL+"/chat/completions", "X-LiteLLM-Team-Id", id("engineering"))
		if res.StatusCode != http.StatusOK || e.upstream.last(t).Header.Get("X-LiteLLM-Team-Id") != id("engineering") {
			t.Errorf("own team: status %d, upstream team %q", res.StatusCode, e.upstream.last(t).Header.Get("X-LiteLLM-Team-Id"))
		}
		n := e.upstream.count()
		res, body := b.api("POST", e.gw.URL+"/chat/completions", "x-litellm-team-id", id("finance"))
		if res.StatusCode != http.StatusForbidden || !strings.Contains(res.Header.Get("Content-Type"), "json") || e.upstream.count() != n {
			t.Errorf("foreign team: status %d (%s), upstream requests %d→%d; want 403 JSON, not forwarded", res.StatusCode, body, n, e.upstream.count())
		}

		// Without a session: API-key clients pass untouched, others get 401, browsers sign in.
		anon := e.browser()
		for _, h := range [][2]string{{"Authorization", "Bearer sk-abc"}, {"x-litellm-api-key", "sk-abc"}, {"api-key", "sk-abc"}, {"x-api-key", "sk-abc"}} {
			res, _ := anon.api("GET", e.gw.URL+"/v1/models", h[0], h[1], "X-Forwarded-User", "evil")
			up := e.upstream.last(t)
			if res.StatusCode != http.StatusOK || up.Header.Get(h[0]) != h[1] || up.Header.Get("X-Forwarded-User") != "" || up.Header.Get("X-LiteLLM-Team-Id") != "" {
				t.Errorf("%s passthrough: status %d, upstream headers %v", h[0], res.StatusCode, up.Header)
			}
		}
		res, body = anon.api("GET", e.gw.URL+"/v1/models")
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"error"`) {
			t.Errorf("no credential: %d %s, want 401 JSON", res.StatusCode, body)
		}
		res, _ = do(t, anon.noRedirects(), mustReq(t, "GET", e.gw.URL+"/ui/x?y=1", "Accept", "text/html"))
		if loc := res.Header.Get("Location"); res.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "/oauth2/start?rd=") {
			t.Errorf("browser without session: %d Location %q", res.StatusCode, loc)
		} else if rd, _ := url.Parse(loc); rd.Query().Get("rd") != "/ui/x?y=1" {
			t.Errorf("rd = %q", rd.Query().Get("rd"))
		}
	})
}

func mustReq(t *testing.T, method, rawURL string, header ...string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

// The first event of a stream reaches the client while the upstream is
// still streaming: the test only lets the upstream finish after the client
// has read it.
func TestE2EServerSentEventsFlushPerEvent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := startE2E(t, st, e2eOptions{})
		b := e.browser()
		b.signIn(e.gw.URL, "/", id("alice"))
		req := mustReq(t, "GET", e.gw.URL+"/stream", "Accept", "text/event-stream")
		res, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("Content-Type = %q", ct)
		}
		r := bufio.NewReader(res.Body)
		for i, ev := range []string{"first", "second"} {
			e.upstream.events <- ev // blocks until the upstream handler takes it
			line, err := r.ReadString('\n')
			if err != nil || line != "data: "+ev+"\n" {
				t.Fatalf("event %d: %q, %v", i, line, err)
			}
			r.ReadString('\n') // blank line ending the event
		}
	})
}

func TestE2ESignOutKillsTheCookie(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := startE2E(t, st, e2eOptions{})
		b := e.browser()
		b.signIn(e.gw.URL, "/", id("bob"))
		gwURL, _ := url.Parse(e.gw.URL)
		old := b.client.Jar.Cookies(gwURL)
		if len(old) == 0 {
			t.Fatal("no session cookie after sign-in")
		}
		res, _ := b.get(e.gw.URL + "/oauth2/sign_out")
		if res.Request.URL.Path != "/teamgate/signed-out" || res.StatusCode != http.StatusOK {
			t.Errorf("sign-out ended at %d %s", res.StatusCode, res.Request.URL)
		}
		// Replay the old cookie by hand: it must no longer open a session.
		req := mustReq(t, "GET", e.gw.URL+"/v1/models", "Accept", "application/json")
		for _, c := range old {
			req.AddCookie(c)
		}
		n := e.upstream.count()
		res, _ = do(t, http.DefaultClient, req)
		if res.StatusCode != http.StatusUnauthorized || e.upstream.count() != n {
			t.Errorf("old cookie after sign-out: %d, upstream requests %d→%d", res.StatusCode, n, e.upstream.count())
		}
	})
}

func TestE2EOpenRedirectsRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := startE2E(t, st, e2eOptions{})
		for _, rd := range []string{"https://evil.example", "//evil.example", `/\evil.example`, "https:evil.example", "/%2F%2Fevil.example", "%2F%2Fevil.example"} {
			t.Run(rd, func(t *testing.T) {
				res, _ := e.browser().signIn(e.gw.URL, "/oauth2/start?rd="+url.QueryEscape(rd), id("alice"))
				if got := res.Request.URL; got.Host != strings.TrimPrefix(e.gw.URL, "http://") || got.Path != "/" {
					t.Errorf("rd=%q landed at %s, want %s/", rd, got, e.gw.URL)
				}
			})
		}
	})
}

// callbackURL walks a sign-in up to the redirect back to teamgate's callback
// and returns that URL without following it.
func callbackURL(t *testing.T, e *e2e, b *browser, user string) string {
	t.Helper()
	c := b.noRedirects()
	next := e.gw.URL + "/oauth2/start?rd=/"
	for i := 0; i < 5; i++ {
		res, _ := do(t, c, mustReq(t, "GET", next, "Accept", "text/html"))
		loc, err := res.Location()
		if err != nil {
			t.Fatalf("no redirect at %s (%d)", next, res.StatusCode)
		}
		if strings.Contains(loc.Path, "/authorize") {
			q := loc.Query()
			q.Set("login_hint", user) // the fake's non-interactive path
			loc.RawQuery = q.Encode()
		}
		if strings.HasSuffix(loc.Path, "/oauth2/callback") {
			return loc.String()
		}
		next = loc.String()
	}
	t.Fatal("never reached the callback")
	return ""
}

func TestE2ECallbackReplayAndForgedState(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := startE2E(t, st, e2eOptions{})
		b := e.browser()
		cb := callbackURL(t, e, b, id("alice"))
		res, _ := do(t, b.noRedirects(), mustReq(t, "GET", cb, "Accept", "text/html"))
		if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/" {
			t.Fatalf("first callback: %d → %q", res.StatusCode, res.Header.Get("Location"))
		}
		// The same callback again (state cookie used up, code redeemed).
		attacker := e.browser()
		for name, c := range map[string]*browser{"same browser": b, "other browser": attacker} {
			res, body := do(t, c.noRedirects(), mustReq(t, "GET", cb, "Accept", "text/html"))
			if res.StatusCode != http.StatusBadRequest || !strings.Contains(strings.ToLower(body), "sign") {
				t.Errorf("%s replay: %d, want 400 page", name, res.StatusCode)
			}
		}
		// The redeemed code swapped into a fresh, valid sign-in of another
		// browser (its own state cookie, PKCE verifier and nonce): refused
		// by the token endpoint, and no session is made.
		w := e.browser()
		fresh, _ := url.Parse(callbackURL(t, e, w, id("alice")))
		old, _ := url.Parse(cb)
		q := fresh.Query()
		q.Set("code", old.Query().Get("code"))
		fresh.RawQuery = q.Encode()
		res, body := do(t, w.noRedirects(), mustReq(t, "GET", fresh.String(), "Accept", "text/html"))
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(strings.ToLower(body), "sign") {
			t.Errorf("replayed code with a fresh state: %d, want 400 page\n%.300s", res.StatusCode, body)
		}
		if res, _ := w.api("GET", e.gw.URL+"/v1/models"); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("after the refused code: %d, want 401 (no session)", res.StatusCode)
		}
		// A forged state with a fresh, valid sign-in in flight.
		v := e.browser()
		cb = callbackURL(t, e, v, id("bob"))
		u, _ := url.Parse(cb)
		q = u.Query()
		q.Set("state", "forged-"+q.Get("state"))
		u.RawQuery = q.Encode()
		res, _ = do(t, v.noRedirects(), mustReq(t, "GET", u.String(), "Accept", "text/html"))
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("forged state: %d, want 400", res.StatusCode)
		}
		if _, err := st.User(context.Background(), id("bob")); err == nil {
			t.Error("bob was synced although his callback was refused")
		}
		// An Entra error on the callback.
		res, body = do(t, v.noRedirects(), mustReq(t, "GET",
			e.gw.URL+"/oauth2/callback?error=access_denied&error_description="+url.QueryEscape("AADSTS50105: not assigned")+"&state=x", "Accept", "text/html"))
		if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "AADSTS50105") || !strings.Contains(strings.ToLower(body), "assigned") {
			t.Errorf("AADSTS50105 callback: %d\n%.400s", res.StatusCode, body)
		}
	})
}

func TestE2EGraphFailureCreatesNoSession(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := startE2E(t, st, e2eOptions{})
		e.browser().signIn(e.gw.URL, "/", id("alice"))
		before := dbSnapshot(t, st)

		e.tenant.FailNext("/memberOf", 100, http.StatusServiceUnavailable, "")
		e.tenant.RenameGroup(id("engineering"), "Renamed meanwhile")
		b := e.browser()
		res, body := b.signIn(e.gw.URL, "/", id("alice"))
		if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(strings.ToLower(body), "try again") {
			t.Errorf("sign-in while Graph fails: %d\n%.400s", res.StatusCode, body)
		}
		if after := dbSnapshot(t, st); after != before {
			t.Errorf("a failed sync changed the database:\nbefore %s\nafter  %s", before, after)
		}
		res, _ = b.api("GET", e.gw.URL+"/v1/models")
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("after failed sign-in: %d, want 401 (no session)", res.StatusCode)
		}
	})
}

func dbSnapshot(t *testing.T, st store.Store) string {
	t.Helper()
	ctx := context.Background()
	teams, err := st.Teams(ctx, store.TeamFilter{})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := st.MembersOfTeams(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, tm := range teams {
		fmt.Fprintf(&b, "%s=%s/%v;", tm.ID, tm.Alias, tm.Assigned)
	}
	for _, m := range ms {
		fmt.Fprintf(&b, "%s:%s:%s;", m.TeamID, m.UserID, m.Source)
	}
	return b.String()
}

func TestE2EConcurrentSignIns(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		dir := fakeentra.Directory{}
		for g := 0; g < 5; g++ {
			dir.Groups = append(dir.Groups, fakeentra.Group{ID: fmt.Sprintf("grp-%d", g), DisplayName: fmt.Sprintf("Group %d", g)})
			dir.AppAssignments = append(dir.AppAssignments, fmt.Sprintf("grp-%d", g))
		}
		for u := 0; u < 30; u++ {
			dir.Users = append(dir.Users, fakeentra.User{ID: fmt.Sprintf("user-%02d", u), DisplayName: fmt.Sprintf("User %d", u),
				UPN: fmt.Sprintf("user%02d@example.com", u), MemberOf: []string{fmt.Sprintf("grp-%d", u%5), fmt.Sprintf("grp-%d", (u+1)%5)}})
		}
		e := startE2E(t, st, e2eOptions{directory: dir})
		var wg sync.WaitGroup
		for u := 0; u < 30; u++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b := e.browser()
				uid := fmt.Sprintf("user-%02d", u)
				res, body := b.signIn(e.gw.URL, "/whoami", uid)
				if res.StatusCode != http.StatusOK || !strings.Contains(body, "/whoami") {
					t.Errorf("%s: %d %s", uid, res.StatusCode, body)
				}
				// Each session carries its own identity.
				res, _ = b.api("GET", e.gw.URL+"/whoami-"+uid)
				if res.StatusCode != http.StatusOK {
					t.Errorf("%s: proxied request %d", uid, res.StatusCode)
				}
			}()
		}
		wg.Wait()
		e.upstream.mu.Lock()
		defer e.upstream.mu.Unlock()
		seen := 0
		for _, r := range e.upstream.requests {
			if uid, ok := strings.CutPrefix(r.URL.Path, "/whoami-"); ok {
				seen++
				if got := r.Header.Get("X-Forwarded-User"); got != uid {
					t.Errorf("request for %s carried X-Forwarded-User %q", uid, got)
				}
			}
		}
		if seen != 30 {
			t.Errorf("upstream saw %d identified requests, want 30", seen)
		}
		var teams []gateway.AdminTeam
		e.admin("/teamgate/api/teams", &teams)
		if len(teams) != 5 {
			t.Errorf("teams = %d, want 5", len(teams))
		}
		for _, tm := range teams {
			if len(tm.Members) != 12 {
				t.Errorf("team %s has %d members, want 12", tm.TeamID, len(tm.Members))
			}
		}
	})
}
