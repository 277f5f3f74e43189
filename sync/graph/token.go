package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// tokenRefreshMargin is how long before expiry a cached token is replaced,
// so a token never expires between being handed out and reaching Graph.
// Short-lived tokens use half their lifetime instead.
const tokenRefreshMargin = 5 * time.Minute

// TokenError is an error answer from the Entra token endpoint.
type TokenError struct {
	Status      int
	Code        string // OAuth error, e.g. invalid_client
	Description string // first line of error_description (AADSTS…), secrets removed
	ErrorCodes  []int  // AADSTS numbers
}

func (e *TokenError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "entra token endpoint: status %d", e.Status)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	switch {
	case e.Code == "invalid_client":
		b.WriteString(": the client secret or client id is wrong or expired (use the secret's value, not its id)")
	case e.Code == "unauthorized_client" || slices.Contains(e.ErrorCodes, 700016):
		b.WriteString(": the client id is not an application in this tenant")
	case slices.Contains(e.ErrorCodes, 90002):
		b.WriteString(": the tenant id is wrong")
	}
	if e.Description != "" {
		fmt.Fprintf(&b, " (%s)", e.Description)
	}
	return b.String()
}

// Unwrap makes server-side failures match ErrUnavailable.
func (e *TokenError) Unwrap() error {
	if e.Status >= 500 || e.Code == "temporarily_unavailable" {
		return ErrUnavailable
	}
	return nil
}

// Token returns an app-only access token for Graph, from the cache when it
// is not close to expiry. Concurrent callers share one fetch.
func (c *Client) Token(ctx context.Context) (string, error) {
	if tok, ok := c.cachedToken(); ok {
		return tok, nil
	}
	v, err := c.shared(ctx, "token", func(ctx context.Context) (any, error) {
		// A caller that missed the cache just as a fetch finished lands
		// here: look again rather than fetch twice.
		if tok, ok := c.cachedToken(); ok {
			return tok, nil
		}
		return c.fetchToken(ctx)
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

func (c *Client) cachedToken() (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.now().Before(c.refreshAt) {
		return c.token, true
	}
	return "", false
}

// invalidateToken drops tok from the cache after Graph rejected it, unless
// another caller already replaced it.
func (c *Client) invalidateToken(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == tok {
		c.token = ""
	}
}

// fetchToken runs the client credentials grant.
func (c *Client) fetchToken(ctx context.Context) (string, error) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {c.cfg.ClientID},
		"client_secret": {c.cfg.ClientSecret},
		"scope":         {c.cfg.GraphURL + "/.default"},
	}.Encode()
	build := func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.tokenURL, strings.NewReader(form))
		if err != nil {
			return nil, fmt.Errorf("entra token endpoint: %w", err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req, nil
	}
	start := c.now()
	res, err := c.withRetries(ctx, "token", "POST entra token endpoint",
		func(ctx context.Context, attempt int) (*response, error) {
			return c.exchange(ctx, "token", attempt, build)
		})
	if err != nil {
		return "", err
	}
	if res.status != http.StatusOK {
		return "", c.tokenError(res)
	}
	var tr struct {
		AccessToken string  `json:"access_token"`
		ExpiresIn   seconds `json:"expires_in"`
	}
	if err := json.Unmarshal(res.body, &tr); err != nil || tr.AccessToken == "" {
		return "", fmt.Errorf("entra token endpoint: status 200 without an access token")
	}
	lifetime := time.Duration(tr.ExpiresIn) * time.Second
	margin := min(tokenRefreshMargin, lifetime/2)
	c.mu.Lock()
	c.token = tr.AccessToken
	c.refreshAt = start.Add(lifetime - margin)
	c.mu.Unlock()
	c.log.LogAttrs(ctx, slog.LevelDebug, "fetched graph access token",
		slog.Duration("lifetime", lifetime))
	return tr.AccessToken, nil
}

// tokenError turns an error answer into a *TokenError. The body may echo
// what was sent, so the secret is scrubbed from the description.
func (c *Client) tokenError(res *response) error {
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		ErrorCodes  []int  `json:"error_codes"`
	}
	_ = json.Unmarshal(res.body, &body) // a non-JSON body (a proxy's HTML page) still yields a TokenError
	desc, _, _ := strings.Cut(body.Description, "\n")
	desc = strings.TrimSpace(strings.TrimSuffix(desc, "\r"))
	return &TokenError{
		Status:      res.status,
		Code:        truncate(redact(body.Error, c.cfg.ClientSecret), 100),
		Description: truncate(redact(desc, c.cfg.ClientSecret), 300),
		ErrorCodes:  body.ErrorCodes,
	}
}

// seconds decodes expires_in, which the v2.0 endpoint sends as a number and
// older endpoints as a string.
type seconds int64

func (s *seconds) UnmarshalJSON(b []byte) error {
	b = bytes.Trim(b, `"`)
	if len(b) == 0 || string(b) == "null" {
		*s = 0
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || n < 0 || n > 1<<31 {
		return fmt.Errorf("bad expires_in %q", b)
	}
	*s = seconds(n)
	return nil
}
