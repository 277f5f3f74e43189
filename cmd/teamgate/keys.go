package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
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
  list                  every stored key: state, how many running replicas sign with it, when it was
                        created, activates or may be retired
  rotate [--publish-for D]
                        insert a new key: every replica publishes it within assertion.key_refresh,
                        and it signs once D has passed. D defaults to key_refresh + 5m (the JWKS
                        max-age) + 10m (LiteLLM's default public_key_ttl, how long it caches the
                        JWKS; it does not re-fetch on an unknown kid) + 4m margin: 20m with
                        key_refresh 1m. D may not be shorter than key_refresh + 5m; with a larger
                        public_key_ttl, pass at least key_refresh + 5m + public_key_ttl.
                        Refused when this config's session.secret cannot decrypt the active key.
                        With assertion.key_file set the file signs; the key signs from D on replicas
                        started without key_file (the way back to stored keys).
  activate KID [--force]
                        make KID the signing key now; refused before the time rotate set
                        (--publish-for), unless --force, and when this config cannot decrypt KID
  retire KID [--force]  stop publishing KID; refused for the active key, and until
                        key_refresh + assertion.lifetime after it stopped signing, unless --force.
                        With --force, an active key is retired when it does not sign (assertion.key_file
                        is set, or it is not an assertion.alg key). A key that becomes active
                        meanwhile is never retired. Refused too, unless --force, while a replica
                        reported in the last 3 key_refresh intervals that it signs with KID: each
                        replica reports its signing key at start and every key_refresh, also when it
                        cannot decrypt the new active key and so keeps signing the old one (see its logs).

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
		var publishFor time.Duration
		var more func(*flag.FlagSet)
		synopsis := ""
		if sub == "rotate" {
			synopsis = " [--publish-for D]"
			more = func(fs *flag.FlagSet) {
				fs.DurationVar(&publishFor, "publish-for", 0,
					"how long the key is published before it signs (default key_refresh + 5m + 10m + 4m: 20m with key_refresh 1m)")
			}
		}
		cfg, err := keysConfig(sub, synopsis, rest, more, nil, getenv, stderr)
		if err != nil {
			return err
		}
		return withKeyStore(ctx, cfg, func(st store.Store) error {
			if sub == "list" {
				return keysList(ctx, st, cfg, stdout)
			}
			return keysRotate(ctx, st, cfg, publishFor, stdout)
		})
	case "activate", "retire":
		var force bool
		kid := ""
		if len(rest) > 0 && !isKeysFlag(rest[0]) {
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

// isKeysFlag reports whether arg is one of activate's and retire's flags.
// A kid (a base64url thumbprint) may itself start with "-".
func isKeysFlag(arg string) bool {
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	switch name {
	case "config", "force", "h", "help":
		return strings.HasPrefix(arg, "-")
	}
	return false
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
	signers, err := liveSigners(ctx, st, kt, time.Now())
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KID\tALG\tSTATE\tREPLICAS\tCREATED\tNOTE")
	stored := map[string]bool{}
	for _, k := range keys {
		stored[k.ID] = true
		state, note := "inactive", "published until retired"
		switch {
		case k.Active && (cfg.Assertion.KeyFile != "" || k.Algorithm != cfg.Assertion.Alg):
			state, note = "active", "published; does not sign with this config (retire --force once no replica signs with it)"
		case k.Active:
			state, note = "active", "signs"
		case k.ActivateAt != nil && cfg.Assertion.KeyFile != "":
			state, note = "next", "published; signs from "+stamp(*k.ActivateAt)+" once assertion.key_file is removed"
		case k.ActivateAt != nil:
			state, note = "next", "published; signs from "+stamp(*k.ActivateAt)
		case k.DeactivatedAt != nil:
			note = "stopped signing " + stamp(*k.DeactivatedAt) + "; may be retired from " +
				stamp(assertion.RetireAfter(*k.DeactivatedAt, kt.refresh, kt.lifetime))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", k.ID, k.Algorithm, state, len(signers[k.ID]), stamp(k.CreatedAt), note)
	}
	fmt.Fprintf(w, "(REPLICAS: running replicas that sign with the key, as each reported within the last %s)\n", liveWindow(kt))
	for _, kid := range slices.Sorted(maps.Keys(signers)) {
		if !stored[kid] {
			fmt.Fprintf(w, "(%d replica(s) sign with %s, which is not stored: assertion.key_file)\n", len(signers[kid]), kid)
		}
	}
	if cfg.Assertion.KeyFile != "" {
		fmt.Fprintf(w, "(assertion.key_file is set: that file signs, and these keys are only published)\n")
	}
	return w.Flush()
}

func keysRotate(ctx context.Context, st store.Store, cfg Config, publishFor time.Duration, stdout io.Writer) error {
	a := cfg.Assertion
	// Under key_file the key is published as usual but signs only on the
	// replicas started without key_file once its time has come: the way
	// from a file key back to stored keys (README).
	kt := timesOf(cfg)
	if publishFor == 0 {
		publishFor = assertion.DefaultPublish(kt.refresh, gateway.JWKSMaxAge)
	}
	if least := assertion.MinPublish(kt.refresh, gateway.JWKSMaxAge); publishFor < least {
		return fmt.Errorf("keys rotate: --publish-for %s is shorter than assertion.key_refresh + the JWKS max-age (%s): "+
			"a replica or an HTTP cache might not publish the key before it signs", publishFor, least)
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
	// The replicas can decrypt the active key; if this config cannot, its
	// session.secret is not theirs, and neither could they decrypt a key
	// sealed for it.
	for _, k := range keys {
		if k.Active && k.Algorithm == a.Alg {
			if err := canOpen(cfg, k); err != nil {
				return fmt.Errorf("keys rotate: %w; run it with the replicas' config", err)
			}
			break
		}
	}
	now := time.Now()
	at := now.Add(publishFor)
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
	fmt.Fprintf(stdout, "inserted %s key %s: every replica publishes it within %s; it signs from %s (in %s)\n",
		rec.Algorithm, rec.ID, kt.refresh, stamp(at), publishFor)
	if a.KeyFile != "" {
		fmt.Fprintf(stdout, "assertion.key_file is set: the key signs once that time has come on replicas started without key_file; "+
			"when you remove it, list %s under assertion.publish_key_files until its last assertion has expired\n", a.KeyFile)
	}
	if litellm := assertion.MinPublish(kt.refresh, gateway.JWKSMaxAge) + assertion.LiteLLMKeyTTL; publishFor < litellm {
		fmt.Fprintf(stdout, "note: shorter than %s (key_refresh + 5m + LiteLLM's default public_key_ttl of 10m): "+
			"a LiteLLM that fetched the JWKS just before may reject assertions of the new key at first\n", litellm)
	}
	return nil
}

// canOpen reports whether this config's session.secret decrypts k.
func canOpen(cfg Config, k store.SigningKey) error {
	sealer, err := assertion.NewSealer(cfg.Session.Secrets()...)
	if err != nil {
		return err
	}
	if _, _, err := sealer.Open(k.ID, k.Algorithm, k.PrivateKey); err != nil {
		if errors.Is(err, assertion.ErrUnseal) {
			return fmt.Errorf("this config's session.secret cannot decrypt key %s", k.ID)
		}
		return fmt.Errorf("key %s: %w", k.ID, err)
	}
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
	if err := canOpen(cfg, k); err != nil {
		return fmt.Errorf("keys activate: %w; the replicas could not sign with it (run it with the replicas' config)", err)
	}
	now := time.Now()
	// A rotation key signs from the time rotate set; any other (a rotation
	// another one overtook) once published as long as rotate's default.
	safe, why := k.ActivateAt, "the time keys rotate set (--publish-for)"
	if safe == nil {
		safe = new(k.CreatedAt.Add(assertion.DefaultPublish(timesOf(cfg).refresh, gateway.JWKSMaxAge)))
		why = "assertion.key_refresh + the JWKS max-age + LiteLLM's default public_key_ttl + a margin after it was created"
	}
	if now.Before(*safe) && !force {
		return fmt.Errorf("keys activate: %s signs from %s (%s); a verifier whose cached JWKS predates the key rejects what it signs before then. "+
			"Wait, or pass --force", kid, stamp(*safe), why)
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
	var guard store.RetireGuard
	if k.Active {
		// An active stored key signs unless key_file does, or unless it is
		// not of assertion.alg; then --force may retire it.
		notSigning := cfg.Assertion.KeyFile != "" || k.Algorithm != cfg.Assertion.Alg
		switch {
		case !notSigning:
			return fmt.Errorf("keys retire: %s is the signing key; rotate first", kid)
		case !force:
			return fmt.Errorf("keys retire: %s is the active stored key. It does not sign with this config (%s), "+
				"but a replica without it still signs with it: once every replica runs with this config and assertion.lifetime "+
				"has passed since, pass --force", kid, notSigningWhy(cfg, k))
		}
		guard.AllowActive = true
	}
	kt := timesOf(cfg)
	now := time.Now()
	if !force {
		// The store keeps the key if it stopped signing later than this,
		// even if that happened after the check below.
		guard.StoppedBy = now.Add(-(kt.refresh + kt.lifetime))
		if k.DeactivatedAt != nil {
			if safe := assertion.RetireAfter(*k.DeactivatedAt, kt.refresh, kt.lifetime); now.Before(safe) {
				return fmt.Errorf("keys retire: %s stopped signing at %s; assertions it signed may be in use until %s "+
					"(assertion.key_refresh + assertion.lifetime). Wait, or pass --force", kid, stamp(*k.DeactivatedAt), stamp(safe))
			}
		}
	}
	// A replica that cannot decrypt the new active key keeps signing with
	// this one, whatever the database says (gateway/signing_replicas.go).
	signers, err := liveSigners(ctx, st, kt, now)
	if err != nil {
		return err
	}
	if rs := signers[kid]; len(rs) > 0 {
		if !force {
			return fmt.Errorf("keys retire: %d replica(s) still sign with %s (%s); check their logs: they may not be able to "+
				"decrypt the new key. Wait, or pass --force", len(rs), kid, describeReplicas(rs))
		}
		fmt.Fprintf(stdout, "warning: %d replica(s) still sign with %s (%s); verifiers reject what they sign once they re-fetch the JWKS\n",
			len(rs), kid, describeReplicas(rs))
	}
	ok, err := st.DeleteSigningKey(ctx, kid, guard)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("keys retire: %s changed meanwhile (a replica made it the signing key, or it just stopped signing); "+
			"nothing was retired, see teamgate keys list", kid)
	}
	fmt.Fprintf(stdout, "retired %s: replicas stop publishing it within %s\n", kid, kt.refresh)
	return nil
}

// liveRefreshes: a replica reports the key it signs with at every
// assertion.key_refresh; one not heard from for this many is taken for gone.
const liveRefreshes = 3

func liveWindow(kt keyTimes) time.Duration { return liveRefreshes * kt.refresh }

// liveSigners returns, by kid, the replicas that reported signing with it
// within liveWindow.
func liveSigners(ctx context.Context, st store.Store, kt keyTimes, now time.Time) (map[string][]store.SigningReplica, error) {
	rs, err := st.SigningReplicas(ctx, now.Add(-liveWindow(kt)))
	if err != nil {
		return nil, err
	}
	out := map[string][]store.SigningReplica{}
	for _, r := range rs {
		out[r.KeyID] = append(out[r.KeyID], r)
	}
	return out, nil
}

// describeReplicas names up to three replicas and when each last reported.
func describeReplicas(rs []store.SigningReplica) string {
	var parts []string
	for i, r := range rs {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(rs)-i))
			break
		}
		parts = append(parts, r.ID+" last seen "+stamp(r.SeenAt))
	}
	return strings.Join(parts, ", ")
}

func notSigningWhy(cfg Config, k store.SigningKey) string {
	if cfg.Assertion.KeyFile != "" {
		return "assertion.key_file signs"
	}
	return fmt.Sprintf("it is an %s key and assertion.alg is %s", k.Algorithm, cfg.Assertion.Alg)
}
