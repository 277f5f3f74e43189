// Command teamgate-bench measures what teamgate costs on the path of a
// request, next to the unavoidable cost of one reverse-proxy hop.
//
// One run starts an upstream (a small JSON reply and an SSE stream), a bare
// httputil.ReverseProxy hop to it, a fake Entra tenant and two teamgate
// processes built from this tree (identity assertions off and on), signs
// users in through the real OIDC flow, drives the same load at each target
// in alternating rounds and prints one table. See docs/performance.md.
//
//	go run ./cmd/teamgate-bench [flags]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "teamgate-bench:", err)
		os.Exit(1)
	}
}

// options are the flags of a run.
type options struct {
	duration    time.Duration
	rounds      int
	connections int
	users       int
	sessions    int
	storm       int
	sseStreams  int
	db          string
	logLevel    string
	syncEvery   time.Duration
	keep        bool
	symbols     bool
}

// run dispatches the child servers (upstream, bareproxy) or runs the
// benchmark.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "upstream" || args[0] == "bareproxy") {
		return runChild(ctx, args[0], args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("teamgate-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "timed load per target and round")
	fs.IntVar(&o.rounds, "rounds", 4, "rounds; odd rounds visit the targets in reverse order")
	fs.IntVar(&o.connections, "connections", 32, "keep-alive connections of the load generator")
	fs.IntVar(&o.users, "users", 100, "users signed in to each teamgate for the load (connection i uses user i mod users)")
	fs.IntVar(&o.sessions, "sessions", 10000, "additional sessions signed in for the memory figure (0: skip)")
	fs.IntVar(&o.storm, "storm", 200, "concurrent first sign-ins against PostgreSQL (0: skip)")
	fs.IntVar(&o.sseStreams, "sse-streams", 10, "SSE streams per target (50 events each, 10 ms apart)")
	fs.StringVar(&o.db, "db", "", "PostgreSQL URL for teamgate (a fresh schema is created and dropped); empty: SQLite in a temp dir")
	fs.StringVar(&o.logLevel, "teamgate-log", "info", "teamgate's log.level; info (the default) writes an access line per request")
	fs.DurationVar(&o.syncEvery, "sync-interval", 5*time.Minute, "teamgate's sync.interval (background sync; 0 turns it off)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (configs, teamgate logs)")
	fs.BoolVar(&o.symbols, "symbols", false, "build teamgate with its symbol table, for `perf record -g -p PID` (with --keep, so the binary stays)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run ./cmd/teamgate-bench [flags]   (from the module root)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.duration <= 0 || o.rounds < 1 || o.connections < 1 || o.users < 1 || o.sessions < 0 || o.storm < 0 || o.sseStreams < 0 {
		return errors.New("--duration, --rounds, --connections and --users must be positive; --sessions, --storm and --sse-streams not negative")
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, o.logLevel) {
		return errors.New("--teamgate-log: debug, info, warn or error")
	}
	if o.db != "" && !strings.HasPrefix(o.db, "postgres://") && !strings.HasPrefix(o.db, "postgresql://") {
		return errors.New("--db: only a postgres:// URL (SQLite is the default)")
	}
	b := &bench{o: o, getenv: getenv, progress: stderr}
	defer b.close()
	r, err := b.run(ctx)
	if err != nil {
		return err
	}
	r.print(stdout)
	return nil
}

// machine describes the host for the report.
func machine(o options, backend string) []string {
	cpu, mem := "", ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if _, v, ok := strings.Cut(strings.SplitN(string(b), "\n", 2)[0], ":"); ok {
			mem = strings.TrimSpace(v)
		}
	}
	return []string{
		fmt.Sprintf("machine: %d CPUs (%s), memory %s, %s %s/%s", runtime.NumCPU(), cpu, mem, runtime.Version(), runtime.GOOS, runtime.GOARCH),
		fmt.Sprintf("load: %d keep-alive connections, POST /v1/chat/completions (%d-byte reply), %d rounds × %s per target, %d users;",
			o.connections, len(chatReply), o.rounds, o.duration, o.users),
		fmt.Sprintf("teamgate: database %s, log.level %s, access log to a file", backend, o.logLevel),
		"load average at start: " + loadAverage(),
	}
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
