package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/teamgate/teamgate/gateway"
	"github.com/teamgate/teamgate/gateway/assertion"
	"github.com/teamgate/teamgate/gateway/assertion/assertiontest"
	"github.com/teamgate/teamgate/sync/store"
	"github.com/teamgate/teamgate/sync/store/storetest"
)

// Two running teamgates on one database: a key rotated through the store
// (as `teamgate keys rotate` does) is published by both after their next
// refresh, without a restart, and once activated both sign with it while
// the old key stays published.
func TestKeyRotationReachesEveryReplicaWithoutRestart(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			stores := storetest.Replicas(t, backend, 2)
			a, b := startE2E(t, stores[0], e2eOptions{}), startE2E(t, stores[1], e2eOptions{})
			old := a.app.gateway.RefreshSigningKeys // the refresh the ticker runs
			_, etag0 := fetchJWKS(t, b.gw.URL)

			now := time.Now()
			rec, err := assertion.NewRotationKey(assertion.ES256, []string{e2eSessKey}, now, now.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := (keyAdapter{stores[0]}).InsertSigningKey(t.Context(), rec); err != nil {
				t.Fatal(err)
			}
			if body, _ := fetchJWKS(t, b.gw.URL); strings.Contains(body, rec.ID) {
				t.Fatal("b published the new key before refreshing")
			}
			for _, e := range []*e2e{a, b} {
				if err := e.app.gateway.RefreshSigningKeys(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			bodyA, etagA := fetchJWKS(t, a.gw.URL)
			bodyB, etagB := fetchJWKS(t, b.gw.URL)
			if !strings.Contains(bodyB, rec.ID) || bodyA != bodyB || etagA != etagB || etagB == etag0 {
				t.Fatalf("after refresh: b has the key %v, same JWKS %v, same ETag %v, ETag changed %v",
					strings.Contains(bodyB, rec.ID), bodyA == bodyB, etagA == etagB, etagB != etag0)
			}
			verify := func(signer, jwks *e2e) string {
				t.Helper()
				alice := signer.browser()
				alice.signIn(signer.gw.URL, "/", id("alice"))
				alice.api("GET", signer.gw.URL+"/v1/models")
				jwt := signer.upstream.last(t).Header.Get("X-Teamgate-Assertion")
				v := assertiontest.Verifier{JWKSURL: jwks.gw.URL + gateway.JWKSPath,
					Issuer: signer.app.cfg.Server.PublicURL, Audience: signer.app.cfg.Upstream.URL}
				got, err := v.Verify(t.Context(), jwt)
				if err != nil {
					t.Fatalf("verify: %v", err)
				}
				return got.KeyID
			}
			oldKid := verify(a, b)
			if oldKid == rec.ID {
				t.Fatal("the rotation key signed before its activation time")
			}

			// Activated (as `teamgate keys activate --force` does): a signs
			// with it after its refresh; b's JWKS verifies it, and still
			// verifies b's assertions signed by the old key.
			if err := stores[1].ActivateSigningKey(t.Context(), rec.ID, time.Now()); err != nil {
				t.Fatal(err)
			}
			if err := old(t.Context()); err != nil {
				t.Fatal(err)
			}
			if kid := verify(a, b); kid != rec.ID {
				t.Errorf("a signs with %s after activation, want %s", kid, rec.ID)
			}
			if kid := verify(b, a); kid != oldKid {
				t.Errorf("b, not refreshed yet, signs with %s, want the old %s", kid, oldKid)
			}
			if body, _ := fetchJWKS(t, a.gw.URL); !strings.Contains(body, oldKid) {
				t.Error("the old key is no longer published")
			}
		})
	}
}

