package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/teamgate/teamgate/sync/fakeentra"
)

// Users sign in through the real OIDC flow: teamgate's /oauth2/start, the
// fake tenant's authorize endpoint (whose login_hint signs the user in
// without the account picker), teamgate's callback (code redemption with
// PKCE, ID token checks, the Graph reads and reconcile of the user's
// teams, the session) — every step a browser would take.

const (
	sessionCookie = "teamgate_session" // session.cookie_name's default
	signedInPath  = "/bench/signed-in" // where sign-in returns to; never requested
	benchGroups   = 20
)

// entraSettings is what a teamgate config needs to know about the tenant.
type entraSettings struct {
	tenantID, clientID, clientSecret            string
	authorityHost, graphURL, servicePrincipalID string
}

// tenant is the fake Entra tenant, served from the harness process.
type tenant struct {
	settings entraSettings
	srv      *http.Server
}

// benchUserID is the object id of the i-th user of the bench directory.
func benchUserID(i int) string { return fmt.Sprintf("b0000000-0000-4000-8000-%012d", i) }

// benchDirectory has users users and benchGroups groups, all assigned to
// the app; each user is in three of them, so every sign-in reconciles
// three memberships and the groups header carries three team ids.
func benchDirectory(users int) fakeentra.Directory {
	var d fakeentra.Directory
	for g := 0; g < benchGroups; g++ {
		id := fmt.Sprintf("b0000000-0000-4000-9000-%012d", g)
		d.Groups = append(d.Groups, fakeentra.Group{ID: id, DisplayName: fmt.Sprintf("Bench Team %02d", g)})
		d.AppAssignments = append(d.AppAssignments, id)
	}
	for i := 0; i < users; i++ {
		upn := fmt.Sprintf("user%05d@bench.example", i)
		d.Users = append(d.Users, fakeentra.User{
			ID: benchUserID(i), DisplayName: fmt.Sprintf("Bench User %05d", i), Mail: upn, UPN: upn,
			MemberOf: []string{d.Groups[i%benchGroups].ID, d.Groups[(i+7)%benchGroups].ID, d.Groups[(i+13)%benchGroups].ID},
		})
	}
	return d
}

func startTenant(users int) (*tenant, error) {
	s := entraSettings{
		tenantID: "b0000000-0000-4000-8000-00000000e17a", clientID: "b0000000-0000-4000-8000-0000000c11e7",
		clientSecret: randomHex(24), servicePrincipalID: "b0000000-0000-4000-8000-000000005b1d",
	}
	ft, err := fakeentra.New(fakeentra.Config{
		TenantID: s.tenantID, ClientID: s.clientID, ClientSecret: s.clientSecret,
		ServicePrincipalID: s.servicePrincipalID, Directory: benchDirectory(users),
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ft.SetBaseURL("http://" + ln.Addr().String())
	s.authorityHost, s.graphURL = ft.AuthorityHost(), ft.GraphURL()
	t := &tenant{settings: s, srv: &http.Server{Handler: ft, ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = t.srv.Serve(ln) }()
	return t, nil
}

func (t *tenant) close() { _ = t.srv.Close() }

// signInTransport is shared by all sign-ins so that they reuse connections
// like browsers on a warm network would.
var signInTransport = &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 256}

// signIn runs the whole flow for one user and returns the session cookie's
// value and how long the flow took.
func signIn(ctx context.Context, gateway, userID string) (string, time.Duration, error) {
	jar, _ := cookiejar.New(nil)
	client := &http.Client{
		Transport: signInTransport, Jar: jar, Timeout: 2 * time.Minute,
		// Stop at teamgate's redirect back to rd: the session cookie is set by then.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Path == signedInPath {
				return http.ErrUseLastResponse
			}
			if len(via) > 10 {
				return errors.New("too many redirects")
			}
			return nil
		},
	}
	start := time.Now()
	u := gateway + "/oauth2/start?" + url.Values{"rd": {signedInPath}, "login_hint": {userID}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Accept", "text/html")
	res, err := client.Do(req)
	if err != nil {
		return "", 0, err
	}
	body, _ := io.ReadAll(io.LimitReader(res.Body, 600))
	res.Body.Close()
	took := time.Since(start)
	for _, c := range res.Cookies() {
		if c.Name == sessionCookie && c.Value != "" && res.StatusCode == http.StatusFound {
			return c.Value, took, nil
		}
	}
	return "", took, fmt.Errorf("sign-in of %s ended with %d at %s: %.300s", userID, res.StatusCode, res.Request.URL.Path, body)
}

// signInAll signs in every user with at most concurrency flows at once and
// returns the cookies in the order of ids, each flow's duration and the
// wall time of the whole batch.
func signInAll(ctx context.Context, gateway string, ids []string, concurrency int) ([]string, []time.Duration, time.Duration, error) {
	cookies := make([]string, len(ids))
	took := make([]time.Duration, len(ids))
	errs := make([]error, len(ids))
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < min(concurrency, len(ids)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				cookies[i], took[i], errs[i] = signIn(ctx, gateway, ids[i])
			}
		}()
	}
	for i := range ids {
		next <- i
	}
	close(next)
	wg.Wait()
	wall := time.Since(start)
	failed := slices.DeleteFunc(slices.Clone(errs), func(e error) bool { return e == nil })
	if len(failed) > 0 {
		return nil, took, wall, fmt.Errorf("%d of %d sign-ins failed; first: %w", len(failed), len(ids), failed[0])
	}
	return cookies, took, wall, nil
}
