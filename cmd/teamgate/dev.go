package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/teamgate/teamgate/sync/fakeentra"
	"github.com/teamgate/teamgate/sync/litellmfake"
)

// Fixed identifiers of the dev tenant, so a dev database stays consistent
// across runs.
const (
	devTenantID = "00000000-0000-4000-8000-00000000d3e0"
	devClientID = "00000000-0000-4000-8000-0000000c11e7"
	devSPID     = "00000000-0000-4000-8000-000000005b1d"
)

// devAdminGroup is the demo directory's administrators group.
var devAdminGroup = fakeentra.DemoID(fakeentra.DemoAdminGroup)

// cmdDev runs the whole flow on one machine: a fake Entra tenant, SQLite and
// (unless --upstream is given) a demo upstream that shows what it receives.
func cmdDev(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := newFlagSet("dev", "dev [flags]", stderr)
	listen := fs.String("listen", "127.0.0.1:4180", "address of the gateway")
	publicURL := fs.String("public-url", "", "URL the browser uses (default: http://localhost:PORT)")
	upstream := fs.String("upstream", "", "upstream URL (default: a built-in demo upstream)")
	dbURL := fs.String("db", "sqlite:teamgate-dev.db", "database URL")
	dirFile := fs.String("directory", "", "YAML file with the fake tenant's users and groups (default: a demo directory)")
	signInPage := fs.Bool("sign-in-page", false, "show teamgate's sign-in page to signed-out browsers (server.sign_in_page)")
	litellmFake := fs.Bool("litellm-fake", false, "run a fake LiteLLM in-process as the upstream (unless --upstream) and provision teams into it")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *litellmFake && !flagGiven(fs, "db") {
		// The fake LiteLLM forgets everything at exit; a database that
		// remembered the teams would never provision them again.
		*dbURL = "sqlite::memory:"
	}

	dir := fakeentra.DemoDirectory()
	if *dirFile != "" {
		var err error
		if dir, err = fakeentra.LoadDirectory(*dirFile); err != nil {
			return fmt.Errorf("--directory: %w", err)
		}
	}
	d, err := startDev(ctx, devOptions{
		listen: *listen, publicURL: *publicURL, upstream: *upstream, dbURL: *dbURL, directory: dir,
		litellmFake: *litellmFake, signInPage: *signInPage,
	}, stderr)
	if err != nil {
		return err
	}
	defer d.close()
	d.printWelcome(stdout)
	return d.wait(ctx)
}

type devOptions struct {
	listen, publicURL, upstream, dbURL string
	directory                          fakeentra.Directory
	adminToken                         string
	signInPage                         bool // server.sign_in_page
	litellmFake                        bool // serve a fake LiteLLM and provision into it
}

// devEnv is a running dev setup: gateway, fake tenant and demo upstream.
type devEnv struct {
	app        *app
	tenant     *fakeentra.Tenant
	gwLn       net.Listener
	servers    []*http.Server
	publicURL  string
	upstream   string
	adminToken string
	users      []fakeentra.User
	errc       chan error
	litellm    *litellmfake.Server // with --litellm-fake
	litellmURL string
}

