package gateway

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/teamgate/teamgate/web"
)

// statusError is a failure answered to the client. It keeps what the user may
// see (Title, Message, Next, Code) apart from what only the operator may see
// (Cause, which is logged and never rendered), and it decides the status.
type statusError struct {
	Status  int
	Type    string // JSON error.type: "unauthorized", "forbidden", ...
	Title   string // page heading
	Message string // plain explanation, safe to show
	Next    string // what the user can do (pages only)
	Code    string // provider error code shown alongside Message, e.g. AADSTS50105
	Action  *web.Link
	Cause   error // for the log only
}

func (e *statusError) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%d %s: %v", e.Status, e.Message, e.Cause)
	}
	return fmt.Sprintf("%d %s", e.Status, e.Message)
}

func (e *statusError) Unwrap() error { return e.Cause }

// errorType is the JSON error.type for a status when none was chosen.
func errorType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusBadGateway:
		return "bad_gateway"
	case http.StatusServiceUnavailable:
		return "service_unavailable"
	case http.StatusGatewayTimeout:
		return "gateway_timeout"
	}
	if status >= 500 {
		return "internal_error"
	}
	return "error"
}

// Common answers. Each call returns a fresh value so callers may add a cause.
func errNotFound() *statusError {
	return &statusError{Status: http.StatusNotFound, Title: "Page not found",
		Message: "There is no teamgate page at this address."}
}

func errUnauthorized() *statusError {
	return &statusError{Status: http.StatusUnauthorized, Title: "Sign-in required",
		Message: "This request needs a signed-in session or an API key.",
		Next:    "Sign in with your work account, or send an API key.",
		Action:  &web.Link{Href: "/oauth2/start", Label: "Sign in"}}
}

// errMethodNotAllowed refuses CONNECT: teamgate is no forward proxy. The
// caller sets Allow.
func errMethodNotAllowed() *statusError {
	return &statusError{Status: http.StatusMethodNotAllowed, Title: "Method not allowed",
		Message: "teamgate does not tunnel connections (CONNECT)."}
}

// errCrossOrigin refuses a signed-in browser's state-changing request that
// another origin made it send.
func errCrossOrigin() *statusError {
	return &statusError{Status: http.StatusForbidden, Title: "Request from another site refused",
		Message: "Your browser sent this request on behalf of another website, so it was not carried out.",
		Next:    "If you meant to do this, do it from the page itself.",
		Cause:   errCrossOriginRequest}
}

func errSessionStoreDown(cause error) *statusError {
	return &statusError{Status: http.StatusServiceUnavailable, Title: "teamgate is temporarily unavailable",
		Message: "teamgate could not check your session because its database is unavailable.",
		Next:    "Wait a moment and try again. If this persists, contact your administrator.",
		Cause:   cause}
}

// writeError answers a request with e: an HTML page when the client is a
// browser (it accepts text/html), JSON otherwise. It also logs the failure:
// 5xx at error level with the cause, 4xx at info level.
func (g *Gateway) writeError(w http.ResponseWriter, r *http.Request, e *statusError) {
	g.respondError(w, r, e, wantsHTML(r))
}

// respondError logs e and writes it as a page or as JSON.
func (g *Gateway) respondError(w http.ResponseWriter, r *http.Request, e *statusError, asHTML bool) {
	info := requestInfoFrom(r.Context())
	level := slog.LevelInfo
	if e.Status >= 500 {
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.Int("status", e.Status),
		slog.String("message", e.Message),
		slog.String("request_id", info.id),
	}
	if e.Code != "" {
		attrs = append(attrs, slog.String("code", e.Code))
	}
	if e.Cause != nil {
		attrs = append(attrs, slog.String("cause", e.Cause.Error()))
	}
	g.log.LogAttrs(r.Context(), level, "request failed", attrs...)

	setPageHeaders(w.Header())
	if asHTML {
		g.writeErrorPage(w, r, e, info.id)
		return
	}
	writeJSONError(w, r, e, info.id)
}

func (g *Gateway) writeErrorPage(w http.ResponseWriter, r *http.Request, e *statusError, requestID string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(e.Status)
	if r.Method == http.MethodHead {
		return
	}
	title := e.Title
	if title == "" {
		title = http.StatusText(e.Status)
	}
	err := web.RenderError(w, web.ErrorPage{
		Status: e.Status, Title: title, Message: e.Message, Next: e.Next,
		Code: e.Code, Action: e.Action, RequestID: requestID,
	})
	if err != nil {
		g.log.Warn("render error page", "error", err, "request_id", requestID)
	}
}

type jsonErrorBody struct {
	Error jsonError `json:"error"`
}

type jsonError struct {
	Message   string `json:"message"`
	Type      string `json:"type"`
	RequestID string `json:"request_id,omitempty"`
}

func writeJSONError(w http.ResponseWriter, r *http.Request, e *statusError, requestID string) {
	typ := e.Type
	if typ == "" {
		typ = errorType(e.Status)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="teamgate"`)
	}
	w.WriteHeader(e.Status)
	if r.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(w).Encode(jsonErrorBody{Error: jsonError{Message: e.Message, Type: typ, RequestID: requestID}})
}

// wantsHTML reports whether the client is a browser expecting a page.
func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// setPageHeaders applies the security headers of teamgate's own responses
// (never of proxied ones): nothing may frame, script or cache them.
func setPageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}
