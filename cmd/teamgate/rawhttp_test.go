package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/teamgate/teamgate/sync/store"
	"github.com/teamgate/teamgate/sync/store/storetest"
)

// Hostile HTTP sent over raw TCP, so that no client library cleans it up
// first, to teamgate served exactly as `teamgate serve` serves it (the
// http.Server settings of serve.go, MaxHeaderBytes included).

// serveRaw runs the e2e app with app.serve on a fresh listener and returns
// its address.
func serveRaw(t *testing.T, e *e2e) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.app.serve(ctx, "", ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// rawAnswer is what came back on one connection.
type rawAnswer struct {
	status int
	header http.Header
	body   string
	// more is a second response found on the same connection (a smuggled
	// request answered), "" if none; closed says the server closed it.
	more   string
	closed bool
}

// dialRaw opens a connection to addr with a 10 s deadline and writes raw.
func dialRaw(t *testing.T, addr, raw string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		c.Close()
		t.Fatal(err)
	}
	return c, bufio.NewReader(c)
}

// rawAfter says what sendRaw does after the first answer.
type rawAfter int

const (
	// rawFirstOnly: nothing. The caller looks at the first answer only
	// (more and closed stay unset), so a connection the server keeps alive
	// costs no wait.
	rawFirstOnly rawAfter = iota
	// rawUntilEnd: the connection is expected to end, after at most one
	// more answer. sendRaw waits, up to rawEndWait, for that answer (more)
	// or the close (closed). A connection the server keeps open comes back
	// with neither, after rawEndWait: only a failing run waits that long.
	rawUntilEnd
)

// rawEndWait bounds the wait for an answer or a close that is expected
// after the first answer: generous, so that a loaded machine cannot make a
// test miss them. It only runs out in a failing run, where the server kept
// open a connection it should have closed. It stays below serve.go's
// ReadHeaderTimeout (15 s) and IdleTimeout, so that the server's own
// timeouts cannot close such a connection before the wait ends and pass for
// the close the test wants.
const rawEndWait = 10 * time.Second

// isTimeout reports whether err is a read deadline running out (and not
// the server closing or resetting the connection).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// sendRaw writes raw bytes on a new connection and reads one response;
// with rawUntilEnd it then waits for a second response or the close.
func sendRaw(t *testing.T, addr, raw string, after rawAfter) rawAnswer {
	t.Helper()
	c, br := dialRaw(t, addr, raw)
	defer c.Close()
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no HTTP answer to %.80q: %v", raw, err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	a := rawAnswer{status: res.StatusCode, header: res.Header, body: string(body)}
	if after == rawFirstOnly {
		return a
	}
	// Anything further is either a second response or the close; either
	// ends the wait at once. Only a connection kept open (a failure for
	// every caller of rawUntilEnd) waits for the deadline.
	c.SetReadDeadline(time.Now().Add(rawEndWait))
	if res2, err := http.ReadResponse(br, nil); err == nil {
		b2, _ := io.ReadAll(res2.Body)
		a.more = fmt.Sprintf("%d %s", res2.StatusCode, b2)
	} else if !isTimeout(err) {
		a.closed = true
	}
	return a
}

