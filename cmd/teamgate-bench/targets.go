package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/lib/pq" // PostgreSQL driver for the benchmark's own schemas
)

// proc is a child process of the harness: the upstream, the bare proxy or a
// teamgate. Its stderr goes to a log file in the run's directory.
type proc struct {
	name    string
	cmd     *exec.Cmd
	addr    string // host:port it serves on
	metrics string // teamgate only: host:port of server.metrics_listen
	logPath string
	exited  chan struct{}
}

// start runs bin with args. Children die with the harness (Pdeathsig), so
// an interrupted run leaves no servers behind.
func start(name, bin string, args, env []string, dir string) (*proc, io.ReadCloser, error) {
	p := &proc{name: name, logPath: filepath.Join(dir, name+".log"), exited: make(chan struct{})}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		return nil, nil, err
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = logFile
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		logFile.Close()
		return nil, nil, err
	}
	if err := p.cmd.Start(); err != nil {
		logFile.Close()
		return nil, nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	return p, stdout, nil
}

// startChild re-executes the harness as one of its child servers and waits
// for the address it prints.
func startChild(self, name string, args []string, dir string) (*proc, error) {
	p, stdout, err := start(name, self, append([]string{name}, args...), nil, dir)
	if err != nil {
		return nil, err
	}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case l, ok := <-line:
		if addr, found := strings.CutPrefix(l, "listening "); ok && found {
			p.addr = addr
			return p, nil
		}
	case <-time.After(15 * time.Second):
	}
	p.stop()
	return nil, fmt.Errorf("%s did not start: %s", name, p.logTail())
}

// teamgateOptions describe one teamgate process.
type teamgateOptions struct {
	name, upstream, dbURL string
	logLevel              string
	syncEvery             time.Duration
	assertion             bool
	entra                 entraSettings
}

// startTeamgate writes a config for o and runs `teamgate serve` with it,
// waiting until /teamgate/readyz answers 200 (database up, OIDC discovery
// done). Secrets travel in the environment, as in production.
func startTeamgate(ctx context.Context, bin string, o teamgateOptions, dir string) (*proc, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	metricsAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`server:
  listen: %q
  public_url: %q
  metrics_listen: %q
  shutdown_grace: 2s
upstream:
  url: %q
entra:
  tenant_id: %q
  client_id: %q
  client_secret: "${BENCH_CLIENT_SECRET}"
  authority_host: %q
  graph_url: %q
  service_principal_id: %q
database:
  url: "${BENCH_DATABASE_URL}"
session:
  secret: "${BENCH_SESSION_SECRET}"
assertion:
  enabled: %t
log:
  level: %s
sync:
  interval: %s
`, addr, "http://"+addr, metricsAddr, o.upstream, o.entra.tenantID, o.entra.clientID,
		o.entra.authorityHost, o.entra.graphURL, o.entra.servicePrincipalID, o.assertion, o.logLevel, o.syncEvery)
	cfgPath := filepath.Join(dir, o.name+".yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	env := []string{
		"BENCH_CLIENT_SECRET=" + o.entra.clientSecret,
		"BENCH_DATABASE_URL=" + o.dbURL,
		"BENCH_SESSION_SECRET=" + randomHex(32),
	}
	p, stdout, err := start(o.name, bin, []string{"serve", "--config", cfgPath}, env, dir)
	if err != nil {
		return nil, err
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	p.addr, p.metrics = addr, metricsAddr
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return nil, fmt.Errorf("%s exited at start: %s", o.name, p.logTail())
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		res, err := http.Get("http://" + addr + "/teamgate/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p, nil
			}
		}
	}
	p.stop()
	return nil, fmt.Errorf("%s not ready after 60s: %s", o.name, p.logTail())
}

