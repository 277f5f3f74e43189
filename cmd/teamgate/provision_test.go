package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/fakeentra"
	"github.com/teamgate/teamgate/sync/litellmfake"
	"github.com/teamgate/teamgate/sync/store"
)

func TestParseConfigLiteLLM(t *testing.T) {
	tests := []struct {
		name          string
		yaml          string
		env           map[string]string
		wantEnabled   bool
		wantURL       string
		wantErr       []string
		wantBlock     bool
		wantWait      bool
		wantTimeoutIs time.Duration
	}{
		{name: "absent: off", wantBlock: true, wantURL: "http://localhost:4000", wantTimeoutIs: 10 * time.Second},
		{
			name: "master key from the environment turns it on; url defaults to upstream.url",
			yaml: "litellm:\n  master_key: \"${LITELLM_MASTER_KEY}\"\n", env: map[string]string{"LITELLM_MASTER_KEY": "sk-1"},
			wantEnabled: true, wantBlock: true, wantURL: "http://localhost:4000", wantTimeoutIs: 10 * time.Second,
		},
		{
			name:        "explicitly off despite a key",
			yaml:        "litellm:\n  master_key: sk-1\n  provision: false\n",
			wantURL:     "http://localhost:4000",
			wantBlock:   true,
			wantEnabled: false, wantTimeoutIs: 10 * time.Second,
		},
		{
			name:        "everything set",
			yaml:        "litellm:\n  url: http://litellm:4000\n  master_key: sk-1\n  provision: true\n  block_unassigned_teams: false\n  wait_on_sign_in: true\n  wait_timeout: 3s\n",
			wantEnabled: true, wantURL: "http://litellm:4000", wantWait: true, wantTimeoutIs: 3 * time.Second,
		},
		{
			name:    "errors name their keys",
			yaml:    "litellm:\n  url: litellm:4000\n  provision: true\n  wait_timeout: 0s\n  bogus: 1\n",
			wantErr: []string{"litellm.bogus: unknown key"},
		},
		{
			name:    "validation errors name their keys",
			yaml:    "litellm:\n  url: litellm:4000\n  provision: true\n  wait_timeout: 0s\n",
			wantErr: []string{"litellm.url:", "litellm.master_key: required when litellm.provision is true", "litellm.wait_timeout: must be positive"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"SECRET": "x", "SESSION": strings.Repeat("k", 40)}
			for k, v := range tc.env {
				env[k] = v
			}
			cfg, err := parseConfig("test.yaml", []byte(validYAML+tc.yaml), mapEnv(env))
			if len(tc.wantErr) > 0 {
				for _, w := range tc.wantErr {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Errorf("error = %v, want it to contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l := cfg.LiteLLM
			if l.Enabled() != tc.wantEnabled || litellmURL(cfg) != tc.wantURL || l.BlockUnassignedTeams != tc.wantBlock ||
				l.WaitOnSignIn != tc.wantWait || l.WaitTimeout != tc.wantTimeoutIs {
				t.Errorf("litellm = %+v (enabled %v, url %s)", l, l.Enabled(), litellmURL(cfg))
			}
		})
	}
}

// `teamgate check` verifies the master key when provisioning is on.
func TestCheckLiteLLM(t *testing.T) {
	fake := litellmfake.New("sk-right")
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	tests := []struct {
		name, url, key string
		wantErr, want  string // wantErr "": the check passes
	}{
		{name: "off without a key"},
		{name: "accepted", url: srv.URL, key: "sk-right", want: "accepted by " + srv.URL},
		{name: "wrong key", url: srv.URL, key: "sk-wrong", wantErr: "master key rejected", want: "set litellm.master_key"},
		{name: "unreachable", url: dead.URL, key: "sk-right", wantErr: "unreachable", want: "reachable at litellm.url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultConfig()
			cfg.LiteLLM.URL, cfg.LiteLLM.MasterKey = tc.url, tc.key
			got := checkLiteLLM(context.Background(), cfg)
			if tc.key == "" {
				if len(got) != 0 {
					t.Errorf("checks = %+v, want none", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("checks = %+v, want one", got)
			}
			r := got[0]
			switch {
			case tc.wantErr == "" && (r.err != nil || r.detail != tc.want):
				t.Errorf("check = %+v, want ok with %q", r, tc.want)
			case tc.wantErr != "" && (r.err == nil || !strings.Contains(r.err.Error(), tc.wantErr) || !strings.Contains(r.fix, tc.want)):
				t.Errorf("check = %+v (err %v), want an error with %q and a fix with %q", r, r.err, tc.wantErr, tc.want)
			}
			if r.err != nil && strings.Contains(r.err.Error(), tc.key) {
				t.Errorf("the check's error shows the master key: %v", r.err)
			}
		})
	}
}

// `teamgate dev --litellm-fake`: the fake LiteLLM is the upstream and is
// provisioned by the running worker.
func TestDevLiteLLMFake(t *testing.T) {
	d := startDevT(t, devOptions{listen: "127.0.0.1:0", dbURL: "sqlite::memory:", directory: fakeentra.DemoDirectory(), litellmFake: true}, io.Discard)
	var welcome bytes.Buffer
	d.printWelcome(&welcome)
	if !strings.Contains(welcome.String(), "Fake LiteLLM:      "+d.litellmURL) || !strings.Contains(welcome.String(), devMasterKey) || d.upstream != d.litellmURL {
		t.Errorf("welcome text (upstream %s):\n%s", d.upstream, welcome.String())
	}

	res, body := (&e2e{t: t}).browser().signIn(d.publicURL, "/", fakeentra.DemoID("alice"))
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `"path"`) {
		t.Fatalf("after sign-in: %d %s, want the fake LiteLLM's answer", res.StatusCode, body)
	}
	ids := pendingIDs(t, d.app.store)
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	if err := d.app.prov.worker.WaitFor(wctx, ids); err != nil {
		t.Fatalf("the running worker did not deliver: %v", err)
	}
	tm, ok := d.litellm.Team(fakeentra.DemoID("engineering"))
	if !ok || tm.Alias != "Engineering" {
		t.Fatalf("engineering in the fake LiteLLM: %+v, %v", tm, ok)
	}
	var users []string
	for _, m := range tm.Members {
		users = append(users, m.UserID)
	}
	if !slices.Contains(users, fakeentra.DemoID("alice")) {
		t.Errorf("engineering members = %v, want alice", users)
	}
}

// serve runs the outbox worker and, at shutdown, delivers what is still due
// before it returns.
func TestServeRunsAndDrainsTheWorker(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		p := startProvisionE2E(t, st, nil)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.app.serve(ctx, "", ln) }()

		p.signIn("alice-oid")
		ids := pendingIDs(t, st)
		if err := p.app.prov.worker.WaitFor(context.Background(), ids); err != nil {
			t.Fatalf("the worker serve started did not deliver: %v", err)
		}
		if _, ok := p.litellm.User("alice-oid"); !ok {
			t.Fatal("alice is not in LiteLLM")
		}

		p.signIn("bob-oid") // enqueued just before shutdown
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("serve: %v", err)
		}
		if ids := pendingIDs(t, st); len(ids) != 0 {
			t.Errorf("operations %v still pending after shutdown", ids)
		}
		if _, ok := p.litellm.User("bob-oid"); !ok {
			t.Error("bob (signed in just before shutdown) is not in LiteLLM")
		}
	})
}

func pendingIDs(t *testing.T, st store.Store) []int64 {
	t.Helper()
	ops, err := st.ListOutbox(context.Background(), store.OutboxFilter{Status: store.OutboxPending, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, 0, len(ops))
	for _, op := range ops {
		ids = append(ids, op.ID)
	}
	return ids
}
