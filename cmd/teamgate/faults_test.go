package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/teamgate/teamgate/gateway"
	"github.com/teamgate/teamgate/sync/fakeentra"
	"github.com/teamgate/teamgate/sync/store"
	"github.com/teamgate/teamgate/sync/store/storetest"
)

// Faults of Entra, Graph and the upstream, with the real store behind.

// faultDirectory has one user per fault case (u00…u19), all in two
// assigned groups, so every case signs in someone new.
func faultDirectory() fakeentra.Directory {
	dir := fakeentra.Directory{
		Groups:         []fakeentra.Group{{ID: "fault-a", DisplayName: "Fault A"}, {ID: "fault-b", DisplayName: "Fault B"}},
		AppAssignments: []string{"fault-a", "fault-b"},
	}
	for i := 0; i < 20; i++ {
		dir.Users = append(dir.Users, fakeentra.User{ID: fmt.Sprintf("u%02d", i), DisplayName: fmt.Sprintf("User %d", i),
			UPN: fmt.Sprintf("u%02d@example.com", i), MemberOf: []string{"fault-a", "fault-b"}})
	}
	return dir
}

// signInOutcome signs user in with a fresh browser and reports the final
// status, whether a session works afterwards and whether the user exists.
func signInOutcome(t *testing.T, e *e2e, st store.Store, user string) (status int, body string, signedIn, stored bool) {
	t.Helper()
	b := e.browser()
	res, body := b.signIn(e.gw.URL, "/landing", user)
	api, _ := b.api("GET", e.gw.URL+"/v1/models")
	_, err := st.User(t.Context(), user)
	return res.StatusCode, body, api.StatusCode == http.StatusOK, err == nil
}

func TestFaultEntraAndGraph(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := startE2E(t, st, e2eOptions{directory: faultDirectory(), tweak: func(c *Config) {
			c.Entra.GraphMaxAttempts = 3
			c.Entra.GraphMaxRetryTime = 5 * time.Second
			c.Entra.GraphTimeout = time.Second // the working sign-ins' calls must fit, on a slow machine too
		}})
		tests := []struct {
			name   string
			inject func()
			wantOK bool
		}{
			{"429 burst within the retries (Retry-After 0)", func() { e.tenant.FailNext("/memberOf", 2, http.StatusTooManyRequests, "0") }, true},
			{"429 burst beyond the retries", func() { e.tenant.FailNext("/memberOf", 10, http.StatusTooManyRequests, "0") }, false},
			{"429 with a Retry-After beyond the budget", func() { e.tenant.FailNext("/memberOf", 1, http.StatusTooManyRequests, "3600") }, false},
			{"503 burst within the retries", func() { e.tenant.FailNext("/memberOf", 2, http.StatusServiceUnavailable, "0") }, true},
			{"503 burst beyond the retries", func() { e.tenant.FailNext("/memberOf", 10, http.StatusServiceUnavailable, "") }, false},
			{"504 from the app assignments", func() { e.tenant.FailNext("/appRoleAssignedTo", 10, http.StatusGatewayTimeout, "") }, false},
			{"Graph slower than graph_timeout", func() { e.tenant.SetLatency("/memberOf", time.Hour) }, false},
			{"token endpoint down", func() { e.tenant.FailNext("/oauth2/v2.0/token", 10, http.StatusServiceUnavailable, "") }, false},
			{"token endpoint failing with 500", func() { e.tenant.FailNext("/oauth2/v2.0/token", 10, http.StatusInternalServerError, "") }, false},
			{"token endpoint throttling", func() { e.tenant.FailNext("/oauth2/v2.0/token", 10, http.StatusTooManyRequests, "5") }, false},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				user := fmt.Sprintf("u%02d", i)
				before := dbSnapshot(t, st)
				tt.inject()
				t.Cleanup(func() { e.tenant.SetLatency("/memberOf", 0) })
				start := time.Now()
				status, body, signedIn, stored := signInOutcome(t, e, st, user)
				took := time.Since(start)
				e.tenant.SetLatency("/memberOf", 0)
				title := pageTitle(body)
				t.Logf("answer: %d %q in %v", status, title, took.Round(time.Millisecond))
				if tt.wantOK {
					if status != http.StatusOK || !signedIn || !stored {
						t.Fatalf("status %d signedIn=%v stored=%v, want a working sign-in:\n%.300s", status, signedIn, stored, body)
					}
					return
				}
				if status != http.StatusServiceUnavailable && status != http.StatusBadGateway {
					t.Errorf("status %d %q, want a 503/502 page", status, title)
				}
				if !strings.Contains(strings.ToLower(body), "try again") && !strings.Contains(body, "administrator") {
					t.Errorf("the page does not say what to do: %.300s", body)
				}
				if signedIn || stored {
					t.Errorf("signedIn=%v stored=%v after a failed sign-in", signedIn, stored)
				}
				if after := dbSnapshot(t, st); after != before {
					t.Errorf("a failed sign-in changed teams or memberships:\nbefore %s\nafter  %s", before, after)
				}
				// The same user signs in fine once the fault is gone.
				drainFaults(e)
				if status, _, signedIn, _ := signInOutcome(t, e, st, user); status != http.StatusOK || !signedIn {
					t.Errorf("after the fault: %d signedIn=%v", status, signedIn)
				}
			})
		}
	})
}