func TestRawOversizedHeadersAnswer431(t *testing.T) {
	e := startE2E(t, storetest.New(t, store.DialectSQLite), e2eOptions{})
	addr := serveRaw(t, e)
	big := strings.Repeat("x", 70<<10) // serve.go: MaxHeaderBytes 64 KiB
	manyHeaders := strings.Repeat("X-Filler: "+strings.Repeat("y", 30)+"\r\n", 2500)
	tests := []struct {
		name, raw string
	}{
		{"one huge header", "GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\n\r\n"},
		{"huge cookie", "GET /v1/models HTTP/1.1\r\nHost: x\r\nCookie: teamgate_session=" + big + "\r\n\r\n"},
		{"many cookies", "GET /v1/models HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("Cookie: a="+strings.Repeat("c", 100)+"\r\n", 800) + "\r\n"},
		{"many headers", "GET /v1/models HTTP/1.1\r\nHost: x\r\n" + manyHeaders + "\r\n"},
		{"huge request line", "GET /" + big + " HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"on teamgate's own path", "GET /oauth2/start HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\n\r\n"},
	}
	before := e.upstream.count()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := sendRaw(t, addr, tt.raw, rawUntilEnd)
			t.Logf("answer: %d %q closed=%v", a.status, a.body, a.closed)
			if a.status != http.StatusRequestHeaderFieldsTooLarge || !strings.Contains(a.body, "Request Header Fields Too Large") {
				t.Errorf("status %d %q, want 431", a.status, a.body)
			}
			if !a.closed {
				t.Error("the connection stayed open after a 431")
			}
		})
	}
	if n := e.upstream.count() - before; n != 0 {
		t.Errorf("the upstream received %d oversized requests", n)
	}
	// Just under the limit: a large but legal cookie is no session (the
	// session cookie decoder bounds its input), never a 5xx.
	a := sendRaw(t, addr, "GET /v1/models HTTP/1.1\r\nHost: x\r\nCookie: teamgate_session="+strings.Repeat("x", 60<<10)+"\r\n\r\n", rawFirstOnly)
	if a.status != http.StatusUnauthorized {
		t.Errorf("a 60 KiB session cookie: %d, want 401", a.status)
	}
	// The server is unharmed.
	if a := sendRaw(t, addr, "GET /teamgate/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", rawFirstOnly); a.status != http.StatusOK {
		t.Errorf("healthz afterwards: %d", a.status)
	}
}

