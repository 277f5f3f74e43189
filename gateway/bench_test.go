package gateway

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"testing"
)

// Two kinds of benchmarks. BenchmarkProxy{BareReverseProxy,SignedIn,APIKey}
// go through real loopback connections (client, gateway and upstream in
// this process). BenchmarkProxyHandler calls the handler directly with the
// upstream answered in memory, so that what is left is the gateway's own
// work per request — its CPU and its allocations — next to a bare
// httputil.ReverseProxy doing the same in the same way:
//
//	go test ./gateway -run '^$' -bench Proxy -benchmem
//
// cmd/teamgate-bench measures whole processes under load (see
// docs/performance.md).
func BenchmarkProxyBareReverseProxy(b *testing.B) {
	up := newUpstream(b)
	target, _ := url.Parse(up.srv.URL)
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: &http.Transport{MaxIdleConnsPerHost: 512}}
	srv := httptest.NewServer(rp)
	b.Cleanup(srv.Close)
	benchmarkGet(b, srv.URL+"/v1/models", nil)
}

func BenchmarkProxySignedIn(b *testing.B) {
	h := newHarness(b)
	cookie := h.signedInDirect(aliceID)
	benchmarkGet(b, h.url+"/v1/models", map[string]string{"Cookie": DefaultCookieName + "=" + cookie})
}

func BenchmarkProxyAPIKey(b *testing.B) {
	h := newHarness(b)
	benchmarkGet(b, h.url+"/v1/models", map[string]string{"Authorization": "Bearer sk-1234"})
}

func benchmarkGet(b *testing.B, target string, headers map[string]string) {
	b.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodGet, target, nil)
			for k, v := range headers {
				req.Header.Set(k, v)
			}
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
}

// BenchmarkProxyHandler: bare is the floor; the others are what teamgate
// adds to it for each kind of request (allocs/op minus bare's allocs/op is
// the gateway's own allocations per proxied request). See proxyCase.
func BenchmarkProxyHandler(b *testing.B) {
	for _, kind := range proxyCaseKinds {
		b.Run(kind, func(b *testing.B) {
			h, req := proxyCase(b, kind)
			serveLoop(b, h, req)
		})
	}
}

// serveLoop serves a copy of req per iteration, as net/http would hand the
// handler a fresh request, and fails on anything but 200.
func serveLoop(b *testing.B, h http.Handler, req *http.Request) {
	b.Helper()
	w := &discardWriter{header: http.Header{}}
	h.ServeHTTP(w, req.Clone(context.Background())) // warm the caches
	if w.status != http.StatusOK {
		b.Fatalf("status %d", w.status)
	}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.header)
		w.status = 0
		h.ServeHTTP(w, req.Clone(context.Background()))
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}

var memoryReply = []byte(`{"id":"chatcmpl-bench","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"}}]}`)

// memoryUpstream answers every round trip in memory with a small JSON reply.
type memoryUpstream struct{}

func (memoryUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return &http.Response{
		StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"},
			"Content-Length": {strconv.Itoa(len(memoryReply))}},
		ContentLength: int64(len(memoryReply)),
		Body:          io.NopCloser(bytes.NewReader(memoryReply)),
		Request:       r,
	}, nil
}

// discardWriter is a reusable ResponseWriter that keeps only the status.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.header }
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(p), nil
}
func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *discardWriter) Flush() {}