// writeKeysConfig writes a minimal valid config on a SQLite file.
// withKeyFile writes a fresh ES256 key as a PEM file and a copy of the
// config at cfgPath that sets assertion.key_file to it; it returns both paths.
func withKeyFile(t *testing.T, cfgPath string) (withFile, keyFile string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keyFile = filepath.Join(t.TempDir(), "assertion.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	withFile = filepath.Join(filepath.Dir(cfgPath), "with-key-file.yaml")
	if err := os.WriteFile(withFile, append(body, []byte("assertion:\n  key_file: \""+keyFile+"\"\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	return withFile, keyFile
}

func writeKeysConfig(t *testing.T) (path, dbURL string) {
	t.Helper()
	dir := t.TempDir()
	dbURL = "sqlite:" + filepath.Join(dir, "t.db")
	path = filepath.Join(dir, "config.yaml")
	body := "entra:\n  tenant_id: tid\n  client_id: cid\n  client_secret: s\nsession:\n  secret: \"" + e2eSessKey + "\"\n" +
		"database:\n  url: \"" + dbURL + "\"\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, dbURL
}

func TestKeysCommands(t *testing.T) {
	cfgPath, dbURL := writeKeysConfig(t)
	keys := func(args ...string) (string, error) {
		t.Helper()
		var out, errOut bytes.Buffer
		err := run(context.Background(), append(append([]string{"keys"}, args...), "--config", cfgPath), mapEnv(nil), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	// The key a first `teamgate serve` generates.
	st, err := store.Open(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if out, _ := keys("list"); !strings.Contains(out, "no stored signing keys") {
		t.Errorf("list of an empty store: %s", out)
	}
	first, err := assertion.Load(t.Context(), assertion.LoadOptions{Algorithm: assertion.ES256, Store: keyAdapter{st}, Secrets: []string{e2eSessKey}})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	oldKid := first.Signing().ID

	out, err := keys("rotate")
	if err != nil || !strings.Contains(out, "inserted ES256 key ") || !strings.Contains(out, "signs from") {
		t.Fatalf("rotate: %v\n%s", err, out)
	}
	newKid := strings.Fields(strings.SplitN(out, "inserted ES256 key ", 2)[1])[0]
	newKid = strings.TrimSuffix(newKid, ":")
	if out, err := keys("rotate"); err == nil || !strings.Contains(out+err.Error(), "already waiting to sign") {
		t.Errorf("a second rotate: %v %s", err, out)
	}
	out, _ = keys("list")
	for _, w := range []string{oldKid + "  ES256  active", newKid + "  ES256  next", "published; signs from"} {
		if !strings.Contains(out, w) {
			t.Errorf("list lacks %q:\n%s", w, out)
		}
	}

	// Activation before the key has been published long enough is refused.
	if _, err := keys("activate", newKid); err == nil || !strings.Contains(err.Error(), "Wait, or pass --force") {
		t.Errorf("early activate: %v", err)
	}
	if out, err := keys("activate", newKid, "--force"); err != nil || !strings.Contains(out, "is the signing key") {
		t.Fatalf("activate --force: %v %s", err, out)
	}
	out, _ = keys("list")
	if !strings.Contains(out, newKid+"  ES256  active") || !strings.Contains(out, oldKid+"  ES256  inactive") || !strings.Contains(out, "may be retired from") {
		t.Errorf("list after activation:\n%s", out)
	}

	// Retiring: never the signing key; the old one only after it can no
	// longer be in use, unless forced.
	if _, err := keys("retire", newKid); err == nil || !strings.Contains(err.Error(), "is the signing key") {
		t.Errorf("retire the signing key: %v", err)
	}
	if _, err := keys("retire", oldKid); err == nil || !strings.Contains(err.Error(), "Wait, or pass --force") {
		t.Errorf("early retire: %v", err)
	}
	if out, err := keys("retire", oldKid, "--force"); err != nil || !strings.Contains(out, "retired "+oldKid) {
		t.Errorf("retire --force: %v %s", err, out)
	}
	if out, _ := keys("list"); strings.Contains(out, oldKid) {
		t.Errorf("the retired key is still listed:\n%s", out)
	}
	if _, err := keys("retire", "nope"); err == nil || !strings.Contains(err.Error(), `no stored signing key "nope"`) {
		t.Errorf("retire an unknown key: %v", err)
	}
}

func TestKeysUsage(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		wantErr  string
		wantCode int
	}{
		{[]string{"keys"}, "a command is required", 2},
		{[]string{"keys", "--help"}, flag.ErrHelp.Error(), 0},
		{[]string{"keys", "rotate", "--help"}, flag.ErrHelp.Error(), 0},
		{[]string{"keys", "activate", "--help"}, flag.ErrHelp.Error(), 0},
		{[]string{"keys", "bogus"}, `unknown command "bogus"`, 2},
		{[]string{"keys", "retire", "--config", "x.yaml"}, "the key id (KID) is required", 2},
		{[]string{"keys", "list", "extra"}, `unexpected argument "extra"`, 2},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), tc.args, mapEnv(nil), &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || exitCode(err) != tc.wantCode {
			t.Errorf("%v: %v (exit %d), want %q (exit %d)", tc.args, err, exitCode(err), tc.wantErr, tc.wantCode)
		}
		if errors.Is(err, flag.ErrHelp) && !strings.Contains(errOut.String(), "keys") {
			t.Errorf("%v: no usage printed: %s", tc.args, errOut.String())
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"help"}, mapEnv(nil), &out, &out); err != nil || !strings.Contains(out.String(), "teamgate keys") {
		t.Errorf("help does not list keys: %v", err)
	}
}
