package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/teamgate/teamgate/sync/store"
	"github.com/teamgate/teamgate/sync/store/storetest"
)

// The framing check belongs to the request that carried both headers: on a
// kept-alive connection the requests before it are served as usual, and the
// conflicting one is refused and ends the connection.
func TestRawConflictingFramingAfterKeptAliveRequests(t *testing.T) {
	e := startE2E(t, storetest.New(t, store.DialectSQLite), e2eOptions{})
	addr := serveRaw(t, e)
	b := e.browser()
	b.signIn(e.gw.URL, "/", id("alice"))
	cookie := sessionCookieOf(t, e, b)
	head := "Host: x\r\nCookie: teamgate_session=" + cookie + "\r\n"
	innocent := "POST /v1/first HTTP/1.1\r\n" + head + "Content-Length: 36\r\n\r\n" +
		// A body that looks like a conflicting header block: skipped.
		"Content-Length: 1\r\nTransfer-Encoding"
	conflicting := "POST /v1/second HTTP/1.1\r\n" + head + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	before := e.upstream.count()
	a := sendRaw(t, addr, innocent+conflicting)
	t.Logf("answers: %d, then %.80q; closed=%v", a.status, a.more, a.closed)
	if a.status != http.StatusOK {
		t.Errorf("the first request: %d %s, want 200", a.status, a.body)
	}
	if !strings.HasPrefix(a.more, "400 ") || !strings.Contains(a.more, "both a Content-Length") {
		t.Errorf("the conflicting request behind it: %q, want 400", a.more)
	}
	if n := e.upstream.count() - before; n != 1 || e.upstream.last(t).URL.Path != "/v1/first" {
		t.Errorf("the upstream received %d requests, want only /v1/first", n)
	}
	// The same request alone on HTTP/1.0, where net/http ignores
	// Transfer-Encoding and frames by Content-Length: not chunked, served.
	a = sendRaw(t, addr, "POST /v1/old HTTP/1.0\r\n"+head+"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello")
	if a.status != http.StatusOK {
		t.Errorf("HTTP/1.0 with both headers: %d %s", a.status, a.body)
	}
}
