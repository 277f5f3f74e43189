package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"testing/cryptotest"
	"time"
)

// proxyCaseKinds are the kinds of request BenchmarkProxyHandler measures:
// bare is the floor (a ReverseProxy with the gateway's copy-buffer pool);
// the others go through the gateway, which logs each request at info level
// as JSON through the handler teamgate serve uses, to io.Discard.
var proxyCaseKinds = []string{"bare", "cookie", "assertion", "apikey"}

// proxyCase builds the handler and the request of one kind, with the
// upstream answered in memory.
func proxyCase(tb testing.TB, kind string) (http.Handler, *http.Request) {
	tb.Helper()
	off := false
	quiet := func(s *setup) {
		s.deps.Logger = slog.New(NewLogHandler(io.Discard, false, nil))
		s.deps.Now = time.Now
	}
	noAssertion := func(s *setup) { s.cfg.Assertion.Enabled = &off }
	gateway := func(opts ...func(*setup)) *harness {
		h := newHarness(tb, append([]func(*setup){quiet}, opts...)...)
		h.gw.proxy.Transport = memoryUpstream{}
		return h
	}
	chat := func(header ...string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "http://teamgate.example/v1/chat/completions", nil)
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Accept", "application/json")
		r.Header.Set("User-Agent", "bench")
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		return r
	}
	cookie := func(h *harness) string { return DefaultCookieName + "=" + h.signedInDirect(aliceID) }
	switch kind {
	case "bare":
		target, _ := url.Parse("http://upstream.internal:4000")
		rp := &httputil.ReverseProxy{Transport: memoryUpstream{}, BufferPool: &bufferPool{}, Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = target.Host
			pr.SetXForwarded()
		}}
		return rp, chat("Cookie", "teamgate_session=abc")
	case "cookie":
		h := gateway(noAssertion)
		return h.gw, chat("Cookie", cookie(h))
	case "assertion":
		h := gateway()
		return h.gw, chat("Cookie", cookie(h))
	case "apikey":
		return gateway(noAssertion).gw, chat("Authorization", "Bearer sk-1234")
	}
	tb.Fatalf("unknown kind %q (one of %s)", kind, strings.Join(proxyCaseKinds, ", "))
	return nil, nil
}

// TestProxyLoop serves TEAMGATE_PROXY_LOOP=kind:N requests of one kind and
// nothing else, for counting instructions per request with callgrind,
// which is exact where times on a shared machine are not. Crypto
// randomness is fixed, so that the set-up (key generation, sign-in) costs
// the same in every run; two runs with different N then differ by N's
// requests alone:
//
//	go test -c -o gw.test ./gateway
//	for n in 2000 12000; do TEAMGATE_PROXY_LOOP=cookie:$n GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1 \
//	  valgrind --tool=callgrind --callgrind-out-file=/dev/null ./gw.test -test.run '^TestProxyLoop$' 2>&1 | grep Collected; done
//
// (the second count minus the first, divided by 10000, is one request,
// garbage collection included).
func TestProxyLoop(t *testing.T) {
	spec := os.Getenv("TEAMGATE_PROXY_LOOP")
	if spec == "" {
		t.Skip("set TEAMGATE_PROXY_LOOP=kind:N to run")
	}
	kind, count, _ := strings.Cut(spec, ":")
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 {
		t.Fatalf("TEAMGATE_PROXY_LOOP=%q: want kind:N", spec)
	}
	cryptotest.SetGlobalRandom(t, 1)
	h, req := proxyCase(t, kind)
	w := &discardWriter{header: http.Header{}}
	for i := 0; i < n; i++ {
		clear(w.header)
		w.status = 0
		h.ServeHTTP(w, req.Clone(context.Background()))
		if w.status != http.StatusOK {
			t.Fatalf("status %d", w.status)
		}
	}
}
