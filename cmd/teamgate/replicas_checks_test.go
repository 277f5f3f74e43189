package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/teamgate/teamgate/gateway"
	"github.com/teamgate/teamgate/gateway/assertion/assertiontest"
	"github.com/teamgate/teamgate/sync/fakeentra"
	"github.com/teamgate/teamgate/sync/litellm"
	"github.com/teamgate/teamgate/sync/litellmfake"
	"github.com/teamgate/teamgate/sync/store"
)

// Helpers for TestTwoReplicasShareOnePostgres (replicas_test.go): checks
// that need two real teamgate processes on one database.

// replicaCacheTTL is session.cache_ttl in the two-process test: the longest
// B may serve a session signed out on A (its NOTIFY normally ends it at
// once), short enough to wait for.
const replicaCacheTTL = 2 * time.Second

// replicaDirectory: six users in overlapping groups, so that concurrent
// first sign-ins on both replicas race to create the same teams. Three
// groups are assigned to the app (they become teams at the first sign-in);
// Marketing is not.
func replicaDirectory() fakeentra.Directory {
	d := fakeentra.Directory{
		Groups: []fakeentra.Group{
			{ID: "eng", DisplayName: "Engineering"}, {ID: "ds", DisplayName: "Data Science"},
			{ID: "ops", DisplayName: "Operations"}, {ID: "mkt", DisplayName: "Marketing"},
		},
		AppAssignments: []string{"eng", "ds", "ops"},
	}
	for i, groups := range [][]string{{"eng", "ds", "mkt"}, {"eng"}, {"ds"}, {"eng", "ds"}, {"ops", "mkt"}, {"eng", "ops"}} {
		n := i + 1
		d.Users = append(d.Users, fakeentra.User{ID: fmt.Sprintf("user-%d-oid", n), DisplayName: fmt.Sprintf("User %d", n),
			Mail: fmt.Sprintf("User%d@Example.com", n), UPN: fmt.Sprintf("user%d@example.com", n), MemberOf: groups})
	}
	return d
}

// wantedOps lists the LiteLLM operations the first sign-in of every user
// in d must cause, each once: user_new per user, team_new per assigned
// group, member_add per user and assigned group. Keys are opKey's.
func wantedOps(d fakeentra.Directory) []string {
	assigned := map[string]bool{}
	var want []string
	for _, g := range d.AppAssignments {
		assigned[g] = true
		want = append(want, litellm.Path(litellm.KindTeamNew)+" "+g+" ")
	}
	for _, u := range d.Users {
		want = append(want, litellm.Path(litellm.KindUserNew)+"  "+u.ID)
		for _, g := range u.MemberOf {
			if assigned[g] {
				want = append(want, litellm.Path(litellm.KindMemberAdd)+" "+g+" "+u.ID)
			}
		}
	}
	slices.Sort(want)
	return want
}

// opKey names a management call by path, team and user, read from its body.
func opKey(r litellmfake.Request) string {
	var b struct {
		TeamID string `json:"team_id"`
		UserID string `json:"user_id"`
		Member struct {
			UserID string `json:"user_id"`
		} `json:"member"`
	}
	_ = json.Unmarshal(r.Body, &b)
	if b.UserID == "" {
		b.UserID = b.Member.UserID
	}
	return r.Path + " " + b.TeamID + " " + b.UserID
}

// checkProvisionedOnce checks that LiteLLM received every wanted operation
// exactly once, counted both per (path, team, user) and per request body,
// that every call succeeded, and that nothing else was called.
func checkProvisionedOnce(t *testing.T, fake *litellmfake.Server, want []string) {
	t.Helper()
	perKey, perBody := map[string]int{}, map[string]int{}
	for _, r := range fake.Requests() {
		if r.Status != http.StatusOK {
			t.Errorf("%s %s answered %d: %s", r.Method, r.Path, r.Status, r.Body)
		}
		perKey[opKey(r)]++
		perBody[r.Path+" "+string(r.Body)]++
	}
	for k, n := range perBody {
		if n != 1 {
			t.Errorf("LiteLLM received %d times: %s", n, k)
		}
	}
	got := make([]string, 0, len(perKey))
	for k, n := range perKey {
		if n != 1 {
			t.Errorf("LiteLLM received %q %d times, want once", k, n)
		}
		got = append(got, k)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("LiteLLM received\n  %q\nwant\n  %q", got, want)
	}
}

