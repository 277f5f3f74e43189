package gateway

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
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
	return rand.Text()
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
	w.Header().Set(requestIDHeader, info.id)
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
	rec := &responseRecorder{ResponseWriter: w}
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
	status := rec.status
	switch {
	case info.clientGone:
		status = 499
	case status == 0:
		status = http.StatusOK
	}
	// The record is built here rather than by Logger.LogAttrs, which looks up
	// its call site (runtime.Callers) for every record although no handler
	// of teamgate's prints it; and nothing is built when info is off.
	h, ctx := g.log.Handler(), r.Context()
	if !h.Enabled(ctx, slog.LevelInfo) {
		return
	}
	line := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
	line.AddAttrs(
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
		slog.String("request_id", info.id),
		slog.String("client_ip", g.trusted.clientIP(r)),
		slog.String("user_id", info.userID),
		slog.String("team_id", info.team),
	)
	_ = h.Handle(ctx, line)
}
