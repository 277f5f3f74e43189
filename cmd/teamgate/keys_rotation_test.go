package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/teamgate/teamgate/gateway/assertion"
	"github.com/teamgate/teamgate/sync/store"
)

// keysCLI runs `teamgate keys ARGS --config cfgPath`.
func keysCLI(t *testing.T, cfgPath string) func(args ...string) (string, error) {
	return func(args ...string) (string, error) {
		t.Helper()
		var out, errOut bytes.Buffer
		err := run(context.Background(), append(append([]string{"keys"}, args...), "--config", cfgPath), mapEnv(nil), &out, &errOut)
		return out.String() + errOut.String(), err
	}
}

// openKeysStore opens the config's database (migrated) and loads the key a
// first `teamgate serve` generates, sealed for secret.
func openKeysStore(t *testing.T, dbURL, secret string) (store.Store, string) {
	t.Helper()
	st, err := store.Open(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	ks, err := assertion.Load(t.Context(), assertion.LoadOptions{Algorithm: assertion.ES256, Store: keyAdapter{st}, Secrets: []string{secret}})
	if err != nil {
		t.Fatal(err)
	}
	return st, ks.Signing().ID
}

func keyByID(t *testing.T, st store.Store, kid string) (store.SigningKey, bool) {
	t.Helper()
	keys, err := st.SigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.ID == kid {
			return k, true
		}
	}
	return store.SigningKey{}, false
}

func rotatedKid(t *testing.T, out string) string {
	t.Helper()
	_, rest, ok := strings.Cut(out, "inserted ES256 key ")
	if !ok {
		t.Fatalf("no key in %q", out)
	}
	return strings.TrimSuffix(strings.Fields(rest)[0], ":")
}