// drainFaults consumes injected failures a case left unused, by calling
// the failing endpoints until they answer normally.
func drainFaults(e *e2e) {
	for _, path := range []string{"/memberOf", "/appRoleAssignedTo"} {
		for i := 0; i < 20; i++ {
			res, err := http.Get(e.tenant.GraphURL() + "/v1.0/users/u00/" + strings.TrimPrefix(path, "/"))
			if err != nil {
				break
			}
			res.Body.Close()
			if res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusNotFound {
				break // reached the real handler: no fault left for this path
			}
		}
	}
	for i := 0; i < 20; i++ {
		res, err := http.PostForm(e.tenant.TokenURL(), nil)
		if err != nil {
			break
		}
		res.Body.Close()
		if res.StatusCode == http.StatusBadRequest {
			break
		}
	}
}

func pageTitle(body string) string {
	if _, rest, ok := strings.Cut(body, "<h1"); ok {
		_, rest, _ = strings.Cut(rest, ">")
		title, _, _ := strings.Cut(rest, "<")
		return title
	}
	return ""
}

// Entra rolls its signing keys while users are signed in: their sessions
// go on, and new sign-ins verify tokens signed with the new key.
func TestFaultJWKSRotation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		e := startE2E(t, st, e2eOptions{directory: faultDirectory()})
		alice := e.browser()
		if res, _ := alice.signIn(e.gw.URL, "/", "u00"); res.StatusCode != http.StatusOK {
			t.Fatalf("first sign-in: %d", res.StatusCode)
		}
		for round := 1; round <= 3; round++ {
			fetches := e.tenant.Calls("/discovery/v2.0/keys")
			e.tenant.RotateKeys()
			if res, _ := alice.api("GET", e.gw.URL+"/v1/models"); res.StatusCode != http.StatusOK {
				t.Errorf("round %d: the signed-in session stopped working: %d", round, res.StatusCode)
			}
			user := fmt.Sprintf("u%02d", round)
			if status, body, signedIn, _ := signInOutcome(t, e, st, user); status != http.StatusOK || !signedIn {
				t.Fatalf("round %d: sign-in after the key roll: %d %q", round, status, pageTitle(body))
			}
			if e.tenant.Calls("/discovery/v2.0/keys") <= fetches {
				t.Errorf("round %d: the new kid did not make teamgate fetch the keys again", round)
			}
		}
	})
}

// faultUpstream is an upstream whose streams watch their request, and
// which counts its open connections and running handlers.
type faultUpstream struct {
	srv     *httptest.Server
	conns   atomic.Int64
	running atomic.Int64
	ended   chan struct{} // one value per finished /stream handler
}

func newFaultUpstream(t *testing.T) *faultUpstream {
	u := &faultUpstream{ended: make(chan struct{}, 1000)}
	u.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow-headers":
			<-r.Context().Done()
		case "/slow-body": // headers at once, the body after longer than response_header_timeout
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			http.NewResponseController(w).Flush()
			select {
			case <-time.After(600 * time.Millisecond):
				io.WriteString(w, "data: late\n\n")
			case <-r.Context().Done():
			}
		case "/stream":
			u.running.Add(1)
			defer func() { u.running.Add(-1); u.ended <- struct{}{} }()
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			rc := http.NewResponseController(w)
			for i := 0; ; i++ {
				if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
					return
				}
				rc.Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		default:
			io.WriteString(w, "ok")
		}
	}))
	u.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			u.conns.Add(1)
		case http.StateClosed, http.StateHijacked:
			u.conns.Add(-1)
		}
	}
	u.srv.Start()
	t.Cleanup(u.srv.Close)
	return u
}

