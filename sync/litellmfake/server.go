// Package litellmfake is an in-memory fake of LiteLLM's management API for
// tests and `teamgate dev --litellm-fake`.
//
// It follows what LiteLLM's own source does (v1.102 unless noted): the same
// paths, request bodies, status codes and error envelopes, the master-key
// check, the duplicate answers teamgate treats as success, and the side
// effect of /team/new adding the caller ("default_user_id" for the master
// key) as a team admin. Any other path answers 200 {"path": …} without
// authentication, so the fake can also stand in as the whole upstream.
//
// Faults can be injected: SetDown (the connection is dropped), FailNext (an
// error status, optionally with Retry-After) and SetLatency.
package litellmfake

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Server is the fake. The zero value is not usable; call New.
type Server struct {
	masterKey string

	mu       sync.Mutex
	teams    map[string]*Team
	order    []string // team ids in creation order, for Teams()
	users    map[string]*User
	requests []Request
	down     bool
	latency  time.Duration
	fails    []failRule
	seq      int // for generated ids and keys
	observe  func(Request)
}

// Request is one request the fake received. The Authorization header is
// never kept.
type Request struct {
	Method string
	Path   string
	Query  string
	Body   []byte
	// Status is the answer's status, or 0 when the fake dropped the
	// connection (SetDown) or the client went away during SetLatency.
	Status int
}

type failRule struct {
	pathContains string
	left         int
	status       int
	retryAfter   string
}

// New returns an empty fake that accepts masterKey as the master key (in
// "Authorization: Bearer …" or "x-litellm-api-key").
func New(masterKey string) *Server {
	return &Server{
		masterKey: masterKey,
		teams:     map[string]*Team{},
		users:     map[string]*User{},
	}
}

// maxBody bounds what the fake reads from a request.
const maxBody = 1 << 20

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	rec := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: body}

	s.mu.Lock()
	down, latency := s.down, s.latency
	s.mu.Unlock()

	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			s.record(rec)
			return
		}
	}
	if down {
		s.record(rec)
		dropConnection(w)
		return
	}
	if f, ok := s.takeFailure(r.URL.Path); ok {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		rec.Status = f.status
		s.record(rec)
		writeProxyError(w, f.status, "None", "None", http.StatusText(f.status)+" (injected by litellmfake)")
		return
	}

	sw := &statusWriter{ResponseWriter: w}
	s.route(sw, r, body)
	rec.Status = sw.status
	s.record(rec)
}

// route dispatches to the management handlers; anything else is the
// stand-in upstream.
func (s *Server) route(w http.ResponseWriter, r *http.Request, body []byte) {
	type handler struct {
		method string
		fn     func(http.ResponseWriter, *http.Request, []byte)
	}
	routes := map[string]handler{
		"/team/new":           {http.MethodPost, s.teamNew},
		"/team/update":        {http.MethodPost, s.teamUpdate},
		"/team/info":          {http.MethodGet, s.teamInfo},
		"/team/member_add":    {http.MethodPost, s.memberAdd},
		"/team/member_delete": {http.MethodPost, s.memberDelete},
		"/team/block":         {http.MethodPost, s.teamBlock(true)},
		"/team/unblock":       {http.MethodPost, s.teamBlock(false)},
		"/user/new":           {http.MethodPost, s.userNew},
		"/user/info":          {http.MethodGet, s.userInfo},
	}
	h, ok := routes[r.URL.Path]
	if !ok {
		writeJSON(w, http.StatusOK, map[string]any{"path": r.URL.Path})
		return
	}
	if r.Method != h.method {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"detail": "Method Not Allowed"})
		return
	}
	if !s.authorize(w, r) {
		return
	}
	h.fn(w, r, body)
}

// authorize checks the master key the way LiteLLM's user_api_key_auth
// answers a bad one: 401 in the ProxyException envelope, type auth_error.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) bool {
	key := r.Header.Get("x-litellm-api-key")
	if key == "" {
		auth := r.Header.Get("Authorization")
		if k, ok := strings.CutPrefix(auth, "Bearer "); ok {
			key = strings.TrimSpace(k)
		} else {
			key = strings.TrimSpace(auth)
		}
	}
	switch {
	case key == "":
		writeProxyError(w, http.StatusUnauthorized, "auth_error", "None", "Authentication Error, No api key passed in.")
		return false
	case key == s.masterKey:
		return true
	case !strings.HasPrefix(key, "sk-"):
		// LiteLLM echoes such a key whole; a client must not repeat it.
		writeProxyError(w, http.StatusUnauthorized, "auth_error", "None",
			"Authentication Error, LiteLLM Virtual Key expected. Received="+key+", expected to start with 'sk-'.")
		return false
	}
	writeProxyError(w, http.StatusUnauthorized, "auth_error", "None",
		"Authentication Error, Invalid proxy server token passed. Received API Key = sk-..."+lastN(key, 4)+
			", Key Hash (Token) ="+hashHex(key)+". Unable to find token in cache or `LiteLLM_VerificationTokenTable`")
	return false
}

func (s *Server) record(rec Request) {
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	observe := s.observe
	s.mu.Unlock()
	if observe != nil {
		observe(rec)
	}
}

// OnRequest registers fn to be called after each request is answered (or
// dropped), outside the fake's lock, so tests can wait on a channel for
// deliveries instead of polling. fn must be safe for concurrent use; nil
// removes it.
func (s *Server) OnRequest(fn func(Request)) {
	s.mu.Lock()
	s.observe = fn
	s.mu.Unlock()
}

func (s *Server) takeFailure(path string) (failRule, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.fails {
		f := &s.fails[i]
		if f.left > 0 && strings.Contains(path, f.pathContains) {
			f.left--
			out := *f
			if f.left == 0 {
				s.fails = append(s.fails[:i], s.fails[i+1:]...)
			}
			return out, true
		}
	}
	return failRule{}, false
}

// SetDown makes the fake behave like a LiteLLM that is not there. An
// http.Handler cannot refuse a connection, so the fake hijacks it and closes
// it without an answer: the client sees a transport error (EOF or
// connection reset), as when LiteLLM restarts mid-request. Where hijacking
// is impossible (HTTP/2, httptest.ResponseRecorder) it answers 503 with
// "Connection: close" instead. Requests are still recorded, with Status 0.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// FailNext answers the next n requests whose path contains pathContains
// with status (in LiteLLM's error envelope) and, when retryAfter is not
// empty, a Retry-After header. Rules are consulted in the order they were
// added; n <= 0 removes the rules for pathContains.
func (s *Server) FailNext(pathContains string, n int, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= 0 {
		kept := s.fails[:0]
		for _, f := range s.fails {
			if f.pathContains != pathContains {
				kept = append(kept, f)
			}
		}
		s.fails = kept
		return
	}
	s.fails = append(s.fails, failRule{pathContains: pathContains, left: n, status: status, retryAfter: retryAfter})
}

// SetLatency delays every answer by d. A client that gives up first (its
// request context ends) gets no answer, and the handler returns at once.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	s.latency = d
	s.mu.Unlock()
}

// Requests returns the requests received so far, in the order they were
// answered (which is arrival order unless requests overlap).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		r.Body = bytes.Clone(r.Body)
		out[i] = r
	}
	return out
}

// dropConnection closes the client's connection without an answer.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	w.Header().Set("Connection", "close")
	writeProxyError(w, http.StatusServiceUnavailable, "None", "None", "Service Unavailable (litellmfake is down)")
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}