// stop ends the process gracefully (SIGTERM), then for good.
func (p *proc) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// logTail is the end of the process's log, for start-up failures.
func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// memUsage is a process's memory as the kernel and (for teamgate) the Go
// runtime see it, in bytes.
type memUsage struct {
	rss, peak  int64 // VmRSS, VmHWM
	file, anon int64 // RssFile (program text and data mapped from the binary), RssAnon
	// teamgate's Go runtime: heap spans in use, idle heap not yet returned
	// to the OS, and goroutine stacks. The rest of anon is the runtime's
	// own bookkeeping and memory allocated outside Go (SQLite's page cache).
	heapInuse, heapIdleKept, stacks int64
}

// memory reads /proc/PID/status and, for teamgate, the Go memory gauges
// of its metrics listener.
func (p *proc) memory() (memUsage, error) {
	var m memUsage
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid()))
	if err != nil {
		return m, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, val, _ := strings.Cut(line, ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		switch name {
		case "VmRSS":
			m.rss = kb << 10
		case "VmHWM":
			m.peak = kb << 10
		case "RssFile":
			m.file = kb << 10
		case "RssAnon":
			m.anon = kb << 10
		}
	}
	if p.metrics == "" {
		return m, nil
	}
	g, err := p.scrape()
	if err != nil {
		return m, err
	}
	m.heapInuse = int64(g["go_memstats_heap_inuse_bytes"])
	m.heapIdleKept = int64(g["go_memstats_heap_idle_bytes"] - g["go_memstats_heap_released_bytes"])
	m.stacks = int64(g["go_memstats_stack_inuse_bytes"])
	return m, nil
}

// cpu is the process's user+system CPU time so far, from /proc/PID/stat
// (clock ticks of 10 ms, USER_HZ on Linux).
func (p *proc) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid()))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// counters reads teamgate's database statement counter and its proxied
// request counter (all status classes) from the metrics listener.
func (p *proc) counters() (statements, proxied float64, err error) {
	m, err := p.scrape()
	if err != nil {
		return 0, 0, err
	}
	statements, ok := m["teamgate_db_statements_total"]
	if !ok {
		return 0, 0, errors.New("teamgate_db_statements_total not in /metrics")
	}
	return statements, m["teamgate_proxied_requests_total"], nil
}

// scrape reads teamgate's /metrics, summing each metric over its labels.
func (p *proc) scrape() (map[string]float64, error) {
	res, err := http.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	m := map[string]float64{}
	s := bufio.NewScanner(res.Body)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		line := s.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if i := strings.IndexByte(line, '{'); i >= 0 && i < len(name) {
			name = line[:i]
			_, val, ok = strings.Cut(line[strings.LastIndexByte(line, '}'):], " ")
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); ok && err == nil {
			m[name] += v
		}
	}
	return m, s.Err()
}

// buildTeamgate compiles cmd/teamgate of the module the harness runs in,
// so that teamgate runs as a process of its own, built as the Dockerfile
// builds it (static, stripped; with symbols, the same code unstripped for
// a profiler to read).
func buildTeamgate(ctx context.Context, dir string, symbols bool) (string, error) {
	bin := filepath.Join(dir, "teamgate")
	args := []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "github.com/teamgate/teamgate/cmd/teamgate"}
	if symbols {
		args = slices.Delete(args, 2, 4)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build cmd/teamgate (run the harness inside the teamgate module): %v\n%s", err, out)
	}
	return bin, nil
}

// freePort picks a loopback port for teamgate's config. Another process
// could take it before teamgate binds it; start-up then fails loudly.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// postgresSchema creates an empty schema on the server of base and returns
// a URL whose connections use it (lib/pq passes search_path to the server),
// and a function that drops it. The benchmark never writes into an existing
// schema.
func postgresSchema(ctx context.Context, base string) (string, func(), error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, errors.New("the PostgreSQL URL does not parse") // never echo it: it may hold a password
	}
	db, err := sql.Open("postgres", base)
	if err != nil {
		return "", nil, err
	}
	schema := "teamgate_bench_" + randomHex(6)
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		db.Close()
		return "", nil, fmt.Errorf("create schema on %s@%s: %w", u.User.Username(), u.Host, err)
	}
	drop := func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = db.ExecContext(dctx, "DROP SCHEMA "+schema+" CASCADE")
		db.Close()
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