// waitOutboxEmpty waits until no operation is pending or parked. Both
// replicas' workers are running; the wait is bounded generously for a
// loaded machine, as a hang guard rather than a timing assertion.
func waitOutboxEmpty(t *testing.T, st store.Store, procs ...*process) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		pending, parked, err := st.OutboxStats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if parked != 0 {
			t.Fatalf("%d operations parked", parked)
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			var logs strings.Builder
			for _, p := range procs {
				logs.WriteString(p.logs.String())
			}
			t.Fatalf("%d operations still pending after 60s; logs:\n%s", pending, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var deliveredLine = regexp.MustCompile(`"msg":"outbox: delivered"|msg="outbox: delivered"`)

// deliveries counts the operations a process logged as delivered.
func (p *process) deliveries() int {
	return len(deliveredLine.FindAllStringIndex(p.logs.String(), -1))
}

// signedIn reports whether p logged the sign-in of user (its OIDC callback
// and reconcile ran there).
func (p *process) signedIn(user string) bool {
	return regexp.MustCompile(`"msg":"signed in"[^\n]*"user_id":"` + regexp.QuoteMeta(user) + `"`).MatchString(p.logs.String())
}

// signInAll signs every user in at once, alternating between the
// processes, each in its own cookie jar. publicURL is server.public_url
// (the same on every process).
func signInAll(t *testing.T, publicURL string, users []string, procs ...*process) {
	t.Helper()
	errs := make([]error, len(users))
	var wg sync.WaitGroup
	for i, u := range users {
		p := procs[i%len(procs)]
		wg.Go(func() { errs[i] = signInOnce(publicURL, p.url, u) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, p := range procs {
			t.Log(p.logs.String())
		}
		t.Fatal(err)
	}
	// Logs are flushed within 100ms; the deadline only guards against a hang.
	for i, u := range users {
		p := procs[i%len(procs)]
		for deadline := time.Now().Add(10 * time.Second); !p.signedIn(u); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s was not signed in by %s; its log:\n%s", u, p.url, p.logs.String())
			}
		}
	}
}

// signInOnce is browser.signIn returning errors, for use off the test's
// goroutine. Like a sticky load balancer, it sends whatever is addressed
// to publicURL to the process at base, so the OIDC callback (which Entra
// sends to public_url) and the reconcile it runs happen on that process.
func signInOnce(publicURL, base, userID string) error {
	jar, _ := cookiejar.New(nil)
	pub, _ := url.Parse(publicURL)
	to, _ := url.Parse(base)
	c := &http.Client{Jar: jar, Timeout: 60 * time.Second, Transport: stickyTransport{from: pub.Host, to: to.Host}}
	send := func(req *http.Request) (*http.Response, string, error) {
		req.Header.Set("Accept", "text/html")
		res, err := c.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		return res, string(body), err
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	res, body, err := send(req)
	if err != nil {
		return fmt.Errorf("%s: %w", userID, err)
	}
	m := formAction.FindStringSubmatch(body)
	if res.StatusCode != http.StatusOK || m == nil {
		return fmt.Errorf("%s: expected the sign-in page, got %d at %s", userID, res.StatusCode, res.Request.URL)
	}
	action, err := res.Request.URL.Parse(html.UnescapeString(m[1]))
	if err != nil {
		return err
	}
	form := url.Values{}
	for _, h := range hiddenIn.FindAllStringSubmatch(body, -1) {
		form.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	form.Set("fakeentra_user", userID)
	req, _ = http.NewRequest(http.MethodPost, action.String(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if res, body, err = send(req); err != nil {
		return fmt.Errorf("%s: %w", userID, err)
	}
	if res.StatusCode != http.StatusOK || (res.Request.URL.Host != pub.Host && res.Request.URL.Host != to.Host) || res.Request.URL.Path != "/" {
		return fmt.Errorf("sign-in of %s on %s ended with %d at %s: %.300s", userID, base, res.StatusCode, res.Request.URL, body)
	}
	return nil
}

// stickyTransport sends requests for host from to host to.
type stickyTransport struct{ from, to string }

func (s stickyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == s.from && s.from != s.to {
		req = req.Clone(req.Context())
		req.URL.Host, req.Host = s.to, s.from
	}
	return http.DefaultTransport.RoundTrip(req)
}

// withCookie sends a JSON-client GET carrying exactly this session cookie
// (not a jar's, which a sign-out would empty) and returns the status.
func withCookie(t *testing.T, rawURL string, ck *http.Cookie) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, rawURL, nil)
	req.Header.Set("Accept", "application/json")
	req.AddCookie(ck)
	res, _ := do(t, &http.Client{Timeout: 30 * time.Second}, req)
	return res.StatusCode
}

// sessionCookie is the session cookie br holds for base.
func sessionCookie(t *testing.T, br *browser, base string) *http.Cookie {
	t.Helper()
	u, _ := url.Parse(base)
	for _, ck := range br.client.Jar.Cookies(u) {
		if ck.Name == gateway.DefaultCookieName {
			return &http.Cookie{Name: ck.Name, Value: ck.Value}
		}
	}
	t.Fatalf("no %s cookie for %s", gateway.DefaultCookieName, base)
	return nil
}

// verifyAt checks an assertion against the JWKS published at base (a
// different replica than the one that signed it) and that it names user.
func verifyAt(t *testing.T, base, issuer, audience, jwt, user string) {
	t.Helper()
	v := assertiontest.Verifier{JWKSURL: base + gateway.JWKSPath, Issuer: issuer, Audience: audience}
	got, err := v.Verify(t.Context(), jwt)
	if err != nil {
		t.Fatalf("assertion does not verify against %s's JWKS: %v", base, err)
	}
	if got.Subject != user || got.UserID != user {
		t.Errorf("assertion sub %q user_id %q, want %q", got.Subject, got.UserID, user)
	}
}
