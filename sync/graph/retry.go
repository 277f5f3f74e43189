package graph

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxBodyBytes bounds every response body read: a 999-item page of groups
// is well under 1 MiB, so anything near this is a broken or hostile server.
const maxBodyBytes = 16 << 20

// Backoff without Retry-After: full jitter over an exponentially growing
// ceiling (0.5 s, 1 s, 2 s, … capped at 8 s).
const (
	backoffBase = 500 * time.Millisecond
	backoffCap  = 8 * time.Second
)

const userAgent = "teamgate-graph/1"

// response is a fully read HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// attemptError is an attempt that got no answer (connection refused or
// reset, per-attempt timeout): worth retrying.
type attemptError struct{ err error }

func (e *attemptError) Error() string { return e.err.Error() }
func (e *attemptError) Unwrap() error { return e.err }

// retryableStatus lists the answers Graph documents as transient. Other 5xx
// are not retried (they rarely heal within a sign-in) but still wrap
// ErrUnavailable.
func retryableStatus(status int) bool {
	return status == http.StatusTooManyRequests ||
		status == http.StatusServiceUnavailable ||
		status == http.StatusGatewayTimeout
}

// exchange performs one HTTP attempt, bounded by RequestTimeout, and reads
// at most maxBodyBytes of the answer.
func (c *Client) exchange(ctx context.Context, label string, attempt int, build func(context.Context) (*http.Request, error)) (*response, error) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	req, err := build(actx)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "application/json")
	start := c.now()
	report := func(status int) {
		c.observe(RequestEvent{Endpoint: label, Status: status, Attempt: attempt,
			Throttled: status == http.StatusTooManyRequests, Duration: c.now().Sub(start)})
	}
	res, err := c.http.Do(req)
	if err != nil {
		report(0)
		return nil, &attemptError{err: err}
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxBodyBytes+1))
	if err != nil {
		report(0)
		return nil, &attemptError{err: fmt.Errorf("reading answer: %w", err)}
	}
	report(res.StatusCode)
	if len(body) > maxBodyBytes {
		return nil, fmt.Errorf("microsoft graph %s: answer larger than %d bytes", label, maxBodyBytes)
	}
	return &response{status: res.StatusCode, header: res.Header, body: body}, nil
}

// withRetries calls try until it returns an answer that is not 429/503/504,
// a non-retryable error, or the attempt count or time budget runs out.
// Waits honour Retry-After; a Retry-After beyond the remaining budget gives
// up at once rather than sleeping only to fail. what names the request in
// errors and logs.
func (c *Client) withRetries(ctx context.Context, label, what string, try func(ctx context.Context, attempt int) (*response, error)) (*response, error) {
	deadline := c.now().Add(c.cfg.MaxRetryTime)
	for attempt := 1; ; attempt++ {
		res, err := try(ctx, attempt)
		var last string
		var wait time.Duration
		hinted := false
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, fmt.Errorf("microsoft graph: %s: %w", what, ctx.Err())
			}
			var ae *attemptError
			if !errors.As(err, &ae) {
				return nil, err
			}
			last = "error: " + ae.Error()
		case retryableStatus(res.status):
			last = fmt.Sprintf("status %d", res.status)
			wait, hinted = parseRetryAfter(res.header.Get("Retry-After"), c.now())
		default:
			return res, nil
		}
		if attempt >= c.cfg.MaxAttempts {
			return nil, fmt.Errorf("%w: %s: gave up after %d attempts, last %s", ErrUnavailable, what, attempt, last)
		}
		if !hinted {
			wait = c.backoff(attempt)
		}
		if remaining := deadline.Sub(c.now()); wait > remaining {
			return nil, fmt.Errorf("%w: %s: gave up after %d attempts, last %s: waiting %s more would pass the %s retry budget",
				ErrUnavailable, what, attempt, last, wait.Round(time.Millisecond), c.cfg.MaxRetryTime)
		}
		c.log.LogAttrs(ctx, slog.LevelWarn, "graph request will be retried",
			slog.String("endpoint", label), slog.Int("attempt", attempt),
			slog.String("last", last), slog.Duration("wait", wait), slog.Bool("retry_after", hinted))
		if err := c.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("microsoft graph: %s: %w", what, err)
		}
	}
}

// backoff is the full-jitter wait before attempt+1.
func (c *Client) backoff(attempt int) time.Duration {
	ceiling := backoffCap
	if attempt < 16 {
		ceiling = min(backoffCap, backoffBase<<(attempt-1))
	}
	r := c.random()
	if r < 0 || r >= 1 {
		r = 0.5
	}
	return time.Duration(r * float64(ceiling))
}

// parseRetryAfter reads delta-seconds or an HTTP date; ok is false when the
// header is absent or unreadable (the caller then backs off).
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseUint(v, 10, 64); err == nil {
		if n > uint64(math.MaxInt64/int64(time.Second)) {
			return time.Duration(math.MaxInt64), true
		}
		return time.Duration(n) * time.Second, true
	} else if errors.Is(err, strconv.ErrRange) {
		return time.Duration(math.MaxInt64), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// redact removes secrets from text that came from a server (error messages
// may echo what was sent) before it goes into an error.
func redact(s string, secrets ...string) string {
	for _, secret := range secrets {
		if len(secret) >= 4 {
			s = strings.ReplaceAll(s, secret, "[REDACTED]")
		}
	}
	return s
}

// truncate shortens server-provided text for error messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