func TestFaultUpstreamDownOrSlow(t *testing.T) {
	up := newFaultUpstream(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	for _, tc := range []struct {
		name, upstream, path string
		want                 int
	}{
		{"upstream down", deadURL, "/v1/models", http.StatusBadGateway},
		{"no headers within response_header_timeout", up.srv.URL, "/slow-headers", http.StatusGatewayTimeout},
		{"a slow body is not cut", up.srv.URL, "/slow-body", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startE2E(t, storetest.New(t, store.DialectSQLite), e2eOptions{tweak: func(c *Config) {
				c.Upstream.URL = tc.upstream
				c.Upstream.ResponseHeaderTimeout = gateway.Duration(300 * time.Millisecond)
			}})
			b := e.browser()
			b.signIn(e.gw.URL, "/oauth2/start?rd=%2Fteamgate%2Fhealthz", id("alice"))
			for _, accept := range []string{"text/html", "application/json"} {
				res, body := do(t, b.noRedirects(), mustReq(t, "GET", e.gw.URL+tc.path, "Accept", accept))
				t.Logf("%s: %d %q", accept, res.StatusCode, pageTitle(body))
				if res.StatusCode != tc.want {
					t.Errorf("%s: %d, want %d: %.200s", accept, res.StatusCode, tc.want, body)
				}
				if tc.want == http.StatusOK && !strings.Contains(body, "late") {
					t.Errorf("the slow body was cut: %q", body)
				}
			}
		})
	}
}

// Clients that go away mid-stream leave nothing behind: the upstream
// requests end, the upstream connections close, and the goroutine count
// returns to where it was.
func TestFaultClientDisconnectMidStream(t *testing.T) {
	up := newFaultUpstream(t)
	e := startE2E(t, storetest.New(t, store.DialectSQLite), e2eOptions{tweak: func(c *Config) { c.Upstream.URL = up.srv.URL }})
	b := e.browser()
	b.signIn(e.gw.URL, "/oauth2/start?rd=%2Fteamgate%2Fhealthz", id("alice"))
	cookie := sessionCookieOf(t, e, b)
	addr := strings.TrimPrefix(e.gw.URL, "http://")

	stream := func() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close() // the client goes away mid-stream
		fmt.Fprintf(c, "GET /stream HTTP/1.1\r\nHost: x\r\nCookie: teamgate_session=%s\r\nAccept: text/event-stream\r\n\r\n", cookie)
		br := bufio.NewReader(c)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Error(err)
			return
		}
		line, _ := bufio.NewReader(res.Body).ReadString('\n')
		if !strings.HasPrefix(line, "data: ") {
			t.Errorf("first event %q", line)
		}
	}
	stream() // warm up pools and caches
	<-up.ended
	runtime.GC()
	baseGoroutines, baseConns := runtime.NumGoroutine(), up.conns.Load()

	const clients = 50
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); stream() }()
	}
	wg.Wait()
	for i := 0; i < clients; i++ {
		select {
		case <-up.ended:
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d of %d upstream streams ended after their clients left", i, clients)
		}
	}
	// Connections and goroutines are torn down asynchronously: poll.
	deadline := time.Now().Add(10 * time.Second)
	var g int
	var conns int64
	for {
		runtime.GC()
		g, conns = runtime.NumGoroutine(), up.conns.Load()
		if (g <= baseGoroutines+5 && conns <= baseConns) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("goroutines %d → %d, upstream connections %d → %d, streams running %d", baseGoroutines, g, baseConns, conns, up.running.Load())
	if g > baseGoroutines+5 {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines leaked: %d before, %d after %d abandoned streams\n%s", baseGoroutines, g, clients, buf[:runtime.Stack(buf, true)])
	}
	if conns > baseConns {
		t.Errorf("upstream connections leaked: %d before, %d after", baseConns, conns)
	}
	if n := up.running.Load(); n != 0 {
		t.Errorf("%d upstream streams still running", n)
	}
}
