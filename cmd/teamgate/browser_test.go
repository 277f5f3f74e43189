package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/teamgate/teamgate/sync/fakeentra"
	"github.com/teamgate/teamgate/sync/store"
)

// The browser test walks teamgate's pages in a real, headless Chromium:
// sign-in through the fake Entra's HTML picker, /teamgate/me, choosing a
// default team, the admin pages, a non-admin's 403, sign-out (and another
// site's sign-out link, which only gets a confirmation page), the sign-in
// landing page and every error page a user can meet, each with its request
// id. It saves a screenshot of every page it
// visits in $TEAMGATE_SCREENSHOTS, else testdata/screenshots (ignored by
// git), one folder per database backend.
//
// Without Chromium the test skips; with TEAMGATE_REQUIRE_BROWSER=1 (as
// .ci/run sets) it fails instead.

const (
	envRequireBrowser = "TEAMGATE_REQUIRE_BROWSER"
	envScreenshots    = "TEAMGATE_SCREENSHOTS"
	envChromium       = "TEAMGATE_CHROMIUM" // an explicit browser binary
)

// chromiumPath finds a Chromium or Chrome binary, or skips (or fails) the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv(envChromium), "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	msg := "browser test skipped: no Chromium found; install it with `apt-get update && apt-get install -y chromium` " +
		"(or set " + envChromium + " to a Chrome binary)"
	if os.Getenv(envRequireBrowser) != "" {
		t.Fatal(strings.Replace(msg, "skipped", "required by "+envRequireBrowser, 1))
	}
	t.Skip(msg)
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile, for the life
// of the test.
func newBrowser(t *testing.T, path string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	quiet := func(string, ...any) {} // Chromium's protocol chatter; failures come back as errors
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(quiet), chromedp.WithErrorf(quiet))
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // start the browser without a deadline (see API.md, example 21)
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// tab drives one browser context (its own cookies) and saves screenshots.
type tab struct {
	t    *testing.T
	ctx  context.Context
	dir  string
	shot *int // shared numbering across tabs
}

func (b *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// open navigates and waits for the page to load.
func (b *tab) open(rawURL string) { b.t.Helper(); b.do("open "+rawURL, chromedp.Navigate(rawURL)) }

// click clicks what sel selects and waits for the page it leads to (after
// any redirects) to load.
func (b *tab) click(sel chromedp.CSS) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(sel))); err != nil {
		b.t.Fatalf("click %s: %v", sel, err)
	}
}

// text is what the page shows. It is read with script rather than a DOM
// query: right after a cross-origin redirect chain, chromedp's node ids can
// lag behind the new document.
func (b *tab) text() string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		b.t.Fatalf("read page text: %v", err)
	}
	return s
}

func (b *tab) location() *url.URL {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	u, err := url.Parse(s)
	if err != nil {
		b.t.Fatal(err)
	}
	return u
}

// want fails unless the page shows every text.
func (b *tab) want(texts ...string) {
	b.t.Helper()
	body := b.text()
	for _, s := range texts {
		if !strings.Contains(body, s) {
			b.t.Errorf("%s does not show %q:\n%.1500s", b.location(), s, body)
		}
	}
}

// requestID is the id the page's footer shows ("" when it shows none).
func (b *tab) requestID() string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`(document.querySelector("footer.meta code") || {}).textContent || ""`))
	if err != nil {
		b.t.Fatalf("read the request id: %v", err)
	}
	return s
}

// page checks what the page shows, that it quotes a request id, and saves
// its screenshot.
func (b *tab) page(name string, texts ...string) {
	b.t.Helper()
	b.want(append(texts, "Request ID")...)
	if id := b.requestID(); len(id) < 8 {
		b.t.Errorf("%s (%s) shows no request id (%q)", b.location(), name, id)
	}
	b.screenshot(name)
}

