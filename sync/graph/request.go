package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
)

// maxPages stops a server that keeps sending nextLinks (999 items a page
// makes this about a million objects).
const maxPages = 1000

// get fetches one Graph URL with the app token and returns the body of a 2xx
// answer. A 401 gets one fresh token and one more try; a 403 becomes a
// *PermissionError naming perm; other failures an *APIError. Every page is a
// fresh request with all its headers, since nextLink does not carry them.
func (c *Client) get(ctx context.Context, label, perm, rawURL string) ([]byte, error) {
	path := pathOf(rawURL)
	build := func(tok string) func(context.Context) (*http.Request, error) {
		return func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
			if err != nil {
				return nil, fmt.Errorf("microsoft graph: GET %s: %w", path, err)
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			return req, nil
		}
	}
	refreshed := false
	var lastToken string
	try := func(ctx context.Context, attempt int) (*response, error) {
		tok, err := c.Token(ctx)
		if err != nil {
			return nil, err
		}
		lastToken = tok
		res, err := c.exchange(ctx, label, attempt, build(tok))
		if err != nil || res.status != http.StatusUnauthorized || refreshed {
			return res, err
		}
		// The token may have been revoked or the app's credentials rotated:
		// one fresh token, one more try, never a loop.
		refreshed = true
		c.log.LogAttrs(ctx, slog.LevelInfo, "graph rejected the access token; fetching a new one",
			slog.String("endpoint", label))
		c.invalidateToken(tok)
		if tok, err = c.Token(ctx); err != nil {
			return nil, err
		}
		lastToken = tok
		return c.exchange(ctx, label, attempt, build(tok))
	}
	res, err := c.withRetries(ctx, label, "GET "+path, try)
	if err != nil {
		return nil, err
	}
	if res.status >= 200 && res.status < 300 {
		return res.body, nil
	}
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(res.body, &e) // an HTML error page still yields a typed error
	code := truncate(redact(e.Error.Code, c.cfg.ClientSecret, lastToken), 100)
	if res.status == http.StatusForbidden {
		return nil, &PermissionError{Permission: perm, Endpoint: path, Status: res.status, Code: code}
	}
	return nil, &APIError{Endpoint: path, Status: res.status, Code: code,
		Message: truncate(redact(e.Error.Message, c.cfg.ClientSecret, lastToken), 300)}
}

// eachPage GETs first and follows @odata.nextLink verbatim until it is
// absent, calling fn for every page (pages may be empty).
func (c *Client) eachPage(ctx context.Context, label, perm, first string, fn func(page) error) error {
	next := first
	for n := 1; next != ""; n++ {
		if n > maxPages {
			return fmt.Errorf("microsoft graph: GET %s: more than %d pages", pathOf(first), maxPages)
		}
		body, err := c.get(ctx, label, perm, next)
		if err != nil {
			return err
		}
		p, err := parsePage(body)
		if err != nil {
			return fmt.Errorf("microsoft graph: GET %s: %w", pathOf(next), err)
		}
		if err := fn(p); err != nil {
			return err
		}
		if p.NextLink != "" {
			if err := c.checkNextLink(p.NextLink, next); err != nil {
				return fmt.Errorf("microsoft graph: GET %s: %w", pathOf(next), err)
			}
		}
		next = p.NextLink
	}
	return nil
}

// checkNextLink refuses a nextLink that would carry our bearer token to
// another host, or that points at the page just read (an endless loop).
func (c *Client) checkNextLink(link, current string) error {
	if err := c.checkLinkHost(link, "@odata.nextLink"); err != nil {
		return err
	}
	if link == current {
		return errors.New("@odata.nextLink points to the page just read")
	}
	return nil
}

// checkLinkHost refuses a link from an answer or from storage (what names
// it) unless it is an absolute URL on the configured graph_url's scheme and
// host: following it sends the bearer token.
func (c *Client) checkLinkHost(link, what string) error {
	u, err := url.Parse(link)
	if err != nil {
		return fmt.Errorf("unreadable %s", what)
	}
	if !strings.EqualFold(u.Scheme, c.graph.Scheme) || !strings.EqualFold(u.Host, c.graph.Host) {
		return fmt.Errorf("%s points to %s://%s, not to the configured graph_url", what, u.Scheme, u.Host)
	}
	return nil
}

// graphURL joins the configured base, a path and a raw query. Query keys
// like $select are written literally, as Graph's documentation does.
func (c *Client) graphURL(path, query string) string {
	u := c.cfg.GraphURL + path
	if query != "" {
		u += "?" + query
	}
	return u
}

// pathOf is rawURL without scheme, host and query, for errors: queries may
// carry long skip tokens and never help the operator.
func pathOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		before, _, _ := strings.Cut(rawURL, "?")
		return before
	}
	return u.EscapedPath()
}
