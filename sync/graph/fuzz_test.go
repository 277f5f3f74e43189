package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

func FuzzParsePage(f *testing.F) {
	seeds := []string{
		`{"value":[]}`,
		`{"@odata.context":"x","value":[{"@odata.type":"#microsoft.graph.group","id":"g","displayName":"G"}],"@odata.nextLink":"https://graph.microsoft.com/v1.0/users/u/memberOf?$skiptoken=RFNwdA"}`,
		`{"value":[{"@odata.type":"#microsoft.graph.group","id":"g","displayName":null}]}`,
		`{"value":[{"@odata.type":"#microsoft.graph.directoryRole","id":"r"}]}`,
		`{"value":[{"id":"a","principalId":"g","principalType":"Group","principalDisplayName":"G"}]}`,
		`{"value":null}`,
		`{}`,
		`[]`,
		`{"value":[1,2]}`,
		`{"value":[{"id":5}]}`,
		`{"value":[],"value":[{"id":"dup"}]}`,
		`{"Value":[{"id":"case"}]}`,
		`{"value":[{"id":"\u0000","displayName":"\ud800"}]}`,
		``,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := parsePage(body)
		if err != nil {
			if len(p.Items) != 0 || p.NextLink != "" {
				t.Errorf("error %v with a non-empty page", err)
			}
			return
		}
		if p.Items == nil {
			t.Error("success without a value array")
		}
		// What was parsed is what the JSON says: decoding it generically
		// finds a value array of the same length and the same nextLink.
		generic, err := decodeGeneric(body)
		if err != nil {
			t.Fatalf("parsePage accepted a body encoding/json rejects: %v", err)
		}
		if next, _ := generic["@odata.nextLink"].(string); next != p.NextLink {
			t.Errorf("nextLink %q, body says %q", p.NextLink, next)
		}
	})
}

// decodeGeneric decodes a JSON object as encoding/json would, except that
// numbers stay json.Number: parsers that skip a member must not be blamed
// for a number too large for float64 in it.
func decodeGeneric(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the object")
	}
	return v, nil
}

