package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
)

// These benchmarks compare a proxied request through the gateway (cached
// session, identity injection) with a bare httputil.ReverseProxy hop to the
// same upstream, in process. Run with:
//
//	go test ./gateway -run '^$' -bench Proxy -benchmem
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
