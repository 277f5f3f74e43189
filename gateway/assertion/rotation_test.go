package assertion_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/teamgate/teamgate/gateway/assertion"
)

// movingClock is a clock the test moves by hand.
type movingClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *movingClock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *movingClock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func refresh(t *testing.T, ks *assertion.KeySet) bool {
	t.Helper()
	changed, err := ks.Refresh(t.Context())
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	return changed
}

// rotate inserts a rotation key as `teamgate keys rotate` does.
func rotate(t *testing.T, st *memKeys, now, activateAt time.Time) string {
	t.Helper()
	rec, err := assertion.NewRotationKey(assertion.ES256, []string{secret}, now, activateAt)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := st.InsertSigningKey(t.Context(), rec); !ok || err != nil {
		t.Fatalf("insert rotation key: %v, %v", ok, err)
	}
	return rec.ID
}

// Two replicas on one store: a key rotated in the store is published by
// both after their next refresh, signs nowhere before its activation time,
// and becomes the signing key of each at its first refresh after that,
// while the old key stays published.
func TestRefreshPublishesARotatedKeyThenSignsWithIt(t *testing.T) {
	st := &memKeys{}
	clock := &movingClock{t: t0}
	opts := assertion.LoadOptions{Store: st, Secrets: []string{secret}, Now: clock.now}
	a, b := load(t, opts), load(t, opts)
	old := a.Signing().ID
	if refresh(t, a) {
		t.Error("Refresh with nothing new reported a change")
	}
	_, etag0 := b.JWKS()

	// The default publication covers LiteLLM's default JWKS cache (10m)
	// after key_refresh and the JWKS max-age, with a margin.
	activateAt := t0.Add(assertion.DefaultPublish(time.Minute, 5*time.Minute))
	if !activateAt.Equal(t0.Add(20 * time.Minute)) {
		t.Errorf("default activation = %s, want t0 + 20m", activateAt)
	}
	next := rotate(t, st, t0, activateAt)
	if slices.Contains(jwksKids(t, b), next) {
		t.Fatal("published before any refresh")
	}
	clock.set(t0.Add(time.Minute))
	if !refresh(t, b) || !refresh(t, a) {
		t.Error("Refresh after a rotation reported no change")
	}
	for name, ks := range map[string]*assertion.KeySet{"a": a, "b": b} {
		if kids := jwksKids(t, ks); !slices.Equal(kids, []string{old, next}) || ks.Signing().ID != old {
			t.Errorf("%s before activation: JWKS %v, signing %s; want [old next], signing old", name, kids, ks.Signing().ID)
		}
	}
	if _, etag := b.JWKS(); etag == etag0 {
		t.Error("the ETag did not change with the JWKS")
	}

	// One second early: nothing happens.
	clock.set(activateAt.Add(-time.Second))
	refresh(t, a)
	if a.Signing().ID != old {
		t.Fatal("the rotation key signed before its activation time")
	}
	clock.set(activateAt)
	if !refresh(t, a) || a.Signing().ID != next {
		t.Fatalf("a signs with %s after activation, want %s", a.Signing().ID, next)
	}
	if b.Signing().ID != old {
		t.Error("b changed key without a refresh")
	}
	refresh(t, b)
	if b.Signing().ID != next {
		t.Errorf("b signs with %s after its refresh, want %s", b.Signing().ID, next)
	}
	ja, ea := a.JWKS()
	jb, eb := b.JWKS()
	if !bytes.Equal(ja, jb) || ea != eb {
		t.Error("the two replicas publish different JWKS")
	}
	if kids := jwksKids(t, a); !slices.Equal(kids, []string{next, old}) {
		t.Errorf("JWKS after activation = %v, want [next old]", kids)
	}
	for _, k := range st.keys {
		if k.ID == old && (k.Active || k.DeactivatedAt == nil || !k.DeactivatedAt.Equal(activateAt)) {
			t.Errorf("old key after activation: %+v", k)
		}
	}

	// A replica starting now signs with the new key at once.
	if c := load(t, opts); c.Signing().ID != next {
		t.Errorf("a new replica signs with %s", c.Signing().ID)
	}
	// Retired (its row deleted), the old key leaves the JWKS at the next refresh.
	st.mu.Lock()
	st.keys = slices.DeleteFunc(st.keys, func(k assertion.StoredKey) bool { return k.ID == old })
	st.mu.Unlock()
	refresh(t, a)
	if kids := jwksKids(t, a); !slices.Equal(kids, []string{next}) {
		t.Errorf("JWKS after retiring the old key = %v", kids)
	}
}

// Of two due rotations, the newest wins and the older one is void: it is
// never activated afterwards.
func TestRefreshActivatesTheNewestDueKeyOnly(t *testing.T) {
	st := &memKeys{}
	clock := &movingClock{t: t0}
	ks := load(t, assertion.LoadOptions{Store: st, Secrets: []string{secret}, Now: clock.now})
	first := rotate(t, st, t0.Add(time.Second), t0.Add(time.Minute))
	second := rotate(t, st, t0.Add(2*time.Second), t0.Add(2*time.Minute))
	clock.set(t0.Add(3 * time.Minute))
	refresh(t, ks)
	if ks.Signing().ID != second {
		t.Fatalf("signing %s, want the newest due key", ks.Signing().ID)
	}
	clock.set(t0.Add(time.Hour))
	refresh(t, ks)
	if ks.Signing().ID != second || !slices.Contains(jwksKids(t, ks), first) {
		t.Errorf("signing %s, JWKS %v: the void rotation must stay published and never sign", ks.Signing().ID, jwksKids(t, ks))
	}
}

// publish_key_files: public or private PEM keys are published after the
// others and never sign; a bad file fails the load naming the key.
func TestPublishKeyFiles(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsa1, err1 := rsa.GenerateKey(rand.Reader, 2048)
	rsa2, err2 := rsa.GenerateKey(rand.Reader, 2048)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	der, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubFile := writePEM(t, "PUBLIC KEY", der)
	rsaFile := writePEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa1))
	rsaPubFile := writePEM(t, "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsa2.PublicKey))
	st := &memKeys{}
	ks := load(t, assertion.LoadOptions{Store: st, Secrets: []string{secret}, Now: clockAt(t0), PublishKeyFiles: []string{pubFile, rsaFile, rsaPubFile}})
	set := keySet(t, ks)
	if len(set.Keys) != 4 || set.Keys[0].KeyID != ks.Signing().ID {
		t.Fatalf("JWKS has %d keys, first %s; want the signing key first, then the 3 files", len(set.Keys), set.Keys[0].KeyID)
	}
	wantAlg := []string{assertion.ES256, assertion.RS256, assertion.RS256}
	for i, k := range set.Keys[1:] {
		if !k.IsPublic() || k.Algorithm != wantAlg[i] || k.Use != "sig" || k.KeyID == "" {
			t.Errorf("published file key %d: alg %s use %s kid %q public %v", i, k.Algorithm, k.Use, k.KeyID, k.IsPublic())
		}
	}
	if refresh(t, ks) || len(keySet(t, ks).Keys) != 4 {
		t.Error("the file keys did not survive a refresh unchanged")
	}

	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = assertion.Load(t.Context(), assertion.LoadOptions{Algorithm: assertion.ES256, PublishKeyFiles: []string{bad}})
	if err == nil || !strings.Contains(err.Error(), "assertion.publish_key_files "+bad) {
		t.Errorf("bad file: %v", err)
	}
}
