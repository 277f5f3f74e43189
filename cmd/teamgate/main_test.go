package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/teamgate/teamgate/sync/fakeentra"
)

func TestRunCommands(t *testing.T) {
	tests := []struct {
		args     []string
		wantErr  string
		wantCode int
		wantOut  string
	}{
		{args: nil, wantErr: "a command is required", wantCode: 2},
		{args: []string{"bogus"}, wantErr: `unknown command "bogus"`, wantCode: 2},
		{args: []string{"version"}, wantOut: "teamgate "},
		{args: []string{"version", "--help"}, wantErr: flag.ErrHelp.Error(), wantCode: 0},
		{args: []string{"version", "extra"}, wantErr: `unexpected argument "extra"`, wantCode: 2},
		{args: []string{"healthcheck", "--help"}, wantErr: flag.ErrHelp.Error(), wantCode: 0},
		{args: []string{"migrate", "--help"}, wantErr: flag.ErrHelp.Error(), wantCode: 0},
		{args: []string{"check", "--help"}, wantErr: flag.ErrHelp.Error(), wantCode: 0},
		{args: []string{"help"}, wantOut: "teamgate dev"},
		{args: []string{"serve", "--help"}, wantErr: flag.ErrHelp.Error(), wantCode: 0},
		{args: []string{"dev", "-h"}, wantErr: flag.ErrHelp.Error(), wantCode: 0},
		{args: []string{"serve", "--nope"}, wantErr: "flag provided but not defined", wantCode: 2},
		{args: []string{"migrate", "extra"}, wantErr: `unexpected argument "extra"`, wantCode: 2},
		{args: []string{"serve", "--config", "/does/not/exist.yaml"}, wantErr: "no such file", wantCode: 1},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), tc.args, mapEnv(nil), &out, &errOut)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			} else if code := exitCode(err); code != tc.wantCode {
				t.Errorf("exit code = %d, want %d", code, tc.wantCode)
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("stdout = %q, want %q in it", out.String(), tc.wantOut)
			}
		})
	}
}

func TestServeHelpListsFlags(t *testing.T) {
	var errOut bytes.Buffer
	err := run(context.Background(), []string{"check", "--help"}, mapEnv(nil), io.Discard, &errOut)
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut.String(), "-config") {
		t.Errorf("check --help: %v\n%s", err, errOut.String())
	}
}

// writeConfig writes a config pointing at a fake tenant.
func writeConfig(t *testing.T, tn *fakeentra.Tenant, secret string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	body := "entra:\n  tenant_id: " + tn.TenantID() + "\n  client_id: " + tn.ClientID() +
		"\n  client_secret: \"${SECRET}\"\n  authority_host: " + tn.AuthorityHost() + "\n  graph_url: " + tn.GraphURL() +
		"\n  service_principal_id: " + tn.ServicePrincipalID() +
		"\nsession:\n  secret: \"" + strings.Repeat("x", 32) + "\"\ndatabase:\n  url: \"sqlite:" + filepath.Join(t.TempDir(), "t.db") + "\"\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckAndMigrate(t *testing.T) {
	tn, err := fakeentra.New(fakeentra.Config{TenantID: "tid", ClientID: "cid", ClientSecret: "right-secret",
		ServicePrincipalID: "sp", Directory: fakeentra.DemoDirectory()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(tn)
	defer srv.Close()
	tn.SetBaseURL(srv.URL)
	path := writeConfig(t, tn, "")

	var out bytes.Buffer
	if err := run(context.Background(), []string{"check", "--config", path}, mapEnv(map[string]string{"SECRET": "right-secret"}), &out, io.Discard); err != nil {
		t.Fatalf("check: %v\n%s", err, out.String())
	}
	for _, w := range []string{"ok    config", "ok    OIDC discovery", "ok    app token", "ok    app groups: 255 groups",
		"ok    group delta (background sync): GET /groups/delta answers; runs every 5m0s", "ok    database"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("check output lacks %q:\n%s", w, out.String())
		}
	}

	out.Reset()
	err = run(context.Background(), []string{"check", "--config", path}, mapEnv(map[string]string{"SECRET": "wrong-secret"}), &out, io.Discard)
	if err == nil || !strings.Contains(out.String(), "FAIL  app token") || !strings.Contains(out.String(), "fix: check entra.tenant_id, entra.client_id and entra.client_secret") {
		t.Errorf("check with a wrong secret: %v\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "wrong-secret") {
		t.Error("check printed the client secret")
	}

	tn.SetAppPermissions("GroupMember.Read.All")
	out.Reset()
	run(context.Background(), []string{"check", "--config", path}, mapEnv(map[string]string{"SECRET": "right-secret"}), &out, io.Discard)
	if !strings.Contains(out.String(), "FAIL  app groups") || !strings.Contains(out.String(), "Application.Read.All") {
		t.Errorf("check without Application.Read.All:\n%s", out.String())
	}
	tn.SetAppPermissions("Application.Read.All", "User.Read.All")
	out.Reset()
	run(context.Background(), []string{"check", "--config", path}, mapEnv(map[string]string{"SECRET": "right-secret"}), &out, io.Discard)
	if !strings.Contains(out.String(), "FAIL  group delta (background sync)") || !strings.Contains(out.String(), "GroupMember.Read.All") ||
		!strings.Contains(out.String(), "sync.interval: 0") {
		t.Errorf("check without GroupMember.Read.All:\n%s", out.String())
	}

	out.Reset()
	if err := run(context.Background(), []string{"migrate", "--config", path}, mapEnv(map[string]string{"SECRET": "x"}), &out, io.Discard); err != nil ||
		!strings.Contains(out.String(), "migrations applied") {
		t.Errorf("migrate: %v %s", err, out.String())
	}
}

// startDevT runs `teamgate dev` for a test until it ends.
func startDevT(t *testing.T, o devOptions, logw io.Writer) *devEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d, err := startDev(ctx, o, logw)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.wait(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dev stopped with %v", err)
		}
		d.close()
	})
	return d
}

