package main

import (
	"bytes"
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/teamgate/teamgate/gateway"
	"github.com/teamgate/teamgate/sync/store"
)

// Lint what can be linted without Docker: deploy/docker-compose.yaml, the
// config it mounts, the Dockerfile and the systemd unit.

func repoFile(t *testing.T, parts ...string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(append([]string{"..", ".."}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// envRefs lists the ${VAR} names in s (config.go's envRef), sorted, once each.
func envRefs(s string) []string {
	var out []string
	for _, m := range envRef.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return slices.Compact(out)
}

type composeService struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Ports       []string          `yaml:"ports"`
	Expose      []string          `yaml:"expose"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Healthcheck map[string]any    `yaml:"healthcheck"`
	StopGrace   string            `yaml:"stop_grace_period"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
}

// docker-compose.yaml: postgres, litellm and teamgate; only teamgate
// publishes a port; every variable it reads from .env is named in its
// header; teamgate gets every variable its config references, and that
// config (deploy/teamgate.yaml) loads and points at the other services.
func TestDeployComposeParses(t *testing.T) {
	raw := string(repoFile(t, "deploy", "docker-compose.yaml"))
	var compose struct {
		Services map[string]composeService `yaml:"services"`
		Volumes  map[string]any            `yaml:"volumes"`
	}
	dec := yaml.NewDecoder(strings.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&compose); err != nil {
		t.Fatalf("docker-compose.yaml: %v", err)
	}
	names := make([]string, 0, len(compose.Services))
	for n := range compose.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"litellm", "postgres", "teamgate"}) {
		t.Fatalf("services = %v, want litellm, postgres, teamgate", names)
	}
	for name, s := range compose.Services {
		if s.Image == "" {
			t.Errorf("service %s has no image", name)
		}
		if name != "teamgate" && len(s.Ports) > 0 {
			t.Errorf("service %s publishes ports %v; only teamgate may", name, s.Ports)
		}
		for dep := range s.DependsOn {
			if _, ok := compose.Services[dep]; !ok {
				t.Errorf("service %s depends on unknown service %s", name, dep)
			}
		}
	}
	tg := compose.Services["teamgate"]
	if !slices.Equal(tg.Ports, []string{"4180:4180"}) {
		t.Errorf("teamgate publishes %v, want only 4180:4180", tg.Ports)
	}

	// Every ${VAR} the file reads from .env is named in its header.
	var header strings.Builder
	for _, l := range strings.Split(raw, "\n") {
		if !strings.HasPrefix(l, "#") {
			break
		}
		header.WriteString(l + "\n")
	}
	dotEnv := map[string]string{}
	for _, v := range envRefs(raw) {
		if !strings.Contains(header.String(), v) {
			t.Errorf("docker-compose.yaml reads ${%s}, which its header does not list for .env", v)
		}
		dotEnv[v] = "dotenv-" + strings.ToLower(v) + "-0123456789abcdefghijklmnop"
	}

	// teamgate's config: mounted where serve reads it, every variable it
	// references set for the container, loaded by teamgate's own loader.
	cfgPath := ""
	for i, a := range tg.Command {
		if a == "--config" && i+1 < len(tg.Command) {
			cfgPath = tg.Command[i+1]
		}
	}
	mounted := ""
	for _, v := range tg.Volumes {
		if parts := strings.Split(v, ":"); len(parts) >= 2 && parts[1] == cfgPath {
			mounted = parts[0]
		}
	}
	if cfgPath == "" || mounted != "./teamgate.yaml" {
		t.Fatalf("teamgate reads --config %q, mounted from %q; want ./teamgate.yaml mounted there (volumes %v)", cfgPath, mounted, tg.Volumes)
	}
	cfgRaw := repoFile(t, "deploy", "teamgate.yaml")
	containerEnv := map[string]string{}
	for k, v := range tg.Environment {
		containerEnv[k] = os.Expand(v, func(name string) string { return dotEnv[name] })
	}
	for _, v := range envRefs(string(cfgRaw)) {
		if _, ok := tg.Environment[v]; !ok {
			t.Errorf("deploy/teamgate.yaml references ${%s}, which the teamgate service does not set", v)
		}
	}
	cfg, err := parseConfig("deploy/teamgate.yaml", cfgRaw, mapEnv(containerEnv))
	if err != nil {
		t.Fatalf("deploy/teamgate.yaml: %v", err)
	}
	// Docker's stop timeout (10s by default) must cover the shutdown grace
	// and the final outbox pass, or SIGKILL cuts them.
	if grace, err := time.ParseDuration(tg.StopGrace); err != nil || grace < time.Duration(cfg.Server.ShutdownGrace)+finalDrain {
		t.Errorf("teamgate stop_grace_period = %q, want at least server.shutdown_grace (%v) + the final outbox pass (%v)",
			tg.StopGrace, cfg.Server.ShutdownGrace, finalDrain)
	}
	if _, port, _ := net.SplitHostPort(cfg.Server.Listen); port != "4180" {
		t.Errorf("teamgate listens on %q, but compose publishes 4180", cfg.Server.Listen)
	}
	up, _ := url.Parse(cfg.Upstream.URL)
	lt := compose.Services["litellm"]
	if up.Hostname() != "litellm" || !strings.Contains(strings.Join(lt.Command, " "), "--port "+up.Port()) {
		t.Errorf("upstream.url %s does not reach the litellm service (command %v)", cfg.Upstream.URL, lt.Command)
	}
	db, _ := url.Parse(cfg.Database.URL)
	pg := compose.Services["postgres"].Environment
	pw, _ := db.User.Password()
	if db.Hostname() != "postgres" || db.User.Username() != pg["POSTGRES_USER"] || strings.TrimPrefix(db.Path, "/") != pg["POSTGRES_DB"] ||
		pw != os.Expand(pg["POSTGRES_PASSWORD"], func(n string) string { return dotEnv[n] }) {
		t.Errorf("database.url %s does not match the postgres service (%v)", store.RedactURL(cfg.Database.URL), pg)
	}
	if !cfg.LiteLLM.Enabled() || cfg.LiteLLM.MasterKey != containerEnv["LITELLM_MASTER_KEY"] ||
		containerEnv["LITELLM_MASTER_KEY"] != os.Expand(lt.Environment["LITELLM_MASTER_KEY"], func(n string) string { return dotEnv[n] }) {
		t.Error("teamgate and LiteLLM do not share the master key")
	}
}

