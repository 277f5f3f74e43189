package gateway

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// newReverseProxy builds the hop to the upstream. There is no
// whole-response timeout (LLM streams run for minutes), only a bound on the
// wait for response headers. WebSocket upgrades are handled by ReverseProxy
// itself.
//
// FlushInterval is left at 0 on purpose: ReverseProxy already flushes after
// every write (interval -1) for text/event-stream responses and for any
// response of unknown length (chunked streams), which is every stream
// LiteLLM sends. Forcing -1 for all responses would also flush the headers
// of ordinary responses separately from their bodies, costing a write
// syscall per request (about a fifth of the gateway's throughput in
// BenchmarkProxySignedIn) for no benefit.
func (g *Gateway) newReverseProxy(target *url.URL) *httputil.ReverseProxy {
	dialer := &net.Dialer{Timeout: g.cfg.Upstream.DialTimeout.Std(), KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		// The upstream is addressed directly; environment proxy settings
		// meant for outbound internet traffic must not capture it.
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   512, // the default of 2 would redial under any real concurrency
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: g.cfg.Upstream.ResponseHeaderTimeout.Std(),
	}
	return &httputil.ReverseProxy{
		Rewrite:       g.rewrite(target),
		Transport:     transport,
		FlushInterval: 0, // see above: streams are flushed per write anyway
		BufferPool:    &bufferPool{},
		ErrorHandler:  g.proxyError,
		ErrorLog:      slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
		ModifyResponse: func(res *http.Response) error {
			// Every response carries teamgate's request id, once.
			delete(res.Header, requestIDHeader) // the name is canonical
			return nil
		},
	}
}

// rewrite runs after ReverseProxy has removed hop-by-hop headers (including
// any a client nominated with "Connection: X-Forwarded-User"), so headers
// injected here cannot be removed by the client.
func (g *Gateway) rewrite(target *url.URL) func(*httputil.ProxyRequest) {
	return func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = target.Host
		g.trusted.setForwarded(pr)
		info := requestInfoFrom(pr.In.Context())
		watchBody(pr.Out, info)
		h := pr.Out.Header
		g.headers.strip(h)
		removeCookie(h, g.cfg.Session.CookieName)
		setOne(h, requestIDHeader, &info.values.upstreamID, info.id)
		if info.principal != nil {
			g.headers.inject(h, info.principal, info.team, &info.values.identity)
			g.injectAssertion(h, info)
		}
	}
}

// removeCookie drops teamgate's session cookie from the Cookie headers: the
// upstream has no use for it and should not see (or log) it.
func removeCookie(h http.Header, name string) {
	lines := h["Cookie"]
	if len(lines) == 0 {
		return
	}
	prefix := name + "="
	// The common cases allocate nothing: a header that does not mention the
	// cookie, and one that holds only it.
	if len(lines) == 1 {
		line := strings.TrimSpace(lines[0])
		if !strings.Contains(line, name) {
			return
		}
		if strings.HasPrefix(line, prefix) && !strings.Contains(line, ";") {
			delete(h, "Cookie")
			return
		}
	}
	var kept []string
	changed := false
	for _, line := range lines {
		parts := strings.Split(line, ";")
		out := parts[:0]
		for _, p := range parts {
			// The name as the session's own reader (and net/http) takes it:
			// space around it does not hide the cookie.
			if n, _, ok := strings.Cut(p, "="); ok && strings.TrimSpace(n) == name {
				changed = true
				continue
			}
			out = append(out, p)
		}
		if len(out) > 0 {
			kept = append(kept, strings.TrimSpace(strings.Join(out, ";")))
		}
	}
	if !changed {
		return
	}
	if len(kept) == 0 {
		h.Del("Cookie")
		return
	}
	h["Cookie"] = kept
}

// serveProxy forwards everything outside teamgate's own paths.
func (g *Gateway) serveProxy(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		w.Header().Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
		g.writeError(w, r, errMethodNotAllowed())
		return
	}
	dropForeignUpgrade(r.Header)
	// A browser's CORS preflight carries no credential (nor cookie): it
	// asks LiteLLM whether a page on another origin may call it with a key.
	// It goes through anonymously, for LiteLLM's CORS policy to answer.
	if isPreflight(r) {
		g.proxy.ServeHTTP(w, r)
		return
	}
	// A request with its own LiteLLM credential is LiteLLM's to judge; it
	// goes through anonymously (identity headers are still stripped), unless
	// upstream.api_keys requires a session (LiteLLM trusting the identity
	// headers checks no key).
	if g.cfg.Upstream.APIKeys == APIKeysPassthrough && hasAPICredential(r.Header) {
		g.proxy.ServeHTTP(w, r)
		return
	}
	entry, err := g.sessions.resolve(r)
	if err != nil {
		g.writeError(w, r, errSession(err))
		return
	}
	if entry == nil {
		if isBrowserNavigation(r) {
			setPageHeaders(w.Header())
			redirect(w, g.signInTarget(r.URL.RequestURI(), r), http.StatusFound)
			return
		}
		g.writeError(w, r, errUnauthorized())
		return
	}
	info := requestInfoFrom(r.Context())
	info.userID = entry.principal.UserID
	team, serr := selectTeam(entry, r.Header[g.headers.team]) // Values, for a canonical name
	if serr != nil {
		g.writeError(w, r, serr)
		return
	}
	// A signed-in browser's cookie rides along on any request its pages
	// make, including one another site (a sibling subdomain: same site, so
	// SameSite=Lax lets it through) makes it send: a state-changing request
	// that the browser marks cross-origin is refused before it can act on
	// LiteLLM as the user. Clients that are not browsers send neither
	// Sec-Fetch-Site nor Origin and pass. A WebSocket handshake is a GET
	// but opens a channel that acts as the user: it is checked like a POST
	// (cross-site WebSocket hijacking).
	if err := g.csrf.origin.Check(asStateChanging(r)); err != nil {
		g.writeError(w, r, errCrossOrigin())
		return
	}
	info.principal = entry
	info.team = team
	g.proxy.ServeHTTP(w, r)
}

