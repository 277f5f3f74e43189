package main

import (
	"context"
	"html"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/teamgate/teamgate/gateway"
	"github.com/teamgate/teamgate/sync/fakeentra"
	"github.com/teamgate/teamgate/sync/store"
)

// waitForRun waits until a background run that started after since has
// been recorded, and returns its event.
func waitForRun(t *testing.T, st store.Store, since time.Time) store.SyncEvent {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		evs, err := st.SyncEvents(context.Background(), store.EventFilter{Kind: store.EventBackground, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.UserID == "" && e.At.After(since) {
				return e
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no background run started after %v", since)
	return store.SyncEvent{}
}

// The gap between sign-ins, closed end to end: a member removed in Entra
// loses the team at the next background run with nobody signing in, and a
// disabled account's session ends at its next re-validation with a page
// that says why.
func TestE2EBackgroundSyncAndRevalidation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		var skew atomic.Int64 // how far the gateway's clock is ahead
		e := startE2E(t, st, e2eOptions{tweak: func(c *Config) {
			c.Sync.Interval = time.Second
			c.Session.CacheTTL = gateway.Duration(time.Nanosecond) // every request reads the database
			c.Admin.GroupIDs = []string{fakeentra.DemoID(fakeentra.DemoAdminGroup)}
		}, gatewayClock: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
		alice, ds := fakeentra.DemoID("alice"), fakeentra.DemoID("data-science")
		b := e.browser()
		if res, _ := b.signIn(e.gw.URL, "/ui/", alice); res.StatusCode != http.StatusOK {
			t.Fatalf("sign-in: %d", res.StatusCode)
		}
		groups := func() string {
			t.Helper()
			if res, body := b.api(http.MethodGet, e.gw.URL+"/v1/models"); res.StatusCode != http.StatusOK {
				t.Fatalf("proxied request: %d %s", res.StatusCode, body)
			}
			return e.upstream.last(t).Header.Get("X-Forwarded-Groups")
		}
		if g := groups(); !strings.Contains(g, ds) {
			t.Fatalf("groups before = %q, want data-science", g)
		}

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); e.app.background.Run(ctx) }()
		defer func() { cancel(); <-done }()
		waitForRun(t, st, time.Time{})

		// A run that started after the change saw it.
		e.tenant.RemoveMember(ds, alice)
		changed := time.Now()
		ev := waitForRun(t, st, changed)
		if ev.Outcome != "ok" {
			t.Fatalf("background run failed: %+v", ev)
		}
		if g := groups(); strings.Contains(g, ds) {
			t.Fatalf("groups after the background run = %q, still data-science", g)
		}
		// The admin page's sync log shows the runs (alice is in the demo
		// administrators group).
		res, body := b.get(e.gw.URL + "/teamgate/admin/events?kind=background")
		body = html.UnescapeString(body)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, "Background sync") || !strings.Contains(body, "Whole run") ||
			!strings.Contains(body, "incremental; ") || !strings.Contains(body, "memberships +0 -1") {
			t.Errorf("admin sync log filtered to background runs: %d\n%s", res.StatusCode, body)
		}

		// Disabled in Entra; two hours later (past session.revalidate_after)
		// her next request is served and starts a re-check, which ends the
		// session.
		e.tenant.DisableUser(alice)
		skew.Store(int64(2 * time.Hour))
		if res, _ := b.api(http.MethodGet, e.gw.URL+"/v1/models"); res.StatusCode != http.StatusOK {
			t.Fatalf("request that starts the re-check: %d", res.StatusCode)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			res, body := b.get(e.gw.URL + "/ui/")
			if res.StatusCode == http.StatusForbidden {
				if !strings.Contains(body, "disabled in Microsoft Entra ID") {
					t.Fatalf("ended-session page does not say why:\n%s", body)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("session still answers %d 30s after the re-check started", res.StatusCode)
			}
			time.Sleep(20 * time.Millisecond)
		}
		evs, err := st.SyncEvents(context.Background(), store.EventFilter{Kind: store.EventRevalidate, UserID: alice})
		if err != nil || len(evs) == 0 || evs[0].Detail != "account_disabled" {
			t.Errorf("revalidate events = %+v, %v; want one saying account_disabled", evs, err)
		}
		text := scrape(t, e)
		for _, want := range []string{
			`teamgate_background_sync_runs_total{mode="full",outcome="ok"} 1`,
			`teamgate_background_sync_runs_total{mode="incremental",outcome="ok"}`,
			`teamgate_background_sync_changes_total{change="memberships_removed"} 1`,
			`teamgate_session_revalidations_total{outcome="account_disabled"} 1`,
			`teamgate_graph_requests_total{endpoint="groupsDelta",status="200"}`,
		} {
			if !strings.Contains(text, want) {
				t.Errorf("metrics lack %q:\n%s", want, grepLines(text, "teamgate_background"))
			}
		}
	})
}
