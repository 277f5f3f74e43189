package gateway

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// requestInfo travels in the request context from ServeHTTP to the handlers
// and the proxy's Rewrite hook, and back to the access log. A request is
// served by one goroutine, so its fields need no locking.
type requestInfo struct {
	id     string
	userID string // the signed-in user, for the access log
	// clientGone marks a request whose client went away; the access log
	// shows 499 instead of the 502 nobody received.
	clientGone bool
	// badBody is set (by the transport's goroutine) when the client's
	// request body could not be read (proxy_body.go).
	badBody atomic.Bool
	// What Rewrite injects: nil for anonymous or API-key requests.
	principal *principalEntry
	team      string

	// The request's other small objects live here, so that they come
	// with this one allocation rather than each with its own: the
	// recorder ServeHTTP hands on, the outbound body's watcher, and the
	// one-element value slices of the headers teamgate sets (each used
	// with its capacity cut to 1, so that an append elsewhere copies).
	rec    responseRecorder
	body   watchedBody
	values requestHeaderValues
}

// requestHeaderValues backs the values of the headers teamgate sets on a
// request's response and on its outbound request.
type requestHeaderValues struct {
	responseID, upstreamID [1]string
	identity               identityValues
	assertion, bearer      [1]string
}

// setOne sets h[name] to the single value v, stored in slot, without
// allocating: the slice is slot itself (its capacity is 1, so an append
// elsewhere copies rather than writes past it). name must be canonical.
func setOne(h http.Header, name string, slot *[1]string, v string) {
	slot[0] = v
	h[name] = slot[:]
}

type requestInfoKey struct{}

func withRequestInfo(ctx context.Context, info *requestInfo) context.Context {
	return context.WithValue(ctx, requestInfoKey{}, info)
}

// requestInfoFrom never returns nil, so code paths reached outside ServeHTTP
// (tests calling handlers directly) still work.
func requestInfoFrom(ctx context.Context) *requestInfo {
	if info, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		return info
	}
	return &requestInfo{}
}

const requestIDHeader = "X-Request-Id"

// requestID keeps the X-Request-Id of a trusted proxy when it is a short
// token of safe characters (so it can be logged and echoed verbatim), else
// makes one: a client must not be able to plant ids in the operator's log.
func requestID(r *http.Request, trusted trustedPeers) string {
	if id := r.Header.Get(requestIDHeader); isSafeRequestID(id) && trusted.trusts(r) {
		return id
	}
	return newRequestID()
}

// newRequestID makes an id like crypto/rand.Text's: 26 characters of
// base32, 130 random bits. The bits come from the runtime's generator
// (ChaCha8, seeded by the operating system): a request id must be unique,
// not secret, and this one costs no system call.
func newRequestID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	var b [26]byte
	x, y := rand.Uint64(), rand.Uint64()
	for i := 0; i < 12; i++ {
		b[i], b[i+12] = alphabet[x&31], alphabet[y&31]
		x, y = x>>5, y>>5
	}
	z := rand.Uint64()
	b[24], b[25] = alphabet[z&31], alphabet[z>>5&31]
	return string(b[:])
}

func isSafeRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// responseRecorder remembers the final status for the access log. It
// forwards Flush and Hijack itself (gin asserts those interfaces directly)
// and exposes Unwrap for http.ResponseController.
type responseRecorder struct {
	http.ResponseWriter
	status int
}

func (w *responseRecorder) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *responseRecorder) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
		return
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *responseRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return conn, brw, err
}

func (w *responseRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ServeHTTP is the single entry point: it assigns the request id, decides
// whether teamgate or the upstream answers, recovers panics and writes the
// access line.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	info := &requestInfo{id: requestID(r, g.trusted)}
	setOne(w.Header(), requestIDHeader, &info.values.responseID, info.id)
	if len(r.TransferEncoding) > 0 {
		// net/http accepts Content-Length together with Transfer-Encoding:
		// chunked (it drops the length) and keeps the connection open. A
		// proxy in front that framed the request by its Content-Length
		// would then read our next request differently from us: request
		// smuggling. RFC 9112 §6.1 requires closing the connection after
		// such a request; net/http hides whether a length came with it, so
		// every chunked request is the last of its connection.
		w.Header().Set("Connection", "close")
	}
	// Where FramingListener watches the connection, such a request is
	// also refused, and so is an HTTP/1.0 one with Transfer-Encoding
	// (framing.go). Called for every request: it numbers them.
	fault := framingFault(r)
	rec := &info.rec
	rec.ResponseWriter = w
	r = r.WithContext(withRequestInfo(r.Context(), info))

	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				// The proxy aborts a response whose upstream body failed
				// mid-copy; net/http closes the connection quietly.
				g.logAccess(r, rec, info, start)
				panic(p)
			}
			g.log.Error("panic serving request", "panic", fmt.Sprint(p),
				"request_id", info.id, "stack", string(debug.Stack()))
			if rec.status == 0 {
				g.writeError(rec, r, &statusError{Status: http.StatusInternalServerError,
					Title: "Something went wrong", Message: "teamgate hit an unexpected error."})
			}
		}
		g.logAccess(r, rec, info, start)
	}()

	if fault != nil {
		msg := "The request had both a Content-Length and a Transfer-Encoding header."
		if fault == errTransferEncoding10 {
			msg = "The HTTP/1.0 request had a Transfer-Encoding header."
		}
		rec.Header().Set("Connection", "close")
		g.writeError(rec, r, &statusError{Status: http.StatusBadRequest,
			Title: "Bad request", Message: msg, Cause: fault})
		return
	}
	if r.Method == http.MethodOptions && r.RequestURI == "*" {
		// What net/http answers itself unless the server sets
		// DisableGeneralOptionsHandler (which serve.go does, so that
		// such a request gets the framing checks above).
		rec.Header().Set("Content-Length", "0")
		rec.WriteHeader(http.StatusOK)
		return
	}
	if clean, reserved := classifyPath(r.URL.Path); reserved {
		if clean != r.URL.Path {
			r = withPath(r, clean)
		}
		g.engine.ServeHTTP(rec, r)
		return
	}
	g.serveProxy(rec, r)
}

// logAccess writes one line per request. It logs the path without the query
// (queries carry OAuth codes and state) and nothing from headers or cookies.
func (g *Gateway) logAccess(r *http.Request, rec *responseRecorder, info *requestInfo, start time.Time) {
	// Nothing is built when info is off.
	h, ctx := g.log.Handler(), r.Context()
	if !h.Enabled(ctx, slog.LevelInfo) {
		return
	}
	now := time.Now()
	line := accessLine{
		method:    r.Method,
		path:      r.URL.Path,
		status:    rec.status,
		duration:  now.Sub(start),
		requestID: info.id,
		clientIP:  g.trusted.clientAddr(r),
		userID:    info.userID,
		teamID:    info.team,
	}
	switch {
	case info.clientGone:
		line.status = 499
	case line.status == 0:
		line.status = http.StatusOK
	}
	// NewLogHandler's handler writes the line itself (accesslog.go). For
	// any other, the record is built here rather than by Logger.LogAttrs,
	// which looks up its call site (runtime.Callers) for every record
	// although no handler of teamgate's prints it.
	if lh, ok := h.(*logHandler); ok && lh.fast {
		lh.writeAccess(now, &line)
		return
	}
	record := slog.NewRecord(now, slog.LevelInfo, "request", 0)
	attrs := line.attrs()
	record.AddAttrs(attrs[:]...)
	_ = h.Handle(ctx, record)
}
