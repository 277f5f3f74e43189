package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/fakeentra"
	"github.com/teamgate/teamgate/sync/store"
	"github.com/teamgate/teamgate/sync/store/storetest"
)

// TestMain lets the test binary stand in for the teamgate binary: with
// TEAMGATE_TEST_RUN_MAIN=1 it runs main's run() with its arguments, so tests
// can start real teamgate processes without building one.
func TestMain(m *testing.M) {
	if os.Getenv("TEAMGATE_TEST_RUN_MAIN") == "1" {
		ctx, stop := signalContext()
		err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "teamgate:", err)
			os.Exit(exitCode(err))
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// process is one `teamgate serve` child.
type process struct {
	cmd  *exec.Cmd
	url  string
	logs *syncBuffer
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startProcess runs `teamgate serve --config` in a child process and waits
// until it is ready.
func startProcess(t *testing.T, config string, addr string) *process {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &process{url: "http://" + addr, logs: &syncBuffer{}}
	p.cmd = exec.Command(os.Args[0], "serve", "--config", path)
	p.cmd.Env = append(os.Environ(), "TEAMGATE_TEST_RUN_MAIN=1")
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- p.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("teamgate process exited with %v on SIGINT; log:\n%s", err, p.logs.String())
			}
		case <-time.After(30 * time.Second):
			p.cmd.Process.Kill()
			t.Errorf("teamgate process did not stop on SIGINT")
		}
	})
	return p
}

// waitReady polls readyz; a process start is the one thing we must wait for.
func (p *process) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get(p.url + "/teamgate/readyz")
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if p.cmd.ProcessState != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("teamgate at %s never became ready; log:\n%s", p.url, p.logs.String())
}

// Two teamgate processes on one PostgreSQL behind one public URL: a session
// made on A works on B, a sign-out on A is refused by B, and both migrate
// the empty database at the same moment.
func TestTwoReplicasShareOnePostgres(t *testing.T) {
	dbURL := storetest.PostgresURL(t)
	tn, err := fakeentra.New(fakeentra.Config{TenantID: "tid", ClientID: "cid", ClientSecret: "replica-secret",
		ServicePrincipalID: "sp", Directory: fakeentra.DemoDirectory()})
	if err != nil {
		t.Fatal(err)
	}
	entra := httptest.NewServer(tn)
	defer entra.Close()
	tn.SetBaseURL(entra.URL)
	up := &recorder{events: make(chan string)}
	upSrv := httptest.NewServer(up)
	defer upSrv.Close()

	addrA, addrB := freePort(t), freePort(t)
	config := func(listen string) string {
		return fmt.Sprintf(`server:
  listen: %q
  public_url: "http://%s"
upstream:
  url: %q
entra:
  tenant_id: tid
  client_id: cid
  client_secret: replica-secret
  authority_host: %q
  graph_url: %q
  service_principal_id: sp
database:
  url: %q
session:
  secret: %q
  cache_ttl: 1ms
admin:
  api_token: replica-admin-token-123
sync:
  interval: 1s
log:
  level: debug
`, listen, addrA, upSrv.URL, tn.AuthorityHost(), tn.GraphURL(), dbURL, strings.Repeat("r", 40))
	}
	// Both start at once against the empty schema: migrations must serialize.
	a := startProcess(t, config(addrA), addrA)
	b := startProcess(t, config(addrB), addrB)
	a.waitReady(t)
	b.waitReady(t)

	br := (&e2e{t: t}).browser()
	res, _ := br.signIn(a.url, "/on-a", fakeentra.DemoID("alice"))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("sign-in on A: %d\nA log:\n%s", res.StatusCode, a.logs.String())
	}
	// The cookie jar ignores ports, as browsers do: B gets A's cookie.
	res, _ = br.api("GET", b.url+"/on-b")
	if res.StatusCode != http.StatusOK || up.last(t).URL.Path != "/on-b" || up.last(t).Header.Get("X-Forwarded-User") != fakeentra.DemoID("alice") {
		t.Fatalf("session from A used on B: %d, upstream saw %s as %q", res.StatusCode, up.last(t).URL.Path, up.last(t).Header.Get("X-Forwarded-User"))
	}

	br.get(a.url + "/oauth2/sign_out")
	res, _ = br.api("GET", b.url+"/after-sign-out")
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("B after sign-out on A: %d, want 401", res.StatusCode)
	}
	// Both replicas run the background sync every second: one leader at a
	// time, and never two runs within half an interval of each other.
	st, err := store.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var runs []store.SyncEvent
	for deadline := time.Now().Add(30 * time.Second); len(runs) < 5; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d background runs in 30s, want 5\nA log:\n%s", len(runs), a.logs.String())
		}
		evs, err := st.SyncEvents(context.Background(), store.EventFilter{Kind: store.EventBackground, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		runs = runs[:0]
		for _, e := range evs {
			if e.UserID == "" {
				runs = append(runs, e)
			}
		}
	}
	slices.SortFunc(runs, func(x, y store.SyncEvent) int { return x.At.Compare(y.At) })
	for i, r := range runs {
		if r.Outcome != "ok" {
			t.Errorf("background run %d: %+v", i, r)
		}
		if i > 0 && r.At.Sub(runs[i-1].At) < 400*time.Millisecond {
			t.Errorf("background runs %d and %d started %v apart: two replicas ran the job", i-1, i, r.At.Sub(runs[i-1].At))
		}
	}
	ran := 0
	for _, p := range []*process{a, b} {
		if strings.Contains(p.logs.String(), "background sync run") {
			ran++
		}
	}
	t.Logf("%d background runs; %d of 2 replicas led at least one", len(runs), ran)

	for name, p := range map[string]*process{"A": a, "B": b} {
		if strings.Contains(p.logs.String(), "level=ERROR") || strings.Contains(p.logs.String(), `"level":"ERROR"`) {
			t.Errorf("%s logged errors:\n%s", name, p.logs.String())
		}
	}
}
