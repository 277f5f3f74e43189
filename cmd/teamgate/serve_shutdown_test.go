package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/teamgate/teamgate/gateway"
	"github.com/teamgate/teamgate/sync/store"
)

// streamUpstream answers /stream with one server-sent event per value sent
// on events, until events is closed or the request is cancelled; every
// other path with a small JSON body.
type streamUpstream struct{ events chan string }

func (u *streamUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/stream" {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	for {
		select {
		case ev, ok := <-u.events:
			if !ok {
				return
			}
			fmt.Fprintf(w, "data: %s\n\n", ev)
			rc.Flush()
		case <-r.Context().Done():
			return
		}
	}
}

// closeRecorder is the store a served app opens; it records Close (the
// test's store stays open for the checks that follow).
type closeRecorder struct {
	store.Store
	closed atomic.Bool
}

func (c *closeRecorder) Close() error {
	c.closed.Store(true)
	return nil
}

// shutdownRun is runServe (as `teamgate serve` runs it) on the store of a
// provisioning e2e run, with a stream upstream.
type shutdownRun struct {
	p      *provisionE2E
	up     *streamUpstream
	st     *closeRecorder
	ln     net.Listener
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

func startShutdownRun(t *testing.T, st store.Store, grace time.Duration) *shutdownRun {
	t.Helper()
	r := &shutdownRun{up: &streamUpstream{events: make(chan string)}, st: &closeRecorder{Store: st}, logs: &syncBuffer{}, done: make(chan error, 1)}
	upSrv := httptest.NewServer(r.up)
	t.Cleanup(upSrv.Close)
	r.p = startProvisionE2E(t, st, func(c *Config) {
		c.Upstream.URL = upSrv.URL
		c.Server.ShutdownGrace = gateway.Duration(grace)
	})
	var err error
	if r.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	t.Cleanup(cancel)
	opts := appOptions{openStore: func(context.Context, store.Config) (store.Store, error) { return r.st, nil }}
	go func() {
		r.done <- runServe(ctx, r.p.app.cfg, newLogger(LogConfig{Level: "debug", Format: "json"}, r.logs), opts, r.ln)
	}()
	waitLogAddr(t, r.logs, "teamgate listening")
	return r
}

// openStream signs alice in (her session is shared through the database)
// and opens /stream on the served listener; it returns the event reader.
func (r *shutdownRun) openStream(t *testing.T) (*bufio.Reader, io.Closer) {
	t.Helper()
	b := r.p.browser()
	if res, body := b.signIn(r.p.gw.URL, "/", "alice-oid"); res.StatusCode != http.StatusOK { // enqueues her LiteLLM operations
		t.Fatalf("sign-in: %d %.300s", res.StatusCode, body)
	}
	client := &http.Client{Jar: b.client.Jar} // no timeout: the stream is long
	req, _ := http.NewRequest(http.MethodGet, "http://"+r.ln.Addr().String()+"/stream", nil)
	req.Header.Set("Accept", "text/event-stream")
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		res.Body.Close()
		t.Fatalf("stream: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	return bufio.NewReader(res.Body), res.Body
}

func (r *shutdownRun) event(t *testing.T, rd *bufio.Reader, ev string) {
	t.Helper()
	r.up.events <- ev
	line, err := rd.ReadString('\n')
	if err != nil || line != "data: "+ev+"\n" {
		t.Fatalf("stream: read %q, %v; want the event %q", line, err, ev)
	}
	if _, err := rd.ReadString('\n'); err != nil { // the blank line ending the event
		t.Fatal(err)
	}
}

// waitRefused waits until the listener refuses new connections.
func (r *shutdownRun) waitRefused(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", r.ln.Addr().String())
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener still accepts connections after shutdown started")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SIGTERM (ctx cancelled) with a stream in flight: new connections are
// refused, the stream keeps flowing to its end within the grace, then serve
// returns nil, having drained the outbox and closed the store.
func TestServeShutdownLetsStreamsFinish(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		r := startShutdownRun(t, st, time.Minute) // far longer than the test needs
		rd, body := r.openStream(t)
		defer body.Close()
		r.event(t, rd, "one")

		r.cancel()
		r.waitRefused(t)
		if _, err := http.Get("http://" + r.ln.Addr().String() + "/teamgate/healthz"); err == nil {
			t.Error("a new request was answered after shutdown started")
		}
		r.event(t, rd, "two") // still flowing
		select {
		case err := <-r.done:
			t.Fatalf("serve returned (%v) with a stream in flight and grace left", err)
		default:
		}
		if r.st.closed.Load() {
			t.Fatal("the store was closed with a stream in flight")
		}

		close(r.up.events) // the stream ends normally
		if rest, err := io.ReadAll(rd); err != nil || len(rest) != 0 {
			t.Errorf("stream end: %q, %v; want a clean end", rest, err)
		}
		if err := <-r.done; err != nil {
			t.Fatalf("serve: %v", err)
		}
		if ids := pendingIDs(t, st); len(ids) != 0 {
			t.Errorf("operations %v still pending after shutdown", ids)
		}
		if _, ok := r.p.litellm.User("alice-oid"); !ok {
			t.Error("alice is not in LiteLLM: the outbox was not drained")
		}
		if !r.st.closed.Load() {
			t.Error("the store was not closed")
		}
		if strings.Contains(r.logs.String(), "shutdown grace ran out") {
			t.Error("the grace was reported as run out")
		}
	})
}

// A stream that outlives the grace is cut when it runs out; serve still
// returns nil (exit status 0: this is a normal SIGTERM), logging the cut at
// warning level.
func TestServeShutdownCutsStreamsAfterTheGrace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st store.Store) {
		const grace = time.Second
		r := startShutdownRun(t, st, grace)
		rd, body := r.openStream(t)
		defer body.Close()
		r.event(t, rd, "one")

		start := time.Now()
		r.cancel()
		err := <-r.done
		if elapsed := time.Since(start); elapsed < grace {
			t.Errorf("serve returned after %v, before the grace of %v", elapsed, grace)
		}
		if err != nil {
			t.Fatalf("serve: %v, want nil (exit status 0)", err)
		}
		if _, err := io.ReadAll(rd); err == nil {
			t.Error("the stream ended cleanly; want it cut")
		}
		if !strings.Contains(r.logs.String(), `"level":"WARN","msg":"shutdown grace ran out: cut the requests and streams still open"`) {
			t.Errorf("no warning about the cut streams:\n%s", grepLines(r.logs.String(), `{"time"`))
		}
		if !r.st.closed.Load() {
			t.Error("the store was not closed")
		}
	})
}
