package litellm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultTimeout bounds one HTTP request (connect, send, read the answer).
const DefaultTimeout = 30 * time.Second

// Response bodies are read up to these sizes: an error answer is short, and
// /team/info lists the team's keys and members, so it gets more room.
const (
	maxErrorBody = 64 << 10
	maxInfoBody  = 8 << 20
	drainLimit   = 256 << 10
)

// Client calls LiteLLM's management API with the master key. It is safe for
// concurrent use. The master key is sent only in the Authorization header and
// never appears in errors or logs.
type Client struct {
	base    *url.URL
	key     string
	http    *http.Client
	log     *slog.Logger
	timeout time.Duration
	now     func() time.Time
}

// Option customises a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client. The default one does not follow
// redirects: a redirect means litellm.url is wrong, and following it would
// turn a POST into a GET.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.log = l } }

// WithTimeout bounds each HTTP request (default DefaultTimeout). Apply may
// make up to three requests (team_new on a duplicate id).
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithClock sets the clock used to turn an HTTP-date Retry-After into a
// delay.
func WithClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// New returns a client for the LiteLLM proxy at baseURL (e.g.
// "http://litellm:4000"; a path prefix is kept).
func New(baseURL, masterKey string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("litellm: base URL %q must be an absolute http(s) URL", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("litellm: base URL %q must not have a query or fragment", baseURL)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	if strings.TrimSpace(masterKey) == "" {
		return nil, errors.New("litellm: master key is empty")
	}
	c := &Client{
		base: u,
		key:  masterKey,
		http: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		log:     slog.New(slog.DiscardHandler),
		timeout: DefaultTimeout,
		now:     time.Now,
	}
	for _, o := range opts {
		o(c)
	}
	if c.timeout <= 0 {
		return nil, fmt.Errorf("litellm: timeout must be positive, got %s", c.timeout)
	}
	if c.http == nil || c.log == nil || c.now == nil {
		return nil, errors.New("litellm: nil option value")
	}
	return c, nil
}

// response is one HTTP answer with its body read (bounded) and, for an
// error status, LiteLLM's error decoded.
type response struct {
	status int
	header http.Header
	body   []byte
	err    apiError
	// truncated is set when the body was longer than the limit and cut.
	truncated bool
}

// do sends one request under the per-request timeout. A failure to get an
// answer is transient; so is a 5xx, 429 or 408 answer. Any other answer is
// returned for the caller to classify.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body []byte, limit int64) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	u := *c.base
	u.Path = c.base.Path + path
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("litellm %s: %w", path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	start := time.Now()
	res, err := c.http.Do(req)
	if err != nil {
		c.log.LogAttrs(ctx, slog.LevelDebug, "litellm request failed",
			slog.String("method", method), slog.String("path", path),
			slog.Duration("duration", time.Since(start)), slog.String("error", err.Error()))
		return nil, &transientError{path: path, cause: err}
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 {
		limit = maxErrorBody
	}
	data, err := io.ReadAll(io.LimitReader(res.Body, limit+1))
	if err != nil {
		return nil, &transientError{path: path, status: res.StatusCode, cause: fmt.Errorf("reading the answer: %w", err)}
	}
	truncated := int64(len(data)) > limit
	if truncated {
		data = data[:limit]
	}
	// Drain a little more so the connection can be reused; a longer answer
	// is cut off with the connection.
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, drainLimit))
	c.log.LogAttrs(ctx, slog.LevelDebug, "litellm request",
		slog.String("method", method), slog.String("path", path),
		slog.Int("status", res.StatusCode), slog.Duration("duration", time.Since(start)))

	r := &response{status: res.StatusCode, header: res.Header, body: data, truncated: truncated}
	if r.status >= 300 {
		r.err = parseError(data, c.key)
	}
	if transientStatus(r.status) {
		te := &transientError{path: path, status: r.status, msg: r.err.Message}
		te.retryAfter, te.hasRetryAfter = parseRetryAfter(res.Header.Get("Retry-After"), c.now())
		return nil, te
	}
	return r, nil
}

// transientStatus reports whether an HTTP status is worth retrying.
func transientStatus(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout
}

// permanent turns a non-2xx answer into a *PermanentError.
func (r *response) permanent(path string) *PermanentError {
	msg := r.err.Message
	if r.status >= 300 && r.status < 400 {
		msg = "redirected to " + redact(r.header.Get("Location"), "") + "; check litellm.url"
	}
	return &PermanentError{Status: r.status, Type: r.err.Type, Message: msg, Path: path}
}

// parseRetryAfter reads delta-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	var secs int64
	if _, err := fmt.Sscanf(v, "%d", &secs); err == nil && fmt.Sprint(secs) == v {
		if secs < 0 {
			secs = 0
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}
