package assertion_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/teamgate/teamgate/gateway/assertion"
)

const secret = "a-session-secret-of-at-least-32-bytes!"

// memKeys is an in-memory KeyStore with the database's rule: a duplicate
// kid, or a second active key of one algorithm, inserts nothing.
type memKeys struct {
	mu      sync.Mutex
	keys    []assertion.StoredKey
	reads   int
	reseals int
	readErr error
}

func (m *memKeys) SigningKeys(context.Context) ([]assertion.StoredKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	if m.readErr != nil {
		return nil, m.readErr
	}
	out := slices.Clone(m.keys)
	slices.SortStableFunc(out, func(a, b assertion.StoredKey) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

func (m *memKeys) ResealSigningKey(_ context.Context, kid string, sealed []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.keys {
		if m.keys[i].ID == kid {
			m.keys[i].Sealed = sealed
			m.reseals++
			return nil
		}
	}
	return errors.New("no such key")
}

// ActivateSigningKey follows the store's rule (sync/store/keys.go).
func (m *memKeys) ActivateSigningKey(_ context.Context, kid string, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := slices.IndexFunc(m.keys, func(k assertion.StoredKey) bool { return k.ID == kid })
	if i < 0 {
		return errors.New("no such key")
	}
	for j := range m.keys {
		o := &m.keys[j]
		if j == i || o.Algorithm != m.keys[i].Algorithm || !(o.Active || (o.ActivateAt != nil && !o.ActivateAt.After(now))) {
			continue
		}
		if o.Active {
			o.DeactivatedAt = &now
		}
		o.Active, o.ActivateAt = false, nil
	}
	m.keys[i].Active, m.keys[i].ActivateAt, m.keys[i].DeactivatedAt = true, nil, nil
	return nil
}

func (m *memKeys) InsertSigningKey(_ context.Context, k assertion.StoredKey) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.keys {
		if o.ID == k.ID || (k.Active && o.Active && o.Algorithm == k.Algorithm) {
			return false, nil
		}
	}
	m.keys = append(m.keys, k)
	return true, nil
}

func load(t testing.TB, o assertion.LoadOptions) *assertion.KeySet {
	t.Helper()
	if o.Algorithm == "" {
		o.Algorithm = assertion.ES256
	}
	ks, err := assertion.Load(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func jwksKids(t testing.TB, ks *assertion.KeySet) []string {
	t.Helper()
	var kids []string
	for _, k := range keySet(t, ks).Keys {
		kids = append(kids, k.KeyID)
	}
	return kids
}

func TestLoadInMemoryWithoutStoreOrFile(t *testing.T) {
	a, b := load(t, assertion.LoadOptions{}), load(t, assertion.LoadOptions{})
	if a.Source() != assertion.SourceMemory || a.Signing().ID == b.Signing().ID {
		t.Errorf("source %s; two processes share kid %v", a.Source(), a.Signing().ID == b.Signing().ID)
	}
}

func TestLoadGeneratesOnceAndEveryReplicaSignsWithIt(t *testing.T) {
	st := &memKeys{}
	first := load(t, assertion.LoadOptions{Store: st, Secrets: []string{secret}, Now: clockAt(t0)})
	if first.Source() != assertion.SourceDatabase || len(st.keys) != 1 {
		t.Fatalf("source %s, %d stored keys", first.Source(), len(st.keys))
	}
	sk := st.keys[0]
	if !sk.Active || sk.ID != first.Signing().ID || !sk.CreatedAt.Equal(t0) || strings.Contains(sk.PublicJWK, `"d"`) {
		t.Errorf("stored key %+v: want active, the signing kid, created at t0, no private part in the public JWK", sk)
	}
	// A restart, or a second replica, reads the same key.
	again := load(t, assertion.LoadOptions{Store: st, Secrets: []string{secret}})
	body1, etag1 := first.JWKS()
	body2, etag2 := again.JWKS()
	if again.Signing().ID != first.Signing().ID || string(body1) != string(body2) || etag1 != etag2 || len(st.keys) != 1 {
		t.Errorf("second load: kid %s vs %s, same JWKS %v, same ETag %v, %d keys",
			again.Signing().ID, first.Signing().ID, string(body1) == string(body2), etag1 == etag2, len(st.keys))
	}
}

func TestConcurrentFirstStartsConverge(t *testing.T) {
	st := &memKeys{}
	const replicas = 16
	kids := make([]string, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() {
			ks, err := assertion.Load(context.Background(), assertion.LoadOptions{Algorithm: assertion.ES256, Store: st, Secrets: []string{secret}})
			if err != nil {
				t.Error(err)
				return
			}
			kids[i] = ks.Signing().ID
		})
	}
	wg.Wait()
	if len(st.keys) != 1 || slices.ContainsFunc(kids, func(k string) bool { return k != st.keys[0].ID }) {
		t.Errorf("replicas sign with %v; store holds %d keys", kids, len(st.keys))
	}
}

func TestLoadWithAChangedSecretExplains(t *testing.T) {
	st := &memKeys{}
	load(t, assertion.LoadOptions{Store: st, Secrets: []string{secret}})
	_, err := assertion.Load(t.Context(), assertion.LoadOptions{Algorithm: assertion.ES256, Store: st, Secrets: []string{secret + "-rotated"}})
	if !errors.Is(err, assertion.ErrUnseal) || !strings.Contains(err.Error(), "session.secret") || strings.Contains(err.Error(), secret) {
		t.Fatalf("err = %v, want ErrUnseal naming session.secret (and not quoting it)", err)
	}
}

func TestLoadResealsAcrossSecretRotation(t *testing.T) {
	const next = "the-next-session-secret-also-32-bytes!"
	st := &memKeys{}
	kid := load(t, assertion.LoadOptions{Store: st, Secrets: []string{secret}}).Signing().ID
	steps := []struct {
		name         string
		secrets      []string
		wantResealed bool
	}{
		{"restart, nothing changed", []string{secret}, false},
		{"new secret first, old kept", []string{next, secret}, true},
		{"another replica, same list", []string{next, secret}, false},
		{"old secret dropped", []string{next}, true},
		{"restart", []string{next}, false},
	}
	for _, st2 := range steps {
		ks := load(t, assertion.LoadOptions{Store: st, Secrets: st2.secrets})
		if ks.Signing().ID != kid || ks.Resealed() != st2.wantResealed {
			t.Errorf("%s: kid %s (want %s), resealed %v (want %v)", st2.name, ks.Signing().ID, kid, ks.Resealed(), st2.wantResealed)
		}
	}
	if st.reseals != 2 || len(st.keys) != 1 {
		t.Errorf("%d reseals, %d keys", st.reseals, len(st.keys))
	}
}

func TestLoadPublishesEveryStoredKeyAndSignsWithTheNewestActive(t *testing.T) {
	st := &memKeys{}
	seal, _ := assertion.NewSealer(secret)
	store := func(alg string, created time.Time, active bool) string {
		k, err := assertion.GenerateKey(alg)
		if err != nil {
			t.Fatal(err)
		}
		sealed, _ := seal.Seal(k)
		pub, _ := k.PublicJWK().MarshalJSON()
		st.keys = append(st.keys, assertion.StoredKey{ID: k.ID, Algorithm: alg, Sealed: sealed, PublicJWK: string(pub), CreatedAt: created, Active: active})
		return k.ID
	}
	retired := store(assertion.ES256, t0, false)
	current := store(assertion.ES256, t0.Add(time.Hour), true)
	rsa := store(assertion.RS256, t0.Add(2*time.Hour), true)

	ks := load(t, assertion.LoadOptions{Store: st, Secrets: []string{secret}})
	if ks.Signing().ID != current {
		t.Errorf("signs with %s, want the active ES256 key %s", ks.Signing().ID, current)
	}
	if got, want := jwksKids(t, ks), []string{current, rsa, retired}; !slices.Equal(got, want) {
		t.Errorf("JWKS kids %v, want %v (signing key first, then newest first)", got, want)
	}
}

func writePEM(t testing.TB, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadKeyFile(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	rs, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecPath := writePEM(t, "PRIVATE KEY", ecDER)
	rsaPath := writePEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rs))

	tests := []struct {
		name    string
		path    string
		alg     string
		wantErr string
	}{
		{"EC PKCS#8 signs ES256", ecPath, assertion.ES256, ""},
		{"RSA PKCS#1 signs RS256", rsaPath, assertion.RS256, ""},
		{"RSA key with alg ES256", rsaPath, assertion.ES256, "assertion.alg: ES256 does not match"},
		{"EC key with alg RS256", ecPath, assertion.RS256, "set assertion.alg: ES256"},
		{"missing file", filepath.Join(t.TempDir(), "absent.pem"), assertion.ES256, "assertion.key_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &memKeys{}
			ks, err := assertion.Load(t.Context(), assertion.LoadOptions{Algorithm: tt.alg, KeyFile: tt.path, Store: st, Secrets: []string{secret}})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ks.Source() != assertion.SourceFile || ks.Signing().Algorithm != tt.alg || len(st.keys) != 0 {
				t.Errorf("source %s alg %s, %d keys generated into the store", ks.Source(), ks.Signing().Algorithm, len(st.keys))
			}
			s, err := assertion.NewSigner(ks.Signing(), assertion.Options{Issuer: issuer, Audience: audience, Lifetime: time.Minute, TeamsMaxBytes: 64, Now: clockAt(t0)})
			if err != nil {
				t.Fatal(err)
			}
			tok, _ := s.Sign(assertion.Subject{UserID: "u"}, "")
			if _, err := verifier(t0).VerifyWith(keySet(t, ks), tok.JWT); err != nil {
				t.Errorf("the file key's assertion does not verify: %v", err)
			}
		})
	}
}

