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
	"github.com/teamgate/teamgate/sync/litellmfake"
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

// Two teamgate processes on one PostgreSQL behind one public URL, both
// provisioning into one (fake) LiteLLM. They migrate the empty database at
// the same moment; publish the same JWKS, so an assertion one signs
// verifies against the other's; deliver each LiteLLM operation of
// concurrent sign-ins on both exactly once; share sessions; and a sign-out
// on A is refused by B (at once through PostgreSQL NOTIFY, and within
// session.cache_ttl in any case).
func TestTwoReplicasShareOnePostgres(t *testing.T) {
	dbURL := storetest.PostgresURL(t)
	dir := replicaDirectory()
	tn, err := fakeentra.New(fakeentra.Config{TenantID: "tid", ClientID: "cid", ClientSecret: "replica-secret",
		ServicePrincipalID: "sp", Directory: dir})
	if err != nil {
		t.Fatal(err)
	}
	entra := httptest.NewServer(tn)
	defer entra.Close()
	tn.SetBaseURL(entra.URL)
	up := &recorder{events: make(chan string)}
	upSrv := httptest.NewServer(up)
	defer upSrv.Close()
	lite := litellmfake.New(e2eMasterKey)
	liteSrv := httptest.NewServer(lite)
	defer liteSrv.Close()

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
  cache_ttl: %s
admin:
  api_token: replica-admin-token-123
litellm:
  url: %q
  master_key: %q
sync:
  interval: 1s
log:
  level: debug
`, listen, addrA, upSrv.URL, tn.AuthorityHost(), tn.GraphURL(), dbURL, strings.Repeat("r", 40), replicaCacheTTL,
			liteSrv.URL, e2eMasterKey)
	}
	// Both start at once against the empty schema: migrations must serialize.
	a := startProcess(t, config(addrA), addrA)
	b := startProcess(t, config(addrB), addrB)
	a.waitReady(t)
	b.waitReady(t)
	st, err := store.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	// One signing key in the database, so one JWKS, byte for byte.
	jwksA, etagA := fetchJWKS(t, a.url)
	jwksB, etagB := fetchJWKS(t, b.url)
	if jwksA != jwksB || etagA != etagB || etagA == "" {
		t.Fatalf("replicas publish different JWKS:\nA: %s (%s)\nB: %s (%s)", jwksA, etagA, jwksB, etagB)
	}

	// Every user's first sign-in at once, alternating between A and B: the
	// teams they share are created once, and both replicas' workers deliver
	// the outbox with each operation reaching LiteLLM exactly once.
	var users []string
	for _, u := range dir.Users {
		users = append(users, u.ID)
	}
	signInAll(t, "http://"+addrA, users, a, b)
	waitOutboxEmpty(t, st, a, b)
	want := wantedOps(dir)
	checkProvisionedOnce(t, lite, want)
	// Each delivery is logged by the replica that made it (the log is
	// flushed within 100ms); between them they made each one once.
	for deadline := time.Now().Add(10 * time.Second); a.deliveries()+b.deliveries() < len(want) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if n := a.deliveries() + b.deliveries(); n != len(want) {
		t.Errorf("the replicas logged %d deliveries (A %d, B %d), want %d", n, a.deliveries(), b.deliveries(), len(want))
	}
	t.Logf("outbox: A delivered %d operations, B %d", a.deliveries(), b.deliveries())

	// A session made on A works on B, and the assertion each replica sends
	// upstream verifies against the other's JWKS.
	user := users[0]
	br := (&e2e{t: t}).browser()
	res, _ := br.signIn(a.url, "/on-a", user)
	if res.StatusCode != http.StatusOK || up.last(t).URL.Path != "/on-a" {
		t.Fatalf("sign-in on A: %d\nA log:\n%s", res.StatusCode, a.logs.String())
	}
	issuer := "http://" + addrA
	verifyAt(t, b.url, issuer, upSrv.URL, up.last(t).Header.Get("X-Teamgate-Assertion"), user)
	cookie := sessionCookie(t, br, a.url)
	code := withCookie(t, b.url+"/on-b", cookie)
	loaded := time.Now()
	if code != http.StatusOK || up.last(t).URL.Path != "/on-b" || up.last(t).Header.Get("X-Forwarded-User") != user {
		t.Fatalf("session from A used on B: %d, upstream saw %s as %q", code, up.last(t).URL.Path, up.last(t).Header.Get("X-Forwarded-User"))
	}
	verifyAt(t, a.url, issuer, upSrv.URL, up.last(t).Header.Get("X-Teamgate-Assertion"), user)

	// Sign-out on A ends the session in the database; A refuses the cookie
	// at once, B as soon as it hears A's notification (PostgreSQL NOTIFY)
	// and at the latest once its cached copy, loaded before loaded, is older
	// than cache_ttl. That B hears it before cache_ttl is
	// shown in process, with a 10-minute cache_ttl
	// (TestTwoReplicasRevocationHeardAtOnce); here the bound is cache_ttl.
	br.get(a.url + "/oauth2/sign_out")
	if code := withCookie(t, a.url+"/after-sign-out", cookie); code != http.StatusUnauthorized {
		t.Errorf("A after its own sign-out: %d, want 401", code)
	}
	for {
		sent := time.Now()
		code := withCookie(t, b.url+"/after-sign-out", cookie)
		if code == http.StatusUnauthorized {
			t.Logf("B refused the signed-out session %v after loading it (cache_ttl %v)", time.Since(loaded).Round(time.Millisecond), replicaCacheTTL)
			break
		}
		if code != http.StatusOK {
			t.Fatalf("B after sign-out on A: %d, want 200 (cached) or 401", code)
		}
		// B loaded the session before `loaded`, so a request sent after
		// loaded+cache_ttl finds its copy stale and reads the database.
		if sent.After(loaded.Add(replicaCacheTTL)) {
			t.Fatalf("B still accepts a session signed out on A: request sent %v after B loaded it, cache_ttl %v",
				sent.Sub(loaded).Round(time.Millisecond), replicaCacheTTL)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Both replicas run the background sync every second: one leader at a
	// time, and never two runs within half an interval of each other.
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