// screenshot saves the whole page as NN-name.png.
func (b *tab) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	*b.shot++
	path := filepath.Join(b.dir, fmt.Sprintf("%02d-%s.png", *b.shot, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// screenshotPhone saves rawURL as a phone shows it (390 px wide), from a
// tab of its own in the same browser context, so that the emulation does
// not outlive the screenshot.
func (b *tab) screenshotPhone(name, rawURL string) {
	b.t.Helper()
	phoneCtx, cancel := chromedp.NewContext(b.ctx)
	defer cancel()
	phone := &tab{t: b.t, ctx: phoneCtx, dir: b.dir, shot: b.shot}
	phone.do("open "+rawURL+" on a phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(rawURL))
	phone.screenshot(name)
}

func screenshotDir(t *testing.T, backend string) string {
	t.Helper()
	root := os.Getenv(envScreenshots)
	if root == "" {
		root = filepath.Join("testdata", "screenshots")
	}
	dir := filepath.Join(root, backend)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old, _ := filepath.Glob(filepath.Join(dir, "*.png"))
	for _, f := range old {
		_ = os.Remove(f)
	}
	return dir
}

func TestBrowserWalkthrough(t *testing.T) {
	browser := newBrowser(t, chromiumPath(t)) // one browser; each backend gets fresh browser contexts
	forEachBackend(t, func(t *testing.T, st store.Store) {
		aliceCtx, cancelAlice := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
		defer cancelAlice()
		ctx, cancel := context.WithTimeout(aliceCtx, 3*time.Minute)
		defer cancel()
		shots := 0
		dir := screenshotDir(t, st.Dialect())
		adminGroup := fakeentra.DemoID(fakeentra.DemoAdminGroup)
		e := startE2E(t, st, e2eOptions{tweak: func(c *Config) { c.Admin.GroupIDs = []string{adminGroup} }})
		gw := e.gw.URL

		alice := &tab{t: t, ctx: ctx, dir: dir, shot: &shots}
		bobCtx, cancelBob := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
		defer cancelBob()
		bobCtx, cancelBobT := context.WithTimeout(bobCtx, 3*time.Minute)
		defer cancelBobT()
		bob := &tab{t: t, ctx: bobCtx, dir: dir, shot: &shots}

		// Full sign-in: teamgate sends the browser to the fake Entra's
		// picker; picking alice comes back through the callback to the
		// upstream page first asked for.
		alice.open(gw + "/ui/?page=1")
		if loc := alice.location(); !strings.HasPrefix(loc.String(), e.tenant.AuthorityHost()) {
			t.Fatalf("a signed-out browser is at %s, want the fake Entra sign-in page", loc)
		}
		alice.want("Alice Adams", "Bob Brown")
		alice.screenshot("entra-sign-in-picker")
		alice.click(chromedp.CSS(`button[value="` + id("alice") + `"]`))
		if loc := alice.location(); loc.Host != e.gw.Listener.Addr().String() || loc.RequestURI() != "/ui/?page=1" {
			t.Fatalf("after sign-in the browser is at %s, want %s/ui/?page=1", loc, gw)
		}
		alice.want(`"path":"/ui/"`)
		alice.screenshot("upstream-after-sign-in")
		wantHeaders(t, e.upstream.last(t).Header, map[string]string{
			"X-Forwarded-User":  id("alice"),
			"X-LiteLLM-Team-Id": id("data-science"), // the first of her teams by name
		})

		// /teamgate/me lists her teams and which one requests act for.
		alice.open(gw + "/teamgate/me")
		alice.want("Alice Adams", "alice@example.com", id("alice"), "internal_user", "teamgate administrator",
			"Data Science", "Engineering", "Requests you send through teamgate act for Data Science",
			"$100.00", "30d", "gpt-3.5-turbo", "Last sync", "Request ID")
		alice.screenshot("me")
		alice.screenshotPhone("me-phone", gw+"/teamgate/me")

		// Keyboard focus is visible: Tab from the top of /teamgate/me goes
		// through the skip link and the top bar to the default-team form,
		// and each focused element draws an outline (browser_focus_test.go).
		alice.open(gw + "/teamgate/me")
		alice.tabUntil(`form[action="/teamgate/me/default-team"] button[type="submit"]`, 10)

		// Choosing a default team changes the team the upstream is told.
		alice.do("choose Engineering", chromedp.SetValue(chromedp.ID("team_id"), id("engineering")))
		alice.click(chromedp.CSS(`form[action="/teamgate/me/default-team"] button[type="submit"]`))
		alice.want("Saved. Your requests now act for Engineering", "the default team you chose")
		alice.screenshot("me-default-team-saved")
		alice.open(gw + "/v1/models")
		if got := e.upstream.last(t).Header.Get("X-LiteLLM-Team-Id"); got != id("engineering") {
			t.Errorf("after choosing Engineering the upstream got X-LiteLLM-Team-Id %q, want %q", got, id("engineering"))
		}

		// Bob, in his own browser context, is no admin.
		bob.open(gw + "/")
		bob.click(chromedp.CSS(`button[value="` + id("bob") + `"]`))
		bob.open(gw + "/teamgate/admin")
		bob.want("Administrators only", "Status 403", "Back to my teams")
		bob.screenshot("admin-forbidden-for-non-admin")
		bob.open(gw + "/teamgate/me")
		bob.want("Platform")
		if linked, err := chromedp.Run(bob.ctx, chromedp.Evaluate[bool](`!!document.querySelector('a[href="/teamgate/admin"]')`)); err != nil || linked {
			t.Errorf("bob's page links to the admin pages (%v)", err)
		}

		// Alice, in the administrators group, sees every team the sync
		// created from the groups assigned to the app, page by page.
		alice.open(gw + "/teamgate/admin")
		alice.want("Teams", "All Staff", "Data Science", "Engineering", "Finance", "Platform", "Project 001",
			"1–50 of 255 teams", "assigned")
		alice.screenshot("admin-teams")
		alice.screenshotPhone("admin-teams-phone", gw+"/teamgate/admin?q=project+00")
		alice.click(chromedp.CSS(`a[rel="next"]`))
		alice.want("51–100 of 255 teams", "Project 046")
		alice.open(gw + "/teamgate/admin?q=project+24")
		alice.want("Project 240", "Project 249", "10 teams")
		alice.screenshot("admin-teams-search")

		// A team's members, and a manual member added and removed.
		alice.open(gw + "/teamgate/admin?q=engineering")
		alice.click(chromedp.CSS(`tbody a`))
		alice.want("Engineering", "Members", "Alice Adams", "Entra group")
		alice.do("type bob", chromedp.SendKeys(chromedp.ID("user"), "bob@example.com"))
		alice.click(chromedp.CSS(`form[action="/teamgate/admin/members/add"] button[type="submit"]`))
		alice.want("Added bob.brown@example.com as a manual member.", "Bob Brown", "manual") // found by UPN, shown by mail
		alice.screenshot("admin-team-member-added")
		alice.click(chromedp.CSS(`button[aria-label="Remove Bob Brown from the team"]`))
		alice.page("admin-team-member-removed", "Removed bob.brown@example.com from the team.", "Engineering", "Alice Adams")
		if strings.Contains(alice.text(), "Bob Brown") {
			t.Error("the team page still lists Bob Brown after his removal")
		}

		alice.open(gw + "/teamgate/admin/users")
		alice.want("alice@example.com", "bob.brown@example.com", "teamgate admin (group)")
		alice.screenshot("admin-users")

		// The sync log says what each sign-in changed, and the admin changes.
		alice.open(gw + "/teamgate/admin/events")
		alice.want("Sync log", "Teams created (255)", "Joined (2)", "admin change", "by alice@example.com")
		alice.screenshot("admin-sync-log")
		alice.do("filter admin changes", chromedp.SetValue(chromedp.ID("outcome"), "admin"))
		alice.click(chromedp.CSS(`form[action="/teamgate/admin/events"] button[type="submit"]`))
		if strings.Contains(alice.text(), "Teams created") {
			t.Error("the admin-changes filter still lists reconciles")
		}
		alice.want("2 events")
		alice.screenshot("admin-sync-log-filtered")

		// Sign-out ends the session and lands on the signed-out page.
		alice.open(gw + "/teamgate/me")
		alice.click(chromedp.CSS(`.top a[href="/oauth2/sign_out"]`))
		if loc := alice.location(); loc.Path != "/teamgate/signed-out" {
			t.Fatalf("after sign-out the browser is at %s", loc)
		}
		alice.want("You are signed out", "Sign in again", "Request ID")
		alice.screenshot("signed-out")
		alice.open(gw + "/teamgate/me")
		if loc := alice.location(); !strings.HasPrefix(loc.String(), e.tenant.AuthorityHost()) {
			t.Fatalf("after sign-out /teamgate/me is at %s, want the sign-in page", loc)
		}

		// Another site's link to the sign-out URL does not sign her out:
		// teamgate asks first, and her click on its form does.
		alice.click(chromedp.CSS(`button[value="` + id("alice") + `"]`))
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><title>Elsewhere</title><a id="out" href="%s/oauth2/sign_out">Win a prize</a>`, gw)
		}))
		defer evil.Close()
		evilURL := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1) // another site, not just another port
		alice.open(evilURL)
		alice.click(chromedp.CSS(`#out`))
		if loc := alice.location(); loc.Path != "/oauth2/sign_out" {
			t.Fatalf("the other site's link led to %s", loc)
		}
		alice.page("sign-out-confirm", "Sign out of teamgate?", "Another site sent you", "Stay signed in")
		alice.click(chromedp.CSS(`a.button.secondary`)) // "Stay signed in"
		alice.open(gw + "/teamgate/me")
		alice.want("Alice Adams", "My teams") // still signed in
		alice.open(evilURL)
		alice.click(chromedp.CSS(`#out`))
		alice.click(chromedp.CSS(`form[action="/oauth2/sign_out"] button[type="submit"]`))
		if loc := alice.location(); loc.Path != "/teamgate/signed-out" {
			t.Fatalf("after confirming the sign-out the browser is at %s", loc)
		}
		alice.want("You are signed out")

		// Error pages explain, in words, what the user can do, and quote a
		// request id.
		alice.open(gw + "/oauth2/callback?error=access_denied&error_description=" +
			url.QueryEscape("AADSTS50105: The signed in user is not assigned to a role for the application."))
		alice.page("error-not-assigned", "You are not assigned to this application", "Ask your administrator", "AADSTS50105")
		alice.open(gw + "/oauth2/callback?error=consent_required&error_description=" +
			url.QueryEscape("AADSTS65001: The user or administrator has not consented to use the application."))
		alice.page("error-consent-required", "The application has not been approved", "grant admin consent", "AADSTS65001", "Status 403")
		if strings.Contains(alice.text(), "has not consented") {
			t.Error("the consent page shows Entra's raw error_description")
		}
		alice.open(gw + "/oauth2/callback?state=stale&code=stale")
		alice.page("error-sign-in-link-expired", "Sign-in link expired or reused", "Start the sign-in again")
		alice.open(gw + "/teamgate/nothing-here")
		alice.page("error-not-found", "Page not found", "Status 404")

		// Microsoft Graph down while she signs in: no session, try again.
		e.tenant.FailNext("/memberOf", 20, http.StatusServiceUnavailable, "")
		alice.open(gw + "/teamgate/me")
		alice.click(chromedp.CSS(`button[value="` + id("alice") + `"]`))
		alice.page("error-entra-unavailable", "Microsoft Entra is unavailable", "Wait a moment and try again", "Status 503")
		drainFaults(e) // the retries stopped early; the next steps need a healthy tenant

		// The app lacks a Graph permission: the page asks for the
		// administrator (the log names the permission).
		e.tenant.FailNext("/memberOf", 1, http.StatusForbidden, "")
		alice.open(gw + "/teamgate/me")
		alice.click(chromedp.CSS(`button[value="` + id("alice") + `"]`))
		alice.page("error-missing-graph-permission", "teamgate lacks a permission", "Contact your administrator", "Status 502")
		if !strings.Contains(e.logs.String(), "missing application permission") {
			t.Error("the log does not name the missing permission")
		}

		// Her session ends (an administrator signs her out everywhere)
		// while a form is open: the form answers that the session expired.
		alice.open(gw + "/teamgate/me")
		alice.click(chromedp.CSS(`button[value="` + id("alice") + `"]`))
		alice.want("Requests you send through teamgate act for")
		revokeSessions(t, e, gw, id("alice"))
		alice.click(chromedp.CSS(`form[action="/teamgate/me/default-team"] button[type="submit"]`))
		alice.page("error-session-expired", "Your session has expired", "Sign in again, then make the change again", "Status 401")

		// A form from an earlier session of hers is refused as expired.
		alice.click(chromedp.CSS(`main a.button`)) // "Sign in again"
		alice.click(chromedp.CSS(`button[value="` + id("alice") + `"]`))
		if loc := alice.location(); loc.Path != "/teamgate/me" {
			t.Fatalf("after signing in again the browser is at %s, want /teamgate/me", loc)
		}
		func() { // another tab of hers signs out and in again: a new session
			other, cancel := chromedp.NewContext(alice.ctx)
			defer cancel()
			tab2 := &tab{t: t, ctx: other, dir: dir, shot: &shots}
			tab2.open(gw + "/oauth2/sign_out")
			tab2.open(gw + "/teamgate/me")
			tab2.click(chromedp.CSS(`button[value="` + id("alice") + `"]`))
			tab2.want("Requests you send through teamgate act for")
		}()
		alice.click(chromedp.CSS(`form[action="/teamgate/me/default-team"] button[type="submit"]`))
		alice.page("error-form-expired", "This form has expired", "reload the page", "Status 403")

		// A second replica with the sign-in page on and the service behind
		// it down.
		down := httptest.NewServer(http.NotFoundHandler())
		downURL := down.URL
		down.Close()
		e2 := startE2E(t, st, e2eOptions{tweak: func(c *Config) { c.Server.SignInPage = true; c.Upstream.URL = downURL }})
		// A browser context of its own: cookies are per host, not per port,
		// and both replicas share the session secret and database.
		carolCtx, cancelCarol := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
		defer cancelCarol()
		carolCtx, cancelCarolT := context.WithTimeout(carolCtx, 2*time.Minute)
		defer cancelCarolT()
		carol := &tab{t: t, ctx: carolCtx, dir: dir, shot: &shots}
		carol.open(e2.gw.URL + "/ui/")
		carol.page("sign-in-page", "Sign in to continue", "Sign in with Microsoft")
		carol.click(chromedp.CSS(`a.button`))
		carol.click(chromedp.CSS(`button[value="` + id("carol") + `"]`))
		if loc := carol.location(); loc.Path != "/ui/" {
			t.Errorf("after the sign-in page the browser is at %s, want /ui/", loc)
		}
		carol.page("error-upstream-unavailable", "Service unreachable", "Wait a moment and try again", "Status 502")
		// Her session ends: the sign-in page says why she signs in again.
		revokeSessions(t, e2, e2.gw.URL, id("carol"))
		carol.open(e2.gw.URL + "/ui/")
		carol.page("sign-in-page-session-expired", "Your session has expired", "Sign in with Microsoft")
		t.Logf("screenshots in %s", dir)
	})
}

// revokeSessions signs a user out everywhere through the admin API.
func revokeSessions(t *testing.T, e *e2e, gwURL, userID string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, gwURL+"/teamgate/api/users/"+userID+"/revoke-sessions", nil)
	req.Header.Set("Authorization", "Bearer "+e.adminTok)
	if res, body := do(t, http.DefaultClient, req); res.StatusCode != http.StatusOK {
		t.Fatalf("revoke-sessions: %d %s", res.StatusCode, body)
	}
}