// dockerInstruction is one Dockerfile instruction, continuation lines joined.
type dockerInstruction struct{ cmd, args string }

func parseDockerfile(t *testing.T, raw string) []dockerInstruction {
	t.Helper()
	var out []dockerInstruction
	var cur strings.Builder
	for _, l := range strings.Split(raw, "\n") {
		trimmed := strings.TrimSpace(l)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if s, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// mainStringVars returns main.go's package-level string variables.
func mainStringVars(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "main.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.VAR {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if i < len(vs.Values) {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						out = append(out, n.Name)
					}
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// The Dockerfile: a multi-stage static build whose -ldflags set main.go's
// build variables, a non-root final image, and a HEALTHCHECK that runs
// `teamgate healthcheck` against /teamgate/healthz on the listen port.
func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t, string(repoFile(t, "Dockerfile")))
	var froms, users, healthchecks, exposes, entrypoints []string
	var build, copyFrom string
	args := map[string]bool{}
	for _, in := range ins {
		switch in.cmd {
		case "FROM":
			froms = append(froms, in.args)
		case "USER":
			users = append(users, in.args)
		case "HEALTHCHECK":
			healthchecks = append(healthchecks, in.args)
		case "EXPOSE":
			exposes = append(exposes, in.args)
		case "ENTRYPOINT":
			entrypoints = append(entrypoints, in.args)
		case "ARG":
			name, _, _ := strings.Cut(in.args, "=")
			args[name] = true
		case "RUN":
			if strings.Contains(in.args, "go build") {
				build = in.args
			}
		case "COPY":
			if strings.HasPrefix(in.args, "--from=") {
				copyFrom = in.args
			}
		}
	}
	if len(froms) < 2 || !strings.Contains(strings.ToLower(froms[0]), " as build") || !strings.HasPrefix(copyFrom, "--from=build ") {
		t.Errorf("not a multi-stage build: FROM %q, COPY %q", froms, copyFrom)
	}
	if !strings.Contains(build, "CGO_ENABLED=0") || !strings.Contains(build, "./cmd/teamgate") {
		t.Errorf("the go build is not static or not of ./cmd/teamgate: %q", build)
	}
	var set []string
	for _, m := range regexp.MustCompile(`-X main\.(\w+)=\$\{(\w+)\}`).FindAllStringSubmatch(build, -1) {
		set = append(set, m[1])
		if !args[m[2]] {
			t.Errorf("-X main.%s uses ${%s}, which is not an ARG", m[1], m[2])
		}
	}
	slices.Sort(set)
	if vars := mainStringVars(t); !slices.Equal(set, vars) || !slices.Equal(vars, []string{"commit", "date", "version"}) {
		t.Errorf("-ldflags set main.%v; main.go's build variables are %v", set, vars)
	}
	if len(users) == 0 {
		t.Fatal("no USER: the image runs as root")
	}
	if u, _, _ := strings.Cut(users[len(users)-1], ":"); u == "root" || u == "0" || u == "" {
		t.Errorf("the final USER is %q", users[len(users)-1])
	}
	if len(exposes) != 1 || exposes[0] != "4180" || !strings.HasSuffix(gateway.DefaultListen, ":"+exposes[0]) {
		t.Errorf("EXPOSE %v, default listen %s", exposes, gateway.DefaultListen)
	}

	// HEALTHCHECK [options] CMD ["binary", "healthcheck", "--url", URL]:
	// the installed binary, the health path on the exposed port; its
	// arguments are accepted by `teamgate healthcheck`.
	if len(healthchecks) != 1 {
		t.Fatalf("HEALTHCHECKs: %q, want one", healthchecks)
	}
	_, cmdJSON, ok := strings.Cut(healthchecks[0], "CMD ")
	var argv []string
	if !ok || json.Unmarshal([]byte(cmdJSON), &argv) != nil || len(argv) < 2 {
		t.Fatalf("HEALTHCHECK %q: want the exec form CMD [...]", healthchecks[0])
	}
	binary := strings.Fields(copyFrom)[len(strings.Fields(copyFrom))-1]
	if argv[0] != binary || argv[1] != "healthcheck" || len(entrypoints) != 1 || !strings.Contains(entrypoints[0], `"`+binary+`"`) {
		t.Errorf("HEALTHCHECK runs %q; the binary is installed at %s (ENTRYPOINT %v)", argv, binary, entrypoints)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/teamgate/healthz" {
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	probe := slices.Clone(argv[1:])
	for i, a := range probe {
		if i > 0 && probe[i-1] == "--url" {
			u, err := url.Parse(a)
			if err != nil || u.Path != "/teamgate/healthz" || u.Port() != exposes[0] || u.Hostname() != "127.0.0.1" {
				t.Errorf("HEALTHCHECK --url %s: want http://127.0.0.1:%s/teamgate/healthz", a, exposes[0])
			}
			probe[i] = srv.URL + u.Path // the same request, to a stand-in
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), probe, mapEnv(nil), &out, &out); err != nil || out.String() != "ok\n" {
		t.Errorf("teamgate %q: %v %q", probe, err, out.String())
	}
}

// systemd-analyze verify finds nothing wrong with deploy/teamgate.service
// (run against a copy whose binary path exists on this machine), and the
// unit lets the shutdown grace and the final outbox pass finish.
func TestSystemdUnitVerifies(t *testing.T) {
	raw := string(repoFile(t, "deploy", "teamgate.service"))
	m := regexp.MustCompile(`(?m)^TimeoutStopSec=(\d+)s$`).FindStringSubmatch(raw)
	if m == nil {
		t.Fatal("no TimeoutStopSec=Ns in the unit")
	}
	if n, _ := strconv.Atoi(m[1]); time.Duration(n)*time.Second <= gateway.DefaultShutdownGrace+finalDrain {
		t.Errorf("TimeoutStopSec=%ss does not cover the %v grace plus the %v final outbox pass", m[1], gateway.DefaultShutdownGrace, finalDrain)
	}
	for _, want := range []string{"NoNewPrivileges=yes", "DynamicUser=yes", "ProtectSystem=strict", "CapabilityBoundingSet=\n", "KillSignal=SIGTERM"} {
		if !strings.Contains(raw, want) {
			t.Errorf("the unit lacks %q", strings.TrimSpace(want))
		}
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed here, so deploy/teamgate.service was not verified")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "teamgate.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(raw, "/usr/local/bin/teamgate", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, "verify", unit).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
