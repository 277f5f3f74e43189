package gateway

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
)

func TestParseTrustedProxies(t *testing.T) {
	peers, errs := parseTrustedProxies([]string{"10.0.0.0/8", "192.168.1.7", "::1", "fd00::/8", "nope", "10.0.0.0/33"})
	if len(peers) != 4 || len(errs) != 2 {
		t.Fatalf("peers %v, errs %v; want 4 peers and 2 errors", peers, errs)
	}
	if errs[0].Error() != `server.trusted_proxies[4]: "nope" is not an IP address or CIDR` {
		t.Errorf("error = %v", errs[0])
	}
}

func TestClientIPAndRequestID(t *testing.T) {
	trusted, _ := parseTrustedProxies([]string{"10.0.0.0/8"})
	tests := []struct {
		name, remote, xff, reqID string
		wantIP                   string
		wantIDKept               bool
	}{
		{"untrusted peer: XFF and request id ignored", "203.0.113.9:5000", "1.2.3.4", "abc-123", "203.0.113.9", false},
		{"trusted peer: right-most untrusted hop", "10.0.0.2:5000", "6.6.6.6, 198.51.100.4", "abc-123", "198.51.100.4", true},
		{"trusted chain of proxies", "10.0.0.2:5000", "198.51.100.4, 10.1.1.1", "", "198.51.100.4", false},
		{"trusted peer without XFF", "10.0.0.2:5000", "", "", "10.0.0.2", false},
		{"malformed hop stops the walk", "10.0.0.2:5000", "198.51.100.4, garbage", "", "10.0.0.2", false},
		{"unsafe request id from a trusted peer", "10.0.0.2:5000", "", "a b\nc", "10.0.0.2", false},
		{"IPv4-mapped IPv6 peer", "[::ffff:10.0.0.3]:1", "198.51.100.5", "", "198.51.100.5", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.remote
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if tc.reqID != "" {
				r.Header.Set(requestIDHeader, tc.reqID)
			}
			if got := addrString(trusted.clientAddr(r)); got != tc.wantIP {
				t.Errorf("clientIP = %q, want %q", got, tc.wantIP)
			}
			if got := requestID(r, trusted); (got == tc.reqID) != tc.wantIDKept {
				t.Errorf("requestID = %q (inbound %q), kept want %v", got, tc.reqID, tc.wantIDKept)
			}
		})
	}
}

func TestSetForwarded(t *testing.T) {
	trusted, _ := parseTrustedProxies([]string{"10.0.0.0/8"})
	target, _ := url.Parse("http://upstream:4000")
	for _, tc := range []struct {
		name, remote                 string
		wantXFF, wantProto, wantHost string
	}{
		{"untrusted: replaced", "203.0.113.9:1", "203.0.113.9", "http", "gw.example"},
		{"trusted: chain kept and extended", "10.0.0.2:1", "198.51.100.4, 10.0.0.2", "https", "llm.example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := httptest.NewRequest(http.MethodGet, "http://gw.example/x", nil)
			in.RemoteAddr = tc.remote
			in.Header.Set("X-Forwarded-For", "198.51.100.4")
			in.Header.Set("X-Forwarded-Proto", "https")
			in.Header.Set("X-Forwarded-Host", "llm.example.com")
			out := in.Clone(in.Context())
			out.Header.Del("X-Forwarded-For") // as ReverseProxy does before Rewrite
			out.Header.Del("X-Forwarded-Proto")
			out.Header.Del("X-Forwarded-Host")
			pr := &httputil.ProxyRequest{In: in, Out: out}
			pr.SetURL(target)
			trusted.setForwarded(pr)
			h := pr.Out.Header
			if h.Get("X-Forwarded-For") != tc.wantXFF || h.Get("X-Forwarded-Proto") != tc.wantProto || h.Get("X-Forwarded-Host") != tc.wantHost {
				t.Errorf("XFF %q proto %q host %q; want %q %q %q", h.Get("X-Forwarded-For"), h.Get("X-Forwarded-Proto"), h.Get("X-Forwarded-Host"),
					tc.wantXFF, tc.wantProto, tc.wantHost)
			}
		})
	}
}