// Moving from a generated key to a file key keeps the generated key
// published, so assertions it signed still verify.
func TestKeyFileKeepsStoredKeysPublished(t *testing.T) {
	st := &memKeys{}
	generated := load(t, assertion.LoadOptions{Store: st, Secrets: []string{secret}}).Signing().ID
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(ec)
	ks := load(t, assertion.LoadOptions{Store: st, Secrets: []string{secret}, KeyFile: writePEM(t, "EC PRIVATE KEY", der)})
	if got := jwksKids(t, ks); len(got) != 2 || got[0] != ks.Signing().ID || got[1] != generated {
		t.Errorf("JWKS kids %v, want [file key, %s]", got, generated)
	}
}

func TestLoadFailsClosed(t *testing.T) {
	boom := errors.New("database down")
	if _, err := assertion.Load(t.Context(), assertion.LoadOptions{Algorithm: assertion.ES256, Store: &memKeys{readErr: boom}, Secrets: []string{secret}}); !errors.Is(err, boom) {
		t.Errorf("store failure: err = %v", err)
	}
	st := &memKeys{}
	load(t, assertion.LoadOptions{Store: st, Secrets: []string{secret}})
	st.keys[0].PublicJWK = `{"kty":"EC"}`
	if _, err := assertion.Load(t.Context(), assertion.LoadOptions{Algorithm: assertion.RS256, Store: st, Secrets: []string{secret}}); err == nil {
		t.Error("a corrupt stored public key was published")
	}
}
