package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/teamgate/teamgate/gateway"
	"github.com/teamgate/teamgate/gateway/assertion"
	"github.com/teamgate/teamgate/sync/store"
)

// `teamgate keys` manages the stored assertion signing keys (see
// gateway/assertion/rotation.go for the rotation's timeline).

const keysUsage = `Usage: teamgate keys COMMAND [--config FILE]

Manage the keys that sign identity assertions (stored in the database):
  list                  every stored key: state, when it was created, activates or may be retired
  rotate                insert a new key, published at once by every replica (within
                        assertion.key_refresh) and signing once it has been published for
                        key_refresh + the JWKS max-age (5m)
  activate KID [--force]
                        make KID the signing key now; refused until it has been published for
                        key_refresh + 5m, unless --force
  retire KID [--force]  stop publishing KID; refused for the signing key, and until
                        key_refresh + assertion.lifetime after it stopped signing, unless --force

Every command takes --config FILE (default config.yaml).
`

func cmdKeys(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return usageError{"keys: a command is required (list, rotate, activate or retire)"}
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, keysUsage)
		return flag.ErrHelp
	case "list", "rotate":
		cfg, err := keysConfig(sub, "", rest, nil, nil, getenv, stderr)
		if err != nil {
			return err
		}
		return withKeyStore(ctx, cfg, func(st store.Store) error {
			if sub == "list" {
				return keysList(ctx, st, cfg, stdout)
			}
			return keysRotate(ctx, st, cfg, stdout)
		})
	case "activate", "retire":
		var force bool
		kid := ""
		if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
			kid, rest = rest[0], rest[1:]
		}
		cfg, err := keysConfig(sub, " KID [--force]", rest, func(fs *flag.FlagSet) {
			fs.BoolVar(&force, "force", false, "skip the safety wait")
		}, func() error {
			if kid == "" {
				return usageError{"keys " + sub + ": the key id (KID) is required; see teamgate keys list"}
			}
			return nil
		}, getenv, stderr)
		if err != nil {
			return err
		}
		return withKeyStore(ctx, cfg, func(st store.Store) error {
			if sub == "activate" {
				return keysActivate(ctx, st, cfg, kid, force, stdout)
			}
			return keysRetire(ctx, st, cfg, kid, force, stdout)
		})
	default:
		fmt.Fprint(stderr, keysUsage)
		return usageError{fmt.Sprintf("keys: unknown command %q", sub)}
	}
}

// keysConfig parses a subcommand's flags, runs check (the positional
// argument) and loads the config.
func keysConfig(sub, synopsis string, args []string, more func(*flag.FlagSet), check func() error, getenv env, stderr io.Writer) (Config, error) {
	fs := newFlagSet("keys "+sub, "keys "+sub+synopsis+" [--config FILE]", stderr)
	path := fs.String("config", "config.yaml", "config file")
	if more != nil {
		more(fs)
	}
	if err := parseFlags(fs, args); err != nil {
		return Config{}, err
	}
	if check != nil {
		if err := check(); err != nil {
			return Config{}, err
		}
	}
	return loadConfig(*path, getenv)
}

func withKeyStore(ctx context.Context, cfg Config, fn func(store.Store) error) error {
	st, err := openStore(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st)
}

// keyTimes are the waits the commands enforce.
type keyTimes struct{ refresh, lifetime time.Duration }

func timesOf(cfg Config) keyTimes {
	return keyTimes{refresh: cfg.Assertion.KeyRefresh.Std(), lifetime: cfg.Assertion.Lifetime.Std()}
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func keysList(ctx context.Context, st store.Store, cfg Config, stdout io.Writer) error {
	keys, err := st.SigningKeys(ctx)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		fmt.Fprintln(stdout, "no stored signing keys (one is generated when teamgate first serves)")
		return nil
	}
	kt := timesOf(cfg)
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KID\tALG\tSTATE\tCREATED\tNOTE")
	for _, k := range keys {
		state, note := "inactive", "published until retired"
		switch {
		case k.Active:
			state, note = "active", "signs"
		case k.ActivateAt != nil:
			state, note = "next", "published; signs from "+stamp(*k.ActivateAt)
		case k.DeactivatedAt != nil:
			note = "stopped signing " + stamp(*k.DeactivatedAt) + "; may be retired from " +
				stamp(assertion.RetireAfter(*k.DeactivatedAt, kt.refresh, kt.lifetime))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, state, stamp(k.CreatedAt), note)
	}
	if cfg.Assertion.KeyFile != "" {
		fmt.Fprintf(w, "(assertion.key_file is set: that file signs, and these keys are only published)\n")
	}
	return w.Flush()
}