func FuzzParseDeltaPage(f *testing.F) {
	seeds := []string{
		`{"value":[]}`,
		`{"@odata.context":"x","value":[{"id":"g","displayName":"G","members@delta":[{"@odata.type":"#microsoft.graph.user","id":"u"}]}],"@odata.nextLink":"https://graph.microsoft.com/v1.0/groups/delta?$skiptoken=a"}`,
		`{"value":[{"id":"g","members@delta":[{"@odata.type":"#microsoft.graph.user","id":"u","@removed":{"reason":"deleted"}}]}],"@odata.deltaLink":"https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=b"}`,
		`{"value":[{"id":"g","@removed":{"reason":"changed"}}],"@odata.deltaLink":"d"}`,
		`{"value":[{"id":"g","@removed":null,"displayName":null,"members@delta":null}]}`,
		`{"value":[{"id":"g","@REMOVED":{"reason":"deleted"},"Members@Delta":[{"id":"u"}]}]}`,
		`{"value":[{"id":"g","@removed":"yes"}]}`,
		`{"value":[{"id":"g","members@delta":[{"@odata.type":"#microsoft.graph.group"}]}]}`,
		`{"value":[{"id":"g","members@delta":{}}]}`,
		`{"value":[{"id":"g"},{"id":"G","displayName":"upper"}]}`,
		`{"value":[null]}`,
		`{"value":[{"id":""}]}`,
		`{"value":[],"@odata.deltaLink":5}`,
		`{"value":[],"x":1e400}`,
		`{"Value":[]}`,
		`null`,
		``,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := parseDeltaPage(body)
		if err != nil {
			if len(p.Items) != 0 || p.NextLink != "" || p.DeltaLink != "" {
				t.Errorf("error %v with a non-empty page", err)
			}
			return
		}
		if p.Items == nil {
			t.Fatal("success without a value array")
		}
		generic, err := decodeGeneric(body)
		if err != nil {
			t.Fatalf("parseDeltaPage accepted a body encoding/json rejects: %v", err)
		}
		values, ok := generic["value"].([]any)
		if !ok || len(values) != len(p.Items) {
			t.Fatalf("%d items, body's value is %v", len(p.Items), generic["value"])
		}
		for _, link := range []struct{ key, got string }{{"@odata.nextLink", p.NextLink}, {"@odata.deltaLink", p.DeltaLink}} {
			if want, _ := generic[link.key].(string); want != link.got {
				t.Errorf("%s %q, body says %q", link.key, link.got, want)
			}
		}
		ids := map[string]bool{}
		for i, v := range values {
			obj, ok := v.(map[string]any)
			it := p.Items[i]
			if !ok || it.ID == "" || obj["id"] != it.ID {
				t.Fatalf("item %d: %+v from %v", i, it, v)
			}
			ids[strings.ToLower(it.ID)] = true
			if (obj["@removed"] != nil) != it.Removed {
				t.Errorf("item %d: Removed %v from %v", i, it.Removed, obj)
			}
			name, isString := obj["displayName"].(string)
			if isString != (it.DisplayName != nil) || (isString && *it.DisplayName != name) {
				t.Errorf("item %d: DisplayName %v from %v", i, it.DisplayName, obj)
			}
			members, _ := obj["members@delta"].([]any)
			if len(members) != len(it.Members) {
				t.Fatalf("item %d: %d members from %v", i, len(it.Members), obj)
			}
			for j, mv := range members {
				m, _ := mv.(map[string]any)
				if dm := it.Members[j]; dm.ID == "" || m["id"] != dm.ID || (m["@removed"] != nil) != dm.Removed {
					t.Errorf("item %d member %d: %+v from %v", i, j, dm, mv)
				}
			}
		}
		// Merging keeps one change per group, never more, never fewer.
		var m deltaMerge
		m.add(p.Items)
		changes := m.result()
		if len(changes) != len(ids) {
			t.Fatalf("%d changes for %d distinct groups", len(changes), len(ids))
		}
		for _, c := range changes {
			if !ids[strings.ToLower(c.ID)] {
				t.Fatalf("change for unknown group %q", c.ID)
			}
		}
	})
}

// fuzzSecret and fuzzToken are the client's credentials in FuzzGraphAnswer:
// no error may show them, even when Graph's answer echoes them.
const (
	fuzzSecret = "fuzz-client-secret-VALUE-0123"
	fuzzToken  = "eyJfuzz-access-token-VALUE-4567"
	fuzzGraph  = "https://graph.fuzz.example"
)

// cannedGraph answers the token endpoint with fuzzToken and the first
// memberOf page with a fuzzed status and body; any later page is empty.
type cannedGraph struct {
	status int
	header http.Header
	body   []byte
	hosts  []string
}

func (c *cannedGraph) RoundTrip(r *http.Request) (*http.Response, error) {
	c.hosts = append(c.hosts, r.URL.Host)
	answer := func(status int, h http.Header, body []byte) *http.Response {
		if h == nil {
			h = http.Header{}
		}
		return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(bytes.NewReader(body)), Request: r}
	}
	switch {
	case strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token"):
		return answer(200, nil, []byte(`{"token_type":"Bearer","expires_in":3599,"access_token":"`+fuzzToken+`"}`)), nil
	case strings.Contains(r.URL.RawQuery, "skiptoken"):
		return answer(200, nil, []byte(`{"value":[]}`)), nil
	default:
		return answer(c.status, c.header, c.body), nil
	}
}

