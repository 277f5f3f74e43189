package gateway

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
)

// trustedPeers are the load balancers and proxies in front of teamgate
// (server.trusted_proxies). Only from them are X-Forwarded-For, -Proto,
// -Host and X-Request-Id believed; from anyone else these headers are
// client input and are replaced.
type trustedPeers []netip.Prefix

// parseTrustedProxies accepts CIDRs and bare addresses; it reports every
// bad entry with its index.
func parseTrustedProxies(entries []string) (trustedPeers, []error) {
	var out trustedPeers
	var errs []error
	for i, e := range entries {
		e = strings.TrimSpace(e)
		if p, err := netip.ParsePrefix(e); err == nil {
			out = append(out, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(e); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		errs = append(errs, fmt.Errorf("server.trusted_proxies[%d]: %q is not an IP address or CIDR", i, e))
	}
	return out, errs
}

func (t trustedPeers) containsAddr(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr is the TCP peer of the request.
func peerAddr(r *http.Request) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	return a.Unmap(), err == nil
}

// trusts reports whether the request came straight from a trusted proxy.
func (t trustedPeers) trusts(r *http.Request) bool {
	if len(t) == 0 {
		return false
	}
	a, ok := peerAddr(r)
	return ok && t.containsAddr(a)
}

// clientAddr is the address of the client: the TCP peer, or, when the peer
// is trusted, the right-most address in X-Forwarded-For that is not itself
// a trusted proxy (addresses further left are what the client claimed).
// It is the zero Addr when the peer's address is unreadable; the access
// line appends it without building a string.
func (t trustedPeers) clientAddr(r *http.Request) netip.Addr {
	peer, ok := peerAddr(r)
	if !ok {
		return netip.Addr{}
	}
	if !t.containsAddr(peer) {
		return peer
	}
	hops := forwardedFor(r.Header)
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(hops[i])
		if err != nil {
			break // a malformed hop: stop at the last address we could vouch for
		}
		if !t.containsAddr(a) {
			return a.Unmap()
		}
		peer = a
	}
	return peer
}

func forwardedFor(h http.Header) []string {
	var hops []string
	for _, line := range h.Values("X-Forwarded-For") {
		for _, p := range strings.Split(line, ",") {
			if p = strings.TrimSpace(p); p != "" {
				hops = append(hops, p)
			}
		}
	}
	return hops
}

// forwardingHeaders tell the upstream who the client is and how it reached
// teamgate. ReverseProxy drops the inbound copies spelled canonically, but
// a WSGI/ASGI upstream reads X_Forwarded_For as X-Forwarded-For too, so
// setForwarded drops them in every spelling, as the identity headers are
// (headers.go).
var forwardingHeaders = func() *identityHeaders {
	var ih identityHeaders
	for _, name := range [...]string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"} {
		ih.own(name)
	}
	return &ih
}()

// setForwarded writes X-Forwarded-For/-Host/-Proto for the upstream. From a
// trusted proxy the chain it sent (in the canonical spellings only) is kept
// and extended; from anyone else it is replaced. No inbound copy reaches
// the upstream in any spelling.
func (t trustedPeers) setForwarded(pr *httputil.ProxyRequest) {
	forwardingHeaders.strip(pr.Out.Header)
	pr.SetXForwarded()
	if !t.trusts(pr.In) {
		return
	}
	if hops := forwardedFor(pr.In.Header); len(hops) > 0 {
		pr.Out.Header.Set("X-Forwarded-For", strings.Join(hops, ", ")+", "+pr.Out.Header.Get("X-Forwarded-For"))
	}
	if v := pr.In.Header.Get("X-Forwarded-Proto"); v == "http" || v == "https" {
		pr.Out.Header.Set("X-Forwarded-Proto", v)
	}
	if v := pr.In.Header.Get("X-Forwarded-Host"); v != "" && !strings.ContainsAny(v, " \t,/\\") {
		pr.Out.Header.Set("X-Forwarded-Host", v)
	}
}
