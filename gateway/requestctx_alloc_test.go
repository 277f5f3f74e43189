package gateway

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

func TestNewRequestID(t *testing.T) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		id := newRequestID()
		if len(id) != 26 || strings.Trim(id, alphabet) != "" || !isSafeRequestID(id) {
			t.Fatalf("request id %q is not 26 characters of base32", id)
		}
		if seen[id] {
			t.Fatalf("request id %q made twice", id)
		}
		seen[id] = true
	}
}

// What teamgate allocates per proxied request on top of a bare
// ReverseProxy doing the same (BenchmarkProxyHandler), as a ceiling: a
// change that adds allocations to every request should be a decision.
// Measured in the same run, so that net/http's own count does not matter.
func TestProxyAllocationsOverBare(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	allocs := func(kind string) float64 {
		h, req := proxyCase(t, kind)
		w := &discardWriter{header: http.Header{}}
		return testing.AllocsPerRun(200, func() {
			clear(w.header)
			w.status = 0
			h.ServeHTTP(w, req.Clone(context.Background()))
			if w.status != http.StatusOK {
				t.Fatalf("status %d", w.status)
			}
		})
	}
	bare := allocs("bare")
	for _, tt := range []struct {
		kind string
		max  float64
	}{
		// The request's info, its id, context and shallow copy, and the
		// outbound header map growing past 8 entries (3). The session
		// cookie is read and the client address logged without allocating.
		{"cookie", 7},
		{"assertion", 7},
		{"apikey", 4},
	} {
		got := allocs(tt.kind) - bare
		t.Logf("%s: %.0f allocations per request over a bare proxy's %.0f", tt.kind, got, bare)
		if got > tt.max {
			t.Errorf("%s: %.0f allocations per request over a bare proxy's %.0f, want at most %.0f", tt.kind, got, bare, tt.max)
		}
	}
}