func startDev(ctx context.Context, o devOptions, logw io.Writer) (*devEnv, error) {
	d := &devEnv{errc: make(chan error, 3), adminToken: o.adminToken, users: o.directory.Users}
	if d.adminToken == "" {
		d.adminToken = randomToken(24)
	}
	clientSecret := randomToken(32)

	// The fake tenant gets its own loopback port, like a real IdP on another origin.
	entraLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	entraURL := "http://" + entraLn.Addr().String()
	d.tenant, err = fakeentra.New(fakeentra.Config{
		TenantID: devTenantID, ClientID: devClientID, ClientSecret: clientSecret,
		ServicePrincipalID: devSPID, Directory: o.directory,
	})
	if err != nil {
		entraLn.Close()
		return nil, err
	}
	d.tenant.SetBaseURL(entraURL)
	d.goServe(&http.Server{Handler: d.tenant, ReadHeaderTimeout: 10 * time.Second}, entraLn)

	d.upstream = o.upstream
	if o.litellmFake {
		url, err := d.startLiteLLMFake()
		if err != nil {
			d.close()
			return nil, err
		}
		if d.upstream == "" {
			d.upstream = url
		}
	}
	if d.upstream == "" {
		upLn, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			d.close()
			return nil, err
		}
		d.upstream = "http://" + upLn.Addr().String()
		d.goServe(&http.Server{Handler: demoUpstream(), ReadHeaderTimeout: 10 * time.Second}, upLn)
	}

	if d.gwLn, err = net.Listen("tcp", o.listen); err != nil {
		d.close()
		return nil, fmt.Errorf("--listen: %w", err)
	}
	d.publicURL = o.publicURL
	if d.publicURL == "" {
		_, port, _ := net.SplitHostPort(d.gwLn.Addr().String())
		d.publicURL = "http://localhost:" + port
	}

	cfg := defaultConfig()
	cfg.Server.Listen = d.gwLn.Addr().String()
	cfg.Server.PublicURL = d.publicURL
	cfg.Upstream.URL = d.upstream
	if cfg.Session.Secret, err = devSessionSecret(o.dbURL); err != nil {
		d.close()
		return nil, err
	}
	cfg.Admin.APIToken = d.adminToken
	// Members of the demo directory's "teamgate admins" group (alice) may
	// open the admin pages; a --directory without that group has none.
	cfg.Admin.GroupIDs = []string{devAdminGroup}
	cfg.Server.SignInPage = o.signInPage
	cfg.Entra.TenantID, cfg.Entra.ClientID, cfg.Entra.ClientSecret = devTenantID, devClientID, clientSecret
	cfg.Entra.AuthorityHost, cfg.Entra.GraphURL = d.tenant.AuthorityHost(), d.tenant.GraphURL()
	cfg.Entra.ServicePrincipalID = devSPID
	cfg.Database.URL = o.dbURL
	if d.litellm != nil {
		cfg.LiteLLM.URL, cfg.LiteLLM.MasterKey = d.litellmURL, devMasterKey
	}
	cfg.Log = LogConfig{Level: "info", Format: "text"}
	if err := cfg.Validate(); err != nil {
		d.close()
		return nil, err
	}
	d.app, err = newApp(ctx, cfg, newLogger(cfg.Log, logw), appOptions{})
	if err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

func (d *devEnv) goServe(srv *http.Server, ln net.Listener) {
	d.servers = append(d.servers, srv)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.errc <- err
		}
	}()
}

// wait serves the gateway until ctx ends or a helper server fails.
func (d *devEnv) wait(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	gwErr := make(chan error, 1)
	go func() { gwErr <- d.app.serve(ctx, "", d.gwLn) }()
	select {
	case err := <-d.errc:
		cancel()
		<-gwErr
		return err
	case err := <-gwErr:
		return err
	}
}

func (d *devEnv) close() {
	for _, s := range d.servers {
		s.Close()
	}
	if d.app != nil {
		d.app.Close()
	}
}

func (d *devEnv) printWelcome(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nteamgate dev is running.\n\n  Open %s/ and pick a demo user.\n\n", d.publicURL)
	fmt.Fprintf(&b, "  Fake Entra tenant: %s\n  Upstream:          %s\n", d.tenant.AuthorityHost(), d.upstream)
	fmt.Fprintf(&b, "  Admin API:         curl -H 'Authorization: Bearer %s' %s/teamgate/api/teams\n\n", d.adminToken, d.publicURL)
	b.WriteString(d.litellmWelcome())
	fmt.Fprintf(&b, "  Your account:      %s/teamgate/me (teams, default team, last sync, sign-out)\n", d.publicURL)
	fmt.Fprintf(&b, "  Admin pages:       %s/teamgate/admin (teams, members, users, sync log)\n\n", d.publicURL)
	fmt.Fprintf(&b, "  Demo users:\n")
	for _, u := range d.users {
		admin := ""
		if slices.Contains(u.MemberOf, devAdminGroup) {
			admin = "  (admin: in group \"teamgate admins\", listed in admin.group_ids)"
		}
		fmt.Fprintf(&b, "    %-28s %s%s\n", u.UPN, u.DisplayName, admin)
	}
	fmt.Fprintf(&b, "\nPress Ctrl+C to stop.\n")
	io.WriteString(w, b.String())
}

func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// devSessionSecret keeps the dev session secret in a file next to a SQLite
// dev database (PATH.secret, mode 0600), so that sessions and the stored
// assertion signing key (sealed with it) survive a restart of `teamgate
// dev`. Other databases get a fresh secret per run.
func devSessionSecret(dbURL string) (string, error) {
	path, ok := strings.CutPrefix(dbURL, "sqlite:")
	path = strings.TrimPrefix(path, "//")
	if !ok || path == "" || strings.HasPrefix(path, ":memory:") || strings.Contains(path, "mode=memory") {
		return randomToken(48), nil
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	file := path + ".secret"
	if b, err := os.ReadFile(file); err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return strings.TrimSpace(string(b)), nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("dev session secret %s: %w", file, err)
	}
	secret := randomToken(48)
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("dev session secret %s: %w", file, err)
	}
	return secret, nil
}
