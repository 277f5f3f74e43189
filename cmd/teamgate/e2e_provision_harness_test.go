package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/teamgate/teamgate/gateway"
	"github.com/teamgate/teamgate/sync/fakeentra"
	"github.com/teamgate/teamgate/sync/litellmfake"
	"github.com/teamgate/teamgate/sync/store"
)

// Helpers for e2e_provision_test.go: an e2e run provisioning into a fake
// LiteLLM, with a clock the test moves.

const e2eMasterKey = "sk-e2e-master-key-0123456789"

// offsetClock is real time plus an offset the test advances, so operations
// enqueued by the reconcile (real time) become due when the test says.
type offsetClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *offsetClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *offsetClock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// provisionDir: alice in Engineering and Data Science, bob in Engineering;
// Operations is assigned too (a team without members), Marketing is not.
func provisionDir() fakeentra.Directory {
	return fakeentra.Directory{
		Users: []fakeentra.User{
			{ID: "alice-oid", DisplayName: "Alice", Mail: "Alice@Example.com", UPN: "alice@example.com", MemberOf: []string{"eng", "ds", "mkt"}},
			{ID: "bob-oid", DisplayName: "Bob", Mail: "bob@example.com", UPN: "bob@example.com", MemberOf: []string{"eng"}},
		},
		Groups: []fakeentra.Group{
			{ID: "eng", DisplayName: "Engineering"}, {ID: "ds", DisplayName: "Data Science"},
			{ID: "ops", DisplayName: "Operations"}, {ID: "mkt", DisplayName: "Marketing"},
		},
		AppAssignments: []string{"eng", "ds", "ops"},
	}
}

// provisionE2E is an e2e run with provisioning into a fake LiteLLM.
type provisionE2E struct {
	*e2e
	litellm *litellmfake.Server
	clock   *offsetClock
	opts    e2eOptions
}

func startProvisionE2E(t *testing.T, st store.Store, tweak func(*Config)) *provisionE2E {
	t.Helper()
	fake := litellmfake.New(e2eMasterKey)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	p := &provisionE2E{litellm: fake, clock: &offsetClock{}}
	p.opts = e2eOptions{directory: provisionDir(), provisionClock: p.clock.now, tweak: func(c *Config) {
		c.LiteLLM.URL, c.LiteLLM.MasterKey = srv.URL, e2eMasterKey
		if tweak != nil {
			tweak(c)
		}
	}}
	p.e2e = startE2E(t, st, p.opts)
	if p.app.prov == nil {
		t.Fatal("provisioning is off although litellm.master_key is set")
	}
	return p
}

// drain delivers everything due with this app's worker.
func (p *provisionE2E) drain() int {
	p.t.Helper()
	n, err := p.app.prov.worker.Drain(context.Background())
	if err != nil {
		p.t.Fatalf("Drain: %v", err)
	}
	return n
}

func (p *provisionE2E) signIn(userID string) {
	p.t.Helper()
	res, body := p.browser().signIn(p.gw.URL, "/", userID)
	if res.StatusCode != http.StatusOK || res.Request.URL.Host != strings.TrimPrefix(p.gw.URL, "http://") {
		p.t.Fatalf("sign-in of %s ended with %d at %s: %.300s", userID, res.StatusCode, res.Request.URL, body)
	}
}

// calls counts the fake's answered requests per path and status, e.g.
// "/team/new 200": 3.
func (p *provisionE2E) calls() map[string]int {
	out := map[string]int{}
	for _, r := range p.litellm.Requests() {
		out[fmt.Sprintf("%s %d", r.Path, r.Status)]++
	}
	return out
}

func (p *provisionE2E) team(id string) litellmfake.Team {
	p.t.Helper()
	tm, ok := p.litellm.Team(id)
	if !ok {
		p.t.Fatalf("team %s is not in LiteLLM", id)
	}
	return tm
}

// members lists a team's members as user:role, the master key's automatic
// admin entry included.
func members(tm litellmfake.Team) []string {
	var out []string
	for _, m := range tm.Members {
		out = append(out, m.UserID+":"+m.Role)
	}
	sort.Strings(out)
	return out
}

func (p *provisionE2E) outbox(status string) []gateway.AdminOutboxOp {
	p.t.Helper()
	var ops []gateway.AdminOutboxOp
	if code := p.admin("/teamgate/api/outbox?status="+status, &ops); code != http.StatusOK {
		p.t.Fatalf("GET outbox: %d", code)
	}
	return ops
}

func (p *provisionE2E) adminPost(path string) (int, string) {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.gw.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+p.adminTok)
	res, body := do(p.t, http.DefaultClient, req)
	return res.StatusCode, body
}

func wantCalls(t *testing.T, what string, got map[string]int, want map[string]int) {
	t.Helper()
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %d × %q, want %d (all calls: %v)", what, got[k], k, n, got)
		}
	}
}
