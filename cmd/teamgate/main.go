// Command teamgate is an identity-aware reverse proxy for LiteLLM: it signs
// people in with Microsoft Entra ID, syncs their Entra groups into teams at
// every sign-in, and forwards their requests with identity headers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
)

// Build information, set at build time with
// -ldflags "-X main.version=v1.2.3 -X main.commit=abc123 -X main.date=2026-11-28T00:00:00Z";
// without them, what the Go toolchain recorded (module version, VCS revision) is used.
var (
	version = "dev"
	commit  = ""
	date    = ""
)

func main() {
	ctx, stop := signalContext()
	err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "teamgate:", err)
		}
		os.Exit(exitCode(err))
	}
}

func exitCode(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// env looks up environment variables; tests pass a map-backed one.
type env func(string) (string, bool)

const usage = `teamgate: an identity-aware reverse proxy for LiteLLM with Microsoft Entra ID sign-in and team sync.

Usage:
  teamgate dev [flags]        run everything on this machine: fake Entra tenant, SQLite, demo upstream
  teamgate serve [--config F] run the gateway (default config file: config.yaml)
  teamgate migrate [--config F]
                              apply database migrations and exit
  teamgate check [--config F] validate the config and try every dependency
  teamgate keys list|rotate|activate|retire [--config F]
                              manage the identity-assertion signing keys
  teamgate version            print the version, commit and build date
  teamgate healthcheck [--url U] [--ca-file F] [--server-name N] [--insecure-skip-verify]
                              exit 0 if a running teamgate answers its health check (http or https)

Run "teamgate COMMAND --help" for the flags of a command.
`

// run is main without the process: it parses args, runs one command and
// returns when ctx is cancelled (SIGINT/SIGTERM) or the command ends.
func run(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"a command is required"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, getenv, stdout, stderr)
	case "dev":
		return cmdDev(ctx, rest, getenv, stdout, stderr)
	case "migrate":
		return cmdMigrate(ctx, rest, getenv, stdout, stderr)
	case "check":
		return cmdCheck(ctx, rest, getenv, stdout, stderr)
	case "healthcheck":
		return cmdHealthcheck(ctx, rest, stdout, stderr)
	case "keys":
		return cmdKeys(ctx, rest, getenv, stdout, stderr)
	case "version":
		fs := newFlagSet("version", "version", stderr)
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		v, c, d := buildInfo()
		fmt.Fprintf(stdout, "teamgate %s (commit %s, built %s, %s)\n", v, c, d, runtime.Version())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

func buildVersion() string {
	v, _, _ := buildInfo()
	return v
}

// buildInfo returns version, commit and build date, preferring ldflags.
func buildInfo() (v, c, d string) {
	v, c, d = version, commit, date
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && c == "":
				c = s.Value
			case s.Key == "vcs.time" && d == "":
				d = s.Value
			}
		}
	}
	if c == "" {
		c = "unknown"
	}
	if d == "" {
		d = "unknown"
	}
	return v, c, d
}

// newFlagSet returns a flag set that prints its usage to stderr and returns
// errors instead of exiting.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: teamgate %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses and rejects stray arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}
