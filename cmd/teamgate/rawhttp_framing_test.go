package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

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
	a := sendRaw(t, addr, innocent+conflicting, rawUntilEnd)
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
	// Transfer-Encoding and frames by Content-Length: faulty framing
	// (RFC 9112 §6.1), refused too (review finding 7).
	before = e.upstream.count()
	a = sendRaw(t, addr, "POST /v1/old HTTP/1.0\r\n"+head+"Connection: keep-alive\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello", rawUntilEnd)
	if a.status != http.StatusBadRequest || !a.closed || a.more != "" {
		t.Errorf("HTTP/1.0 with both headers: %d %s closed=%v more=%q, want 400 and closed", a.status, a.body, a.closed, a.more)
	}
	if n := e.upstream.count() - before; n != 0 {
		t.Errorf("the upstream received %d requests", n)
	}
}

// sendRawAll writes raw bytes on a new connection and reads every answer
// until the server closes it (closed). It is for connections expected to
// end: each answer and the close end the wait at once, and only a
// connection kept open past an answer for rawEndWait (a failing run) comes
// back with closed false.
func sendRawAll(t *testing.T, addr, raw string) (answers []string, closed bool) {
	t.Helper()
	c, br := dialRaw(t, addr, raw)
	defer c.Close()
	for {
		if len(answers) > 0 {
			c.SetReadDeadline(time.Now().Add(rawEndWait))
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			closed = !isTimeout(err)
			return answers, closed
		}
		body, _ := io.ReadAll(res.Body)
		answers = append(answers, fmt.Sprintf("%d %s", res.StatusCode, body))
	}
}

// net/http drops up to 4 CR/LF bytes before the request that follows a
// POST; the framing scanner must too, or they switch it off for the rest of
// the connection (review finding 4: /b was served).
func TestRawConflictingFramingAfterCRLFBehindPOST(t *testing.T) {
	e := startE2E(t, storetest.New(t, store.DialectSQLite), e2eOptions{})
	addr := serveRaw(t, e)
	b := e.browser()
	b.signIn(e.gw.URL, "/", id("alice"))
	head := "Host: x\r\nCookie: teamgate_session=" + sessionCookieOf(t, e, b) + "\r\n"
	for _, crlf := range []string{"\r\n", "\n", "\r\n\r\n", "\r\r\n\n"} {
		raw := "POST /v1/first HTTP/1.1\r\n" + head + "Content-Length: 2\r\n\r\nhi" + crlf +
			"POST /v1/second HTTP/1.1\r\n" + head + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
		wantFirstServedSecondRefused(t, e, addr, raw, fmt.Sprintf("%q behind the POST", crlf), "both a Content-Length")
	}
}

// wantFirstServedSecondRefused sends raw on one connection and wants two
// answers: 200 for /v1/first, then a 400 saying reason, the connection
// closed, and nothing but /v1/first at the upstream.
func wantFirstServedSecondRefused(t *testing.T, e *e2e, addr, raw, what, reason string) {
	t.Helper()
	before := e.upstream.count()
	answers, closed := sendRawAll(t, addr, raw)
	t.Logf("%s: %.60q closed=%v", what, answers, closed)
	if len(answers) != 2 || !strings.HasPrefix(answers[0], "200 ") ||
		!strings.HasPrefix(answers[1], "400 ") || !strings.Contains(answers[1], reason) || !closed {
		t.Errorf("%s: %.80q closed=%v, want 200, then 400 (%s) and closed", what, answers, closed, reason)
	}
	if n := e.upstream.count() - before; n != 1 || e.upstream.last(t).URL.Path != "/v1/first" {
		t.Errorf("%s: the upstream received %d requests, want only /v1/first", what, n)
	}
}

// HTTP/1.0 with Transfer-Encoding is faulty framing (RFC 9112 §6.1): 400
// and the connection closed, even kept alive and behind another HTTP/1.0
// request read at the same time, which is served (review finding 7).
func TestRawHTTP10TransferEncodingRefused(t *testing.T) {
	e := startE2E(t, storetest.New(t, store.DialectSQLite), e2eOptions{})
	addr := serveRaw(t, e)
	b := e.browser()
	b.signIn(e.gw.URL, "/", id("alice"))
	head := "Host: x\r\nCookie: teamgate_session=" + sessionCookieOf(t, e, b) + "\r\nConnection: keep-alive\r\n"
	for _, te := range []string{"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "Transfer-Encoding: identity\r\nContent-Length: 5\r\n", "Transfer-Encoding: chunked\r\n"} {
		body := "hello"
		if !strings.Contains(te, "Content-Length") {
			body = ""
		}
		raw := "POST /v1/first HTTP/1.0\r\n" + head + "Content-Length: 2\r\n\r\nhi" +
			"POST /v1/second HTTP/1.0\r\n" + head + te + "\r\n" + body +
			"GET /v1/third HTTP/1.0\r\n" + head + "\r\n"
		wantFirstServedSecondRefused(t, e, addr, raw, fmt.Sprintf("%q", te), "HTTP/1.0 request had a Transfer-Encoding")
	}
}

// "OPTIONS *" reaches the gateway (serve.go sets
// DisableGeneralOptionsHandler): net/http's own answer would keep the
// connection open after a chunked one, serving what a Content-Length proxy
// sent as its body, and end the framing checks for the connection.
func TestRawOptionsAsteriskGetsFramingChecks(t *testing.T) {
	e := startE2E(t, storetest.New(t, store.DialectSQLite), e2eOptions{})
	addr := serveRaw(t, e)
	smuggled := "GET /teamgate/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	tests := []struct {
		name, raw string
		want      []string
		// closed false would pass only after sendRawAll's rawEndWait.
		closed bool
	}{
		{"plain, as net/http answers it", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n" + smuggled, []string{"200 ", "200 "}, true},
		{"with both framing headers", "OPTIONS * HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, []string{"400 "}, true},
		{"chunked", "OPTIONS * HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, []string{"200 "}, true},
		{"chunked, then both framing headers",
			"OPTIONS * HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
				"POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", []string{"200 "}, true},
	}
	for _, tt := range tests {
		answers, closed := sendRawAll(t, addr, tt.raw)
		t.Logf("%s: %.60q closed=%v", tt.name, answers, closed)
		ok := len(answers) == len(tt.want) && closed == tt.closed
		for i := 0; ok && i < len(answers); i++ {
			ok = strings.HasPrefix(answers[i], tt.want[i])
		}
		if !ok {
			t.Errorf("%s: %.80q closed=%v, want %q closed=%v", tt.name, answers, closed, tt.want, tt.closed)
		}
	}
}