// isPreflight reports whether r is a CORS preflight.
func isPreflight(r *http.Request) bool {
	if r.Method != http.MethodOptions {
		return false
	}
	_, method := r.Header["Access-Control-Request-Method"]
	_, origin := r.Header["Origin"]
	return method && origin
}

// asStateChanging returns r, or for a WebSocket handshake a shallow copy
// with method POST, for CrossOriginProtection (which passes safe methods).
func asStateChanging(r *http.Request) *http.Request {
	if _, ok := r.Header["Upgrade"]; !ok {
		return r
	}
	c := *r
	c.Method = http.MethodPost
	return &c
}

// dropForeignUpgrade removes a protocol upgrade other than WebSocket (h2c
// above all): after the upstream's 101 the connection would become a raw
// tunnel that teamgate no longer reads, so a client could send further
// requests, with identity headers of its choosing, straight to the
// upstream. Without its Upgrade header the request is proxied as an
// ordinary one (ReverseProxy drops the Connection-listed headers), as a
// server that does not speak h2c answers it.
func dropForeignUpgrade(h http.Header) {
	up, ok := h["Upgrade"]
	if !ok {
		return
	}
	if len(up) == 1 && strings.EqualFold(strings.TrimSpace(up[0]), "websocket") {
		return
	}
	delete(h, "Upgrade")
	delete(h, "Http2-Settings")
}

// hasAPICredential reports whether the request carries a LiteLLM key in any
// of the places LiteLLM reads one. A header the request names in its
// Connection header does not count: the proxy drops it as hop-by-hop, so
// the upstream would get a request with no credential (and no identity).
func hasAPICredential(h http.Header) bool {
	conn := h["Connection"]
	if auth := firstValue(h, "Authorization"); len(auth) > len("Bearer ") &&
		strings.EqualFold(auth[:len("Bearer ")], "Bearer ") && strings.TrimSpace(auth[len("Bearer "):]) != "" &&
		(len(conn) == 0 || !connectionNames(conn, "Authorization")) {
		return true
	}
	for _, name := range [...]string{"X-Litellm-Api-Key", "Api-Key", "X-Api-Key"} {
		if strings.TrimSpace(firstValue(h, name)) != "" && (len(conn) == 0 || !connectionNames(conn, name)) {
			return true
		}
	}
	return false
}

// connectionNames reports whether the Connection header values name the
// header name (a comma-separated, case-insensitive token list).
func connectionNames(values []string, name string) bool {
	for _, v := range values {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), name) {
				return true
			}
		}
	}
	return false
}

// firstValue is h.Get for a name that is canonical already: it skips
// Get's canonicalisation of the name, which runs on every proxied request.
func firstValue(h http.Header, canonicalName string) string {
	if v := h[canonicalName]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// isBrowserNavigation reports whether an unauthenticated request should be
// sent to sign in (a page load) rather than answered 401 (an API call).
func isBrowserNavigation(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && wantsHTML(r)
}

// proxyError answers a failed upstream round trip: 502 when the upstream is
// unreachable or broken, 504 when it sent no headers in time. A client that
// went away is not an upstream failure and is not logged as one.
func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	info := requestInfoFrom(r.Context())
	if r.Context().Err() != nil {
		info.clientGone = true
		g.log.Debug("client went away", "request_id", info.id)
		return
	}
	var opErr *net.OpError
	var netErr net.Error
	switch {
	case info.badBody.Load():
		g.writeError(w, r, errBadRequestBody(err))
	case errors.As(err, &opErr) && opErr.Op == "dial":
		g.writeError(w, r, &statusError{Status: http.StatusBadGateway, Title: "Service unreachable",
			Message: "teamgate could not reach the service behind it.",
			Next:    "Wait a moment and try again. If this persists, contact your administrator.", Cause: err})
	case errors.As(err, &netErr) && netErr.Timeout():
		g.writeError(w, r, &statusError{Status: http.StatusGatewayTimeout, Title: "Service timed out",
			Message: "The service behind teamgate did not answer in time.",
			Next:    "Try again. If this persists, contact your administrator.", Cause: err})
	default:
		g.writeError(w, r, &statusError{Status: http.StatusBadGateway, Title: "Service failed",
			Message: "The service behind teamgate failed to answer.",
			Next:    "Wait a moment and try again. If this persists, contact your administrator.", Cause: err})
	}
}