// Conflicting framing is refused, a request with both Content-Length and
// Transfer-Encoding included (400, which net/http alone would accept as
// chunked: gateway/framing.go), and every request ends its connection, so
// bytes smuggled behind its body are never read as a request.
func TestRawConflictingFramingRejected(t *testing.T) {
	e := startE2E(t, storetest.New(t, store.DialectSQLite), e2eOptions{})
	addr := serveRaw(t, e)
	// Signed in, so that the requests are proxied (their bodies read).
	b := e.browser()
	b.signIn(e.gw.URL, "/", id("alice"))
	cookie := sessionCookieOf(t, e, b)
	smuggled := "GET /smuggled HTTP/1.1\r\nHost: x\r\nCookie: teamgate_session=" + cookie + "\r\n\r\n"
	tests := []struct {
		name       string
		raw        string
		wantStatus int // 0: any status below 500
	}{
		{"Content-Length then chunked, request behind the body",
			"POST /v1/chat HTTP/1.1\r\nHost: x\r\nContent-Length: 45\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, http.StatusBadRequest},
		{"chunked then Content-Length",
			"POST /v1/chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n" + smuggled, http.StatusBadRequest},
		{"two different Content-Lengths", "POST /v1/chat HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!" + smuggled, http.StatusBadRequest},
		{"Content-Length list", "POST /v1/chat HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!" + smuggled, http.StatusBadRequest},
		{"signed Content-Length", "POST /v1/chat HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello" + smuggled, http.StatusBadRequest},
		{"chunked, identity", "POST /v1/chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + smuggled, http.StatusNotImplemented},
		{"identity with Content-Length", "POST /v1/chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello" + smuggled, http.StatusNotImplemented},
		{"obfuscated Transfer-Encoding name", "POST /v1/chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\nhello" + smuggled, http.StatusBadRequest},
		{"Transfer-Encoding xchunked", "POST /v1/chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\nhello" + smuggled, http.StatusNotImplemented},
		{"folded Transfer-Encoding", "POST /v1/chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled, http.StatusBadRequest},
		{"bare LF line ends", "POST /v1/chat HTTP/1.1\nHost: x\nContent-Length: 5\nTransfer-Encoding: chunked\n\n0\n\n" + smuggled, http.StatusBadRequest},
		{"malformed chunk size", "POST /v1/chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n" + smuggled, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := strings.Replace(tt.raw, "Host: x\r\n", "Host: x\r\nCookie: teamgate_session="+cookie+"\r\n", 1)
			raw = strings.Replace(raw, "Host: x\n", "Host: x\nCookie: teamgate_session="+cookie+"\n", 1)
			before := e.upstream.count()
			a := sendRaw(t, addr, raw, rawUntilEnd)
			if strings.Contains(a.body, "both a Content-Length") && e.upstream.count() != before {
				t.Error("a request refused for its framing reached the upstream")
			}
			t.Logf("answer: %d %.60q closed=%v more=%q", a.status, a.body, a.closed, a.more)
			if tt.wantStatus != 0 && a.status != tt.wantStatus || a.status >= 500 && a.status != http.StatusNotImplemented {
				t.Errorf("status %d, want %d", a.status, tt.wantStatus)
			}
			if a.more != "" {
				t.Errorf("the request behind the body was answered: %s", a.more)
			}
			if !a.closed {
				t.Error("the connection stayed open")
			}
		})
	}
	e.upstream.mu.Lock()
	defer e.upstream.mu.Unlock()
	for _, r := range e.upstream.requests {
		if r.URL.Path == "/smuggled" {
			t.Error("a smuggled request reached the upstream")
		}
	}
}

// Spellings of teamgate's API and admin paths never get past the
// authorization checks and never reach the upstream, for an anonymous
// client and for a signed-in user who is not an administrator.
func TestRawPathTricksNeverReachAPIOrUpstream(t *testing.T) {
	e := startE2E(t, storetest.New(t, store.DialectSQLite), e2eOptions{})
	addr := serveRaw(t, e)
	b := e.browser()
	b.signIn(e.gw.URL, "/", id("alice"))
	cookie := sessionCookieOf(t, e, b)
	targets := []string{
		"/teamgate/api/teams", "//teamgate/api/teams", "///teamgate//api//teams", "/%74eamgate/api/teams",
		"/teamgate/%61pi/teams", "/%2Fteamgate/api/teams", "/teamgate%2Fapi%2Fteams", "/teamgate/api%2Fteams",
		"/TEAMGATE/API/teams", "/Teamgate/Api/Teams", "/teamgate/API/teams", "/x/../teamgate/api/teams",
		"/teamgate/./api/teams", "/teamgate/api/./teams", "/%2e%2e/teamgate/api/teams", "/./teamgate/api/teams",
		"/x/%2e%2e/teamgate/api/teams", "/x/%2E%2E%2Fteamgate/api/teams", "/teamgate\\api\\teams", "/\\teamgate/api/teams",
		"/teamgate/api/teams/", "/teamgate/api/teams;x=1", "/teamgate/api/teams%3Bx", "/teamgate/api/teams?token=" + e2eAdminKey[:4],
		"/teamgate/api/teams%00", "/teamgate/api/teams%20", "/teamgate/api/teams#frag", "/teamgate/api/users/" + id("alice"),
		"http://evil.example/teamgate/api/teams", "/teamgate/api/users/x/revoke-sessions",
		"/teamgate/admin", "//teamgate/admin", "/TEAMGATE/ADMIN", "/%74eamgate/admin", "/x/../teamgate/admin",
		"/teamgate/./admin/users", "/teamgate%2Fadmin", "/teamgate/admin/users", "/teamgate/admin/team?id=x",
	}
	before := e.upstream.count()
	n := 0
	for _, target := range targets {
		for _, who := range []string{"anonymous", "signed-in non-admin"} {
			for _, method := range []string{"GET", "POST"} {
				n++
				name := fmt.Sprintf("%s %s as %s", method, target, who)
				hdr := "Host: x\r\nAccept: application/json\r\nConnection: close\r\n"
				if who != "anonymous" {
					hdr += "Cookie: teamgate_session=" + cookie + "\r\n"
				}
				if method == "POST" {
					hdr += "Content-Length: 0\r\n"
				}
				a := sendRaw(t, addr, method+" "+target+" HTTP/1.1\r\n"+hdr+"\r\n", rawFirstOnly)
				if a.status < 300 || a.status >= 500 || (a.status < 400 && !strings.Contains(a.header.Get("Location"), "/oauth2/start")) {
					t.Errorf("%s: %d %.120q", name, a.status, a.body)
				}
				if strings.Contains(a.body, `"team_id"`) || strings.Contains(a.body, `"user_id"`) || strings.Contains(a.body, "sessions_revoked") {
					t.Errorf("%s: answered with data: %.200q", name, a.body)
				}
			}
		}
	}
	t.Logf("%d requests refused", n)
	if got := e.upstream.count() - before; got != 0 {
		t.Errorf("the upstream received %d of them", got)
	}
}

// Connection-nominated ("hop-by-hop") headers cannot remove what teamgate
// injects, nor let a client's spoofed copy through.
func TestRawHopByHopAbuse(t *testing.T) {
	e := startE2E(t, storetest.New(t, store.DialectSQLite), e2eOptions{})
	addr := serveRaw(t, e)
	b := e.browser()
	b.signIn(e.gw.URL, "/", id("alice"))
	cookie := sessionCookieOf(t, e, b)
	identity := []string{"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Preferred-Username", "X-Forwarded-Groups", "X-Litellm-Team-Id", "X-Teamgate-Assertion"}
	tests := []struct {
		name       string
		connection string
		extra      string
	}{
		{"identity headers nominated", strings.Join(identity, ", "), ""},
		{"identity headers nominated, with spoofs", "X-Forwarded-User, x_forwarded_email", "X-Forwarded-User: evil\r\nX_Forwarded_Email: evil@example.com\r\n"},
		{"Cookie nominated", "Cookie", ""},
		{"request id nominated", "X-Request-Id", "X-Request-Id: planted\r\n"},
		{"forwarding headers nominated", "X-Forwarded-For, Forwarded, X-Forwarded-Host", "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil.example\r\n"},
		{"close and keep-alive with identity", "close, keep-alive, X-Forwarded-Groups", "X-Forwarded-Groups: admins\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.upstream.count()
			a := sendRaw(t, addr, "GET /v1/hop HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nCookie: teamgate_session="+cookie+
				"\r\nConnection: "+tt.connection+"\r\n"+tt.extra+"\r\n", rawFirstOnly)
			if a.status != http.StatusOK || e.upstream.count() != before+1 {
				t.Fatalf("status %d %.200q", a.status, a.body)
			}
			up := e.upstream.last(t)
			if got := up.Header.Values("X-Forwarded-User"); len(got) != 1 || got[0] != id("alice") {
				t.Errorf("X-Forwarded-User = %q, want [alice]", got)
			}
			if got := up.Header.Get("X-Forwarded-Email"); got != "alice@example.com" {
				t.Errorf("X-Forwarded-Email = %q", got)
			}
			if up.Header.Get("X-Forwarded-Groups") == "" || up.Header.Get("X-Forwarded-Groups") == "admins" {
				t.Errorf("X-Forwarded-Groups = %q", up.Header.Get("X-Forwarded-Groups"))
			}
			if got := up.Header.Get("X-Request-Id"); got == "planted" || got == "" {
				t.Errorf("X-Request-Id = %q", got)
			}
			if got := up.Header.Get("X-Forwarded-For"); strings.Contains(got, "6.6.6.6") {
				t.Errorf("X-Forwarded-For = %q", got)
			}
			for name, vals := range up.Header {
				for _, v := range vals {
					if strings.Contains(v, "evil") || strings.Contains(v, cookie) {
						t.Errorf("upstream header %s = %q", name, v)
					}
				}
			}
		})
	}
}

// sessionCookieOf returns the browser's session cookie.
func sessionCookieOf(t *testing.T, e *e2e, b *browser) string {
	t.Helper()
	u, _ := url.Parse(e.gw.URL)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == "teamgate_session" {
			return c.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}