// FuzzGraphAnswer feeds the Graph client arbitrary answers (status,
// Retry-After, body) to a memberOf request. Properties: no panic; a result
// holds only groups with an id and a name, without duplicates, taken from
// items typed as groups; the client never sends the token to a host other
// than the configured ones; and no error shows the client secret or token.
//
// Seeds: testdata/fuzz/FuzzGraphAnswer and the answers below.
func FuzzGraphAnswer(f *testing.F) {
	for _, s := range []struct {
		status     int
		retryAfter string
		body       string
	}{
		{200, "", `{"value":[{"@odata.type":"#microsoft.graph.group","id":"g1","displayName":"One"},{"@odata.type":"#microsoft.graph.group","id":"g1","displayName":"Dup"}]}`},
		{200, "", `{"value":[{"@odata.type":"#microsoft.graph.group","id":"g1","displayName":null}]}`},
		{200, "", `{"value":[{"@odata.type":"#microsoft.graph.group","id":"","displayName":"x"}]}`},
		{200, "", `{"value":[],"@odata.nextLink":"https://evil.example/v1.0/users/u/memberOf?$skiptoken=x"}`},
		{200, "", `{"value":[],"@odata.nextLink":"` + fuzzGraph + `/v1.0/users/u/memberOf?$skiptoken=x"}`},
		{200, "", `{"value":[{"@odata.type":"#microsoft.graph.directoryRole","id":"r","displayName":"Admin"}]}`},
		{403, "", `{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges ` + fuzzToken + `"}}`},
		{400, "", `{"error":{"code":"` + fuzzSecret + `","message":"client_secret=` + fuzzSecret + `"}}`},
		{429, "2", `{"error":{"code":"TooManyRequests","message":"slow down"}}`},
		{429, "99999999999999999999", ``},
		{503, "Wed, 21 Oct 2015 07:28:00 GMT", `<html>down</html>`},
		{500, "", "\xff\xfe"},
		{200, "", `not json`},
	} {
		f.Add(s.status, s.retryAfter, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		if status < 100 || status > 599 {
			return
		}
		canned := &cannedGraph{status: status, header: http.Header{"Retry-After": {retryAfter}}, body: body}
		c, err := New(Config{
			TenantID: "tenant", ClientID: "client", ClientSecret: fuzzSecret,
			AuthorityHost: "https://login.fuzz.example", GraphURL: fuzzGraph,
			MaxAttempts: 2, MaxRetryTime: time.Minute, RequestTimeout: time.Second,
		}, WithHTTPClient(&http.Client{Transport: canned}),
			WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
			WithSleep(func(context.Context, time.Duration) error { return nil }),
			WithRandom(func() float64 { return 0.5 }))
		if err != nil {
			t.Fatal(err)
		}
		groups, err := c.UserGroups(context.Background(), "user-1")
		for _, h := range canned.hosts {
			if !strings.EqualFold(h, "login.fuzz.example") && !strings.EqualFold(h, "graph.fuzz.example") {
				t.Fatalf("the client called %s", h)
			}
		}
		if err != nil {
			if msg := err.Error(); strings.Contains(msg, fuzzSecret) || strings.Contains(msg, fuzzToken) {
				t.Fatalf("the error shows a credential: %s", msg)
			}
			var pe *PermissionError
			if errors.As(err, &pe) && status != http.StatusForbidden && status/100 != 2 {
				t.Fatalf("status %d reported as a missing permission: %v", status, err)
			}
			return
		}
		if status/100 != 2 {
			t.Fatalf("status %d answered with groups %v", status, groups)
		}
		seen := map[string]bool{}
		for _, g := range groups {
			if g.ID == "" || seen[g.ID] {
				t.Fatalf("group list %v: empty or duplicate id", groups)
			}
			seen[g.ID] = true
			if !bytes.Contains(body, []byte(`#microsoft.graph.group`)) {
				t.Fatalf("group %v from a body without group items", g)
			}
		}
	})
}

// FuzzParseRetryAfter: a usable hint is never negative, and an unreadable
// one is reported as such (the caller then backs off on its own).
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "5", " 7 ", "-1", "1.5", "99999999999999999999", "Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 01 Mar 2030 12:00:00 GMT", "soon"} {
		f.Add(s)
	}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := parseRetryAfter(v, now)
		if d < 0 {
			t.Fatalf("parseRetryAfter(%q) = %v", v, d)
		}
		if !ok && d != 0 {
			t.Fatalf("parseRetryAfter(%q) = %v with ok false", v, d)
		}
		if strings.TrimSpace(v) == "" && ok {
			t.Fatalf("an empty header counted as a hint")
		}
	})
}
