package gateway

import (
	"testing"

	"github.com/teamgate/teamgate/gateway/assertion"
)

// Proxied requests of a signed-in user with and without the identity
// assertion, and with the assertion signed at every request (what the
// per-session cache saves). Compare with BenchmarkProxySignedIn and
// BenchmarkProxyBareReverseProxy:
//
//	go test ./gateway -run '^$' -bench 'Proxy' -benchmem
func BenchmarkProxySignedInNoAssertion(b *testing.B) {
	off := false
	benchmarkSignedIn(b, func(s *setup) { s.cfg.Assertion.Enabled = &off }, false)
}

func BenchmarkProxySignedInAssertion(b *testing.B) {
	benchmarkSignedIn(b, nil, false)
}

func BenchmarkProxySignedInAssertionUncached(b *testing.B) {
	benchmarkSignedIn(b, nil, true)
}

func BenchmarkProxySignedInAssertionRS256(b *testing.B) {
	benchmarkSignedIn(b, func(s *setup) { s.cfg.Assertion.Alg = assertion.RS256 }, false)
}

func BenchmarkProxySignedInAssertionRS256Uncached(b *testing.B) {
	benchmarkSignedIn(b, func(s *setup) { s.cfg.Assertion.Alg = assertion.RS256 }, true)
}

func benchmarkSignedIn(b *testing.B, opt func(*setup), uncached bool) {
	var opts []func(*setup)
	if opt != nil {
		opts = append(opts, opt)
	}
	h := newHarness(b, opts...)
	if uncached {
		h.gw.assert.cache = assertion.NewCache(h.gw.assert.cache.Signer(), 0)
	}
	cookie := h.signedInDirect(aliceID)
	benchmarkGet(b, h.url+"/v1/models", map[string]string{"Cookie": DefaultCookieName + "=" + cookie})
}