// `teamgate dev` end to end: the demo upstream shows the signed-in user's identity.
func TestDevSignInShowsIdentity(t *testing.T) {
	d := startDevT(t, devOptions{listen: "127.0.0.1:0", dbURL: "sqlite:" + filepath.Join(t.TempDir(), "dev.db"), directory: fakeentra.DemoDirectory()}, io.Discard)
	var welcome bytes.Buffer
	d.printWelcome(&welcome)
	if !strings.Contains(welcome.String(), d.publicURL) || !strings.Contains(welcome.String(), "alice@example.com") {
		t.Errorf("welcome text:\n%s", welcome.String())
	}

	e := &e2e{t: t}
	b := e.browser()
	res, body := b.signIn(d.publicURL, "/", fakeentra.DemoID("alice"))
	if res.StatusCode != http.StatusOK || !strings.Contains(body, fakeentra.DemoID("alice")) || !strings.Contains(body, "X-Forwarded-Email") {
		t.Fatalf("demo page after sign-in: %d\n%.800s", res.StatusCode, body)
	}
	res, body = b.get(d.publicURL+"/stream", "Accept", "text/event-stream")
	if res.StatusCode != http.StatusOK || strings.Count(body, "data: ") != 11 || !strings.Contains(body, fakeentra.DemoID("alice")) {
		t.Errorf("demo stream: %d\n%s", res.StatusCode, body)
	}
}

func TestHealthcheck(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/teamgate/healthz" {
			http.NotFound(w, r)
		}
	}))
	defer up.Close()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"healthcheck", "--url", up.URL + "/teamgate/healthz"}, mapEnv(nil), &out, io.Discard); err != nil || out.String() != "ok\n" {
		t.Errorf("healthy: %v %q", err, out.String())
	}
	if err := run(context.Background(), []string{"healthcheck", "--url", up.URL + "/nope"}, mapEnv(nil), io.Discard, io.Discard); err == nil {
		t.Error("404 answered as healthy")
	}
}

// `teamgate dev` restarted on the same database keeps working: its session
// secret (which seals the stored assertion key) is kept next to the database.
func TestDevRestartsOnItsDatabase(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "dev.db")
	for i := 0; i < 2; i++ {
		d, err := startDev(context.Background(), devOptions{listen: "127.0.0.1:0", dbURL: db, directory: fakeentra.DemoDirectory()}, io.Discard)
		if err != nil {
			t.Fatalf("start %d: %v", i+1, err)
		}
		d.close()
	}
	info, err := os.Stat(strings.TrimPrefix(db, "sqlite:") + ".secret")
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("secret file: %v, mode %v", err, info.Mode())
	}
}