func keysRotate(ctx context.Context, st store.Store, cfg Config, stdout io.Writer) error {
	a := cfg.Assertion
	if a.KeyFile != "" {
		return errors.New("keys rotate: assertion.key_file is set, so the stored keys do not sign; to rotate a file key, " +
			"write the new key to key_file and list the old file in assertion.publish_key_files until its last assertion has expired")
	}
	keys, err := st.SigningKeys(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.Algorithm == a.Alg && !k.Active && k.ActivateAt != nil {
			return fmt.Errorf("keys rotate: key %s is already waiting to sign (from %s); activate or retire it first", k.ID, stamp(*k.ActivateAt))
		}
	}
	now := time.Now()
	kt := timesOf(cfg)
	at := assertion.NextActivation(now, kt.refresh, gateway.JWKSMaxAge)
	rec, err := assertion.NewRotationKey(a.Alg, cfg.Session.Secrets(), now, at)
	if err != nil {
		return err
	}
	ok, err := st.InsertSigningKey(ctx, store.SigningKey{ID: rec.ID, Algorithm: rec.Algorithm, PrivateKey: rec.Sealed,
		PublicJWK: rec.PublicJWK, CreatedAt: rec.CreatedAt, ActivateAt: rec.ActivateAt})
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("keys rotate: key %s exists already", rec.ID)
	}
	fmt.Fprintf(stdout, "inserted %s key %s: every replica publishes it within %s; it signs from %s\n", rec.Algorithm, rec.ID, kt.refresh, stamp(at))
	return nil
}

func findKey(keys []store.SigningKey, kid string) (store.SigningKey, error) {
	for _, k := range keys {
		if k.ID == kid {
			return k, nil
		}
	}
	return store.SigningKey{}, fmt.Errorf("no stored signing key %q (see teamgate keys list)", kid)
}

func keysActivate(ctx context.Context, st store.Store, cfg Config, kid string, force bool, stdout io.Writer) error {
	keys, err := st.SigningKeys(ctx)
	if err != nil {
		return err
	}
	k, err := findKey(keys, kid)
	if err != nil {
		return err
	}
	if k.Active {
		fmt.Fprintf(stdout, "%s is already the signing key\n", kid)
		return nil
	}
	if k.Algorithm != cfg.Assertion.Alg {
		return fmt.Errorf("keys activate: %s is an %s key, but assertion.alg is %s", kid, k.Algorithm, cfg.Assertion.Alg)
	}
	now := time.Now()
	if safe := assertion.NextActivation(k.CreatedAt, timesOf(cfg).refresh, gateway.JWKSMaxAge); now.Before(safe) && !force {
		return fmt.Errorf("keys activate: %s was published at %s; verifiers may not know it before %s (assertion.key_refresh + the JWKS max-age). "+
			"Wait, or pass --force", kid, stamp(k.CreatedAt), stamp(safe))
	}
	if err := st.ActivateSigningKey(ctx, kid, now); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s is the signing key; every replica switches to it within %s\n", kid, timesOf(cfg).refresh)
	return nil
}

func keysRetire(ctx context.Context, st store.Store, cfg Config, kid string, force bool, stdout io.Writer) error {
	keys, err := st.SigningKeys(ctx)
	if err != nil {
		return err
	}
	k, err := findKey(keys, kid)
	if err != nil {
		return err
	}
	if k.Active {
		return fmt.Errorf("keys retire: %s is the signing key; rotate first", kid)
	}
	kt := timesOf(cfg)
	if k.DeactivatedAt != nil && !force {
		if safe := assertion.RetireAfter(*k.DeactivatedAt, kt.refresh, kt.lifetime); time.Now().Before(safe) {
			return fmt.Errorf("keys retire: %s stopped signing at %s; assertions it signed may be in use until %s "+
				"(assertion.key_refresh + assertion.lifetime). Wait, or pass --force", kid, stamp(*k.DeactivatedAt), stamp(safe))
		}
	}
	if err := st.DeleteSigningKey(ctx, kid); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "retired %s: replicas stop publishing it within %s\n", kid, kt.refresh)
	return nil
}
