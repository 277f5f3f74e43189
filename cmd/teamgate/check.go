package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/teamgate/teamgate/sync/graph"
	"github.com/teamgate/teamgate/sync/store"
)

// cmdCheck validates the config and tries every dependency, printing one
// line per check with the fix when it fails.
func cmdCheck(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", "check [--config FILE]", stderr)
	path := fs.String("config", "config.yaml", "config file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*path, getenv)
	if err != nil {
		fmt.Fprintf(stdout, "FAIL  config: %v\n", err)
		return errors.New("check failed")
	}
	fmt.Fprintf(stdout, "ok    config: %s is valid\n", *path)
	return runChecks(ctx, cfg, &http.Client{Timeout: 15 * time.Second}, stdout)
}

type checkResult struct {
	name, detail, fix string
	err               error
}

func runChecks(ctx context.Context, cfg Config, hc *http.Client, stdout io.Writer) error {
	var results []checkResult
	results = append(results, checkDiscovery(ctx, cfg.Entra, hc))

	gc, err := graph.New(graphConfig(cfg.Entra), graph.WithHTTPClient(hc))
	if err != nil {
		results = append(results, checkResult{name: "graph client", err: err, fix: "correct the entra section"})
	} else {
		tok := checkResult{name: "app token"}
		if _, err := gc.Token(ctx); err != nil {
			tok.err = err
			tok.fix = "check entra.tenant_id, entra.client_id and entra.client_secret (secrets expire: create a new one under Certificates & secrets)"
		} else {
			tok.detail = "client credentials accepted by " + cfg.Entra.AuthorityHost
		}
		results = append(results, tok)
		if tok.err == nil {
			results = append(results, checkAppGroups(ctx, gc, cfg.Entra))
			if cfg.Sync.Interval > 0 {
				results = append(results, checkGroupsDelta(ctx, gc, cfg))
			}
		}
	}

	db := checkResult{name: "database"}
	if st, err := store.Open(ctx, cfg.Database.URL, cfg.Database.Options()...); err != nil {
		db.err, db.fix = err, "check database.url"
	} else {
		if err := st.Ping(ctx); err != nil {
			db.err, db.fix = err, "make sure the database server is running and reachable from here"
		} else {
			db.detail = fmt.Sprintf("%s (%s) answers", store.RedactURL(cfg.Database.URL), st.Dialect())
		}
		st.Close()
	}
	results = append(results, db)
	results = append(results, checkLiteLLM(ctx, cfg)...)

	failed := 0
	for _, r := range results {
		if r.err != nil {
			failed++
			fmt.Fprintf(stdout, "FAIL  %s: %v\n", r.name, r.err)
			if r.fix != "" {
				fmt.Fprintf(stdout, "      fix: %s\n", r.fix)
			}
			continue
		}
		fmt.Fprintf(stdout, "ok    %s: %s\n", r.name, r.detail)
	}
	if failed > 0 {
		return fmt.Errorf("check failed: %d of %d checks", failed, len(results)+1)
	}
	return nil
}

func checkDiscovery(ctx context.Context, e EntraConfig, hc *http.Client) checkResult {
	r := checkResult{name: "OIDC discovery", fix: "check entra.authority_host and entra.tenant_id (the Directory (tenant) ID on the app registration's Overview page)"}
	issuer := issuerURL(e)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, issuer+"/.well-known/openid-configuration", nil)
	if err != nil {
		r.err = err
		return r
	}
	res, err := hc.Do(req)
	if err != nil {
		r.err = err
		return r
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		r.err = fmt.Errorf("%s answered %s", req.URL, res.Status)
		return r
	}
	var doc struct {
		Issuer string `json:"issuer"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&doc); err != nil {
		r.err = fmt.Errorf("discovery document: %w", err)
		return r
	}
	if doc.Issuer != issuer {
		r.err = fmt.Errorf("issuer is %q, want %q", doc.Issuer, issuer)
		r.fix = "use your tenant id in entra.tenant_id, not common or organizations (teamgate is single-tenant)"
		return r
	}
	r.detail, r.fix = "issuer "+issuer, ""
	return r
}

// checkGroupsDelta proves the background sync may read group deltas.
func checkGroupsDelta(ctx context.Context, gc *graph.Client, cfg Config) checkResult {
	r := checkResult{name: "group delta (background sync)"}
	if err := gc.ProbeGroupsDelta(ctx); err != nil {
		r.err = err
		var pe *graph.PermissionError
		if errors.As(err, &pe) {
			r.fix = "grant the application permission " + pe.Permission + " to the app registration and click \"Grant admin consent\", or set sync.interval: 0 to turn background sync off"
		} else {
			r.fix = "try again; if it persists check that " + cfg.Entra.GraphURL + " is reachable"
		}
		return r
	}
	r.detail = fmt.Sprintf("GET /groups/delta answers; runs every %s", cfg.Sync.Interval)
	return r
}

func checkAppGroups(ctx context.Context, gc *graph.Client, e EntraConfig) checkResult {
	r := checkResult{name: "app groups"}
	if e.ServicePrincipalID == "" {
		r.detail = "entra.service_principal_id is empty: every group of a user becomes a team"
		return r
	}
	groups, err := gc.AppGroups(ctx)
	if err != nil {
		r.err = err
		var pe *graph.PermissionError
		var ae *graph.APIError
		switch {
		case errors.As(err, &pe):
			r.fix = "grant the application permission " + pe.Permission + " to the app registration and click \"Grant admin consent\""
		case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
			r.fix = "entra.service_principal_id must be the Object ID shown on the Enterprise App's Overview page (not the app registration's)"
		default:
			r.fix = "try again; if it persists check that " + e.GraphURL + " is reachable"
		}
		return r
	}
	r.detail = fmt.Sprintf("%d groups assigned to the Enterprise App", len(groups))
	return r
}