// `keys rotate` stores the activation time as now + --publish-for, by
// default long enough for LiteLLM's JWKS cache (public_key_ttl, 10m) after
// key_refresh and the JWKS max-age; it refuses a publication shorter than
// key_refresh + max-age; `keys activate` refuses before that stored time
// even for a key created long ago.
func TestKeysRotatePublishFor(t *testing.T) {
	cfgPath, dbURL := writeKeysConfig(t)
	keys := keysCLI(t, cfgPath)
	st, _ := openKeysStore(t, dbURL, e2eSessKey)

	activateIn := func(kid string, from time.Time) time.Duration {
		t.Helper()
		k, ok := keyByID(t, st, kid)
		if !ok || k.ActivateAt == nil {
			t.Fatalf("key %s: present %v, activate_at %v", kid, ok, k.ActivateAt)
		}
		return k.ActivateAt.Sub(from)
	}
	for _, tc := range []struct {
		args      []string
		want      time.Duration
		wantNote  bool
		wantError string
	}{
		{args: nil, want: 20 * time.Minute}, // key_refresh 1m + 5m + 10m + 4m
		{args: []string{"--publish-for", "45m"}, want: 45 * time.Minute},
		{args: []string{"--publish-for", "8m"}, want: 8 * time.Minute, wantNote: true},
		{args: []string{"--publish-for", "5m"}, wantError: "shorter than assertion.key_refresh + the JWKS max-age (6m0s)"},
	} {
		before := time.Now()
		out, err := keys(append([]string{"rotate"}, tc.args...)...)
		if tc.wantError != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantError) {
				t.Errorf("rotate %v: %v %s, want %q", tc.args, err, out, tc.wantError)
			}
			continue
		}
		if err != nil {
			t.Fatalf("rotate %v: %v\n%s", tc.args, err, out)
		}
		kid := rotatedKid(t, out)
		if got := activateIn(kid, before); got < tc.want || got > tc.want+time.Minute {
			t.Errorf("rotate %v: activates %s after the command, want %s", tc.args, got, tc.want)
		}
		if strings.Contains(out, "public_key_ttl") != tc.wantNote {
			t.Errorf("rotate %v: LiteLLM note present %v, want %v:\n%s", tc.args, !tc.wantNote, tc.wantNote, out)
		}
		if _, err := keys("activate", kid); err == nil || !strings.Contains(err.Error(), "(--publish-for)") {
			t.Errorf("activate before activate_at: %v", err)
		}
		if _, err := keys("retire", kid); err != nil {
			t.Fatalf("retire the pending key: %v", err)
		}
	}

	// A key created an hour ago whose activation time is still ahead: the
	// stored time rules, not the creation time.
	rec, err := assertion.NewRotationKey(assertion.ES256, []string{e2eSessKey}, time.Now().Add(-time.Hour), time.Now().Add(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (keyAdapter{st}).InsertSigningKey(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	if _, err := keys("activate", rec.ID); err == nil || !strings.Contains(err.Error(), "Wait, or pass --force") {
		t.Errorf("activate an old key before its activate_at: %v", err)
	}
	if out, err := keys("activate", rec.ID, "--force"); err != nil {
		t.Errorf("activate --force: %v %s", err, out)
	}
}

// A config whose session.secret is not the replicas' cannot rotate (the
// replicas could not decrypt the key it would seal) nor activate a key it
// cannot decrypt.
func TestKeysRefuseAnotherSessionSecret(t *testing.T) {
	cfgPath, dbURL := writeKeysConfig(t)
	const replicaSecret = "the-replicas-session-secret-0123456789abcdef"
	st, _ := openKeysStore(t, dbURL, replicaSecret)
	keys := keysCLI(t, cfgPath) // configured with e2eSessKey
	if _, err := keys("rotate"); err == nil || !strings.Contains(err.Error(), "session.secret cannot decrypt") {
		t.Errorf("rotate with another secret: %v", err)
	}
	rec, err := assertion.NewRotationKey(assertion.ES256, []string{replicaSecret}, time.Now().Add(-time.Hour), time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (keyAdapter{st}).InsertSigningKey(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	if _, err := keys("activate", rec.ID, "--force"); err == nil || !strings.Contains(err.Error(), "session.secret cannot decrypt") {
		t.Errorf("activate a key this config cannot decrypt: %v", err)
	}
	if k, _ := keyByID(t, st, rec.ID); k.Active {
		t.Error("the key was activated")
	}
}

// activatingStore makes a replica activate kid right after `keys retire`
// read the keys: the race of the review's finding 5.
type activatingStore struct {
	store.Store
	kid  string
	once sync.Once
}

func (s *activatingStore) SigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	keys, err := s.Store.SigningKeys(ctx)
	s.once.Do(func() {
		if aerr := s.Store.ActivateSigningKey(ctx, s.kid, time.Now()); aerr != nil && err == nil {
			err = aerr
		}
	})
	return keys, err
}

// `keys retire` of a rotation key that a replica activates between the
// command's read and its delete retires nothing and says so: the store
// keeps exactly one active key.
func TestKeysRetireLosesToAnActivation(t *testing.T) {
	cfgPath, _ := writeKeysConfig(t)
	cfg, err := loadConfig(cfgPath, mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	forEachBackend(t, func(t *testing.T, st store.Store) {
		ks, err := assertion.Load(t.Context(), assertion.LoadOptions{Algorithm: assertion.ES256, Store: keyAdapter{st}, Secrets: []string{e2eSessKey}})
		if err != nil {
			t.Fatal(err)
		}
		old := ks.Signing().ID
		rec, err := assertion.NewRotationKey(assertion.ES256, []string{e2eSessKey}, time.Now(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := (keyAdapter{st}).InsertSigningKey(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		err = keysRetire(t.Context(), &activatingStore{Store: st, kid: rec.ID}, cfg, rec.ID, false, &out)
		if err == nil || !strings.Contains(err.Error(), "changed meanwhile") {
			t.Fatalf("retire racing an activation: %v %s", err, out.String())
		}
		if k, ok := keyByID(t, st, rec.ID); !ok || !k.Active {
			t.Errorf("the activated key: present %v, active %v", ok, k.Active)
		}
		if k, _ := keyByID(t, st, old); k.Active {
			t.Error("the old key is active again")
		}
	})
}

// With assertion.key_file set the stored keys only publish: the active
// stored key can be retired with --force (and only then); without
// key_file the signing key never can.
func TestKeysRetireStoredKeyUnderKeyFile(t *testing.T) {
	cfgPath, dbURL := writeKeysConfig(t)
	st, kid := openKeysStore(t, dbURL, e2eSessKey)
	if _, err := keysCLI(t, cfgPath)("retire", kid, "--force"); err == nil || !strings.Contains(err.Error(), "is the signing key") {
		t.Errorf("retire --force of the signing key without key_file: %v", err)
	}

	withFile, _ := withKeyFile(t, cfgPath)
	keys := keysCLI(t, withFile)
	if out, _ := keys("list"); !strings.Contains(out, "does not sign with this config") {
		t.Errorf("list under key_file:\n%s", out)
	}
	if _, err := keys("retire", kid); err == nil || !strings.Contains(err.Error(), "pass --force") {
		t.Errorf("retire without --force: %v", err)
	}
	if out, err := keys("retire", kid, "--force"); err != nil || !strings.Contains(out, "retired "+kid) {
		t.Fatalf("retire --force under key_file: %v %s", err, out)
	}
	if _, ok := keyByID(t, st, kid); ok {
		t.Error("the stored key is still there")
	}
}

// A kid is a base64url thumbprint and may start with "-": it is taken as
// the key id, not as a flag.
func TestKeysKidStartingWithADash(t *testing.T) {
	cfgPath, dbURL := writeKeysConfig(t)
	openKeysStore(t, dbURL, e2eSessKey)
	keys := keysCLI(t, cfgPath)
	for _, sub := range []string{"activate", "retire"} {
		if _, err := keys(sub, "-vved4TjNRogPngYiH", "--force"); err == nil || !strings.Contains(err.Error(), `no stored signing key "-vved4TjNRogPngYiH"`) {
			t.Errorf("%s of a kid starting with a dash: %v", sub, err)
		}
	}
}
