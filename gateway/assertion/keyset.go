package assertion

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// StoredKey is a generated signing key as kept in the database.
type StoredKey struct {
	ID        string // kid (RFC 7638 thumbprint)
	Algorithm string // ES256 or RS256
	Sealed    []byte // the private key, sealed by Sealer
	PublicJWK string // the published JWK (JSON, public part only)
	CreatedAt time.Time
	// Active keys may sign; the store admits at most one active key per
	// algorithm, which is what makes concurrent first starts converge.
	// Inactive keys are still published until their row is deleted, so
	// assertions they signed keep verifying during a rotation.
	Active bool
	// ActivateAt: a key `teamgate keys rotate` inserted, published but not
	// signing until then; the first replica to refresh after it activates
	// the key. Nil otherwise.
	ActivateAt *time.Time
	// DeactivatedAt is when the key stopped signing (nil while it signs, or
	// when it never did or is older than rotation).
	DeactivatedAt *time.Time
}

// KeyStore persists generated keys (sync/store implements it through an
// adapter in cmd/teamgate).
type KeyStore interface {
	// SigningKeys returns every stored key, newest first.
	SigningKeys(ctx context.Context) ([]StoredKey, error)
	// InsertSigningKey stores k unless its id exists or, k being active, an
	// active key of its algorithm exists (INSERT … ON CONFLICT DO NOTHING);
	// it reports whether k was inserted.
	InsertSigningKey(ctx context.Context, k StoredKey) (bool, error)
	// ResealSigningKey replaces the sealed private key of kid (after
	// session.secret was rotated); the key itself does not change.
	ResealSigningKey(ctx context.Context, kid string, sealed []byte) error
	// ActivateSigningKey makes kid the active key of its algorithm at now,
	// the previous one inactive since now; idempotent.
	ActivateSigningKey(ctx context.Context, kid string, now time.Time) error
}

// Key sources, for the start-up log.
const (
	SourceFile     = "key_file"
	SourceDatabase = "database"
	SourceMemory   = "memory"
)

// LoadOptions say where the signing key comes from.
type LoadOptions struct {
	Algorithm string // ES256 or RS256
	// KeyFile is a PEM private key; when set it signs, and stored keys are
	// only published (so a switch from a generated key to a file key does
	// not break assertions already issued).
	KeyFile string
	// Store holds generated keys; nil (tests, single process) means a key
	// generated in memory that no other process knows.
	Store KeyStore
	// Secrets are session.secret's entries, the current one first: stored
	// keys are sealed for each of them.
	Secrets []string
	// PublishKeyFiles are PEM files with a public or private key (EC P-256
	// or RSA) that are published in the JWKS but never sign: the previous
	// key_file after a replacement, say, so verifiers keep accepting what
	// it signed.
	PublishKeyFiles []string
	Now             func() time.Time
	// Log receives the error about a due rotation key this process cannot
	// decrypt (nil: slog.Default()).
	Log *slog.Logger
}

// KeySet is the signing key and the published JWKS. Refresh re-reads the
// stored keys, so that a key another replica (or `teamgate keys rotate`)
// inserted is published here too, and a rotation whose time has come makes
// its key the signing key. It is safe for concurrent use.
type KeySet struct {
	o        LoadOptions
	extra    []jose.JSONWebKey // PublishKeyFiles: published, never signing
	source   string
	resealed bool
	mu       sync.Mutex // serialises Refresh
	state    atomic.Pointer[keyState]
}

// keyState is one immutable view: the signing key and the JWKS built with it.
type keyState struct {
	signing *Key
	jwks    []byte
	etag    string
}

// Load picks the signing key and builds the JWKS. With a store and no key
// file, the first replica to start generates a key and inserts it; a replica
// racing it loses the insert and re-reads the winner's key, so all replicas
// sign with one key. A rotation key whose ActivateAt has passed is made the
// active key first.
func Load(ctx context.Context, o LoadOptions) (*KeySet, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	ks := &KeySet{o: o}
	var err error
	if ks.extra, err = loadPublishFiles(o.PublishKeyFiles); err != nil {
		return nil, err
	}
	var signing *Key
	if o.KeyFile != "" {
		if signing, err = loadKeyFile(o.KeyFile, o.Algorithm); err != nil {
			return nil, err
		}
		ks.source = SourceFile
	}
	var stored []StoredKey
	if o.Store != nil {
		if stored, err = o.Store.SigningKeys(ctx); err != nil {
			return nil, fmt.Errorf("assertion: read signing keys: %w", err)
		}
		if signing == nil {
			if stored, err = promoteDue(ctx, o, stored); err != nil {
				return nil, err
			}
			if signing, stored, ks.resealed, err = fromStore(ctx, o, stored); err != nil {
				return nil, err
			}
			ks.source = SourceDatabase
		}
	}
	if signing == nil {
		if signing, err = GenerateKey(o.Algorithm); err != nil {
			return nil, fmt.Errorf("assertion: %w", err)
		}
		ks.source = SourceMemory
	}
	st, err := buildJWKS(signing, stored, ks.extra)
	if err != nil {
		return nil, err
	}
	ks.state.Store(st)
	return ks, nil
}

// Refresh re-reads the stored keys and rebuilds the JWKS (and its ETag)
// from them. With keys from the database it first activates a rotation key
// that is due, then signs with the active key from then on. It reports
// whether the signing key or the JWKS changed. Without a store it does
// nothing. On an error the key set is left as it was.
func (ks *KeySet) Refresh(ctx context.Context) (changed bool, err error) {
	if ks.o.Store == nil {
		return false, nil
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	cur := ks.state.Load()
	stored, err := ks.o.Store.SigningKeys(ctx)
	if err != nil {
		return false, fmt.Errorf("assertion: read signing keys: %w", err)
	}
	signing := cur.signing
	if ks.source == SourceDatabase {
		if stored, err = promoteDue(ctx, ks.o, stored); err != nil {
			return false, err
		}
		// No active key (its row was deleted by hand): keep signing with
		// the current one, which stays published.
		if a := findActive(stored, ks.o.Algorithm); a != nil && a.ID != signing.ID {
			sealer, err := NewSealer(ks.o.Secrets...)
			if err != nil {
				return false, fmt.Errorf("assertion: %w", err)
			}
			k, _, err := sealer.Open(a.ID, a.Algorithm, a.Sealed)
			if err != nil {
				return false, fmt.Errorf("assertion: new active signing key %s: %w", a.ID, err)
			}
			signing = k
		}
	}
	st, err := buildJWKS(signing, stored, ks.extra)
	if err != nil {
		return false, err
	}
	if st.etag == cur.etag && st.signing.ID == cur.signing.ID {
		return false, nil
	}
	ks.state.Store(st)
	return true, nil
}

// promoteDue activates the newest inactive key of the algorithm whose
// ActivateAt has passed, and re-reads the keys. Replicas doing this at
// the same time agree (ActivateSigningKey is idempotent). The key is
// opened (and sealed again for the current secrets if needed) first: a key
// this process cannot decrypt is never made the active one, since every
// replica would then fail to load it; the error is logged and the current
// key keeps signing.
func promoteDue(ctx context.Context, o LoadOptions, stored []StoredKey) ([]StoredKey, error) {
	now := o.Now()
	for _, k := range stored { // newest first
		if k.Active || k.Algorithm != o.Algorithm || k.ActivateAt == nil || k.ActivateAt.After(now) {
			continue
		}
		key, current, err := openDue(o, k)
		if err != nil {
			cause := "the stored key is damaged"
			if errors.Is(err, ErrUnseal) {
				cause = "session.secret here differs from the one `teamgate keys rotate` ran with"
			}
			o.Log.Error("a due signing key cannot be decrypted, so it is not activated and the current key keeps signing; "+
				"if `teamgate keys rotate` ran with another session.secret, retire this key (teamgate keys retire KID) "+
				"and rotate again with the replicas' config",
				"kid", k.ID, "activate_at", k.ActivateAt.UTC(), "likely_cause", cause, "error", err)
			return stored, nil
		}
		if !current {
			if err := resealKey(ctx, o, key); err != nil {
				return nil, err
			}
		}
		if err := o.Store.ActivateSigningKey(ctx, k.ID, now); err != nil {
			return nil, fmt.Errorf("assertion: activate signing key %s: %w", k.ID, err)
		}
		stored, err := o.Store.SigningKeys(ctx)
		if err != nil {
			return nil, fmt.Errorf("assertion: read signing keys: %w", err)
		}
		return stored, nil
	}
	return stored, nil
}

// openDue decrypts the rotation key k with the configured secrets;
// current is false when it was sealed for an older secret.
func openDue(o LoadOptions, k StoredKey) (key *Key, current bool, err error) {
	sealer, err := NewSealer(o.Secrets...)
	if err != nil {
		return nil, false, fmt.Errorf("assertion: %w", err)
	}
	return sealer.Open(k.ID, k.Algorithm, k.Sealed)
}

// resealKey seals k for the current secret, so that it stays readable
// once the old secret is dropped.
func resealKey(ctx context.Context, o LoadOptions, k *Key) error {
	sealer, err := NewSealer(o.Secrets...)
	if err != nil {
		return fmt.Errorf("assertion: %w", err)
	}
	sealed, err := sealer.Seal(k)
	if err != nil {
		return fmt.Errorf("assertion: %w", err)
	}
	if err := o.Store.ResealSigningKey(ctx, k.ID, sealed); err != nil {
		return fmt.Errorf("assertion: re-seal signing key %s: %w", k.ID, err)
	}
	return nil
}

func loadKeyFile(path, alg string) (*Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("assertion.key_file: %w", err)
	}
	priv, err := ParsePrivateKeyPEM(data)
	clear(data)
	if err != nil {
		return nil, fmt.Errorf("assertion.key_file %s: %w", path, err)
	}
	if got := AlgorithmOf(priv); got != alg {
		return nil, fmt.Errorf("assertion.alg: %s does not match the key in assertion.key_file %s, which signs %s (set assertion.alg: %s)", alg, path, got, got)
	}
	k, err := NewKey(priv, alg)
	if err != nil {
		return nil, fmt.Errorf("assertion.key_file %s: %w", path, err)
	}
	return k, nil
}

// fromStore returns the newest active stored key of the algorithm. When
// there is none it activates the key waiting to sign (activatePending), or
// else generates and inserts one. A key whose seal
// does not match the configured secrets (session.secret was rotated) is
// sealed again, so that it stays readable once the old secret is dropped.
func fromStore(ctx context.Context, o LoadOptions, stored []StoredKey) (k *Key, _ []StoredKey, resealed bool, err error) {
	sealer, err := NewSealer(o.Secrets...)
	if err != nil {
		return nil, nil, false, fmt.Errorf("assertion: %w", err)
	}
	active := findActive(stored, o.Algorithm)
	if active == nil {
		// A key `teamgate keys rotate` inserted (under key_file, say) has
		// been published since; a generated key has not.
		if stored, err = activatePending(ctx, o, sealer, stored); err != nil {
			return nil, nil, false, err
		}
		active = findActive(stored, o.Algorithm)
	}
	if active == nil {
		if len(stored) > 0 || len(o.PublishKeyFiles) > 0 {
			o.Log.Warn("no stored "+o.Algorithm+" signing key is active or waiting to sign, so a new key is generated and signs at once: "+
				"verifiers that cached the JWKS before (LiteLLM: public_key_ttl, 10m) reject its assertions until they fetch it again; "+
				"to avoid this, run `teamgate keys rotate` while the current key still signs (README, Signed identity assertion)",
				"stored_keys", len(stored), "publish_key_files", len(o.PublishKeyFiles))
		}
		if stored, err = insertNewKey(ctx, o, sealer); err != nil {
			return nil, nil, false, err
		}
		if active = findActive(stored, o.Algorithm); active == nil {
			return nil, nil, false, fmt.Errorf("assertion: no active %s signing key after inserting one", o.Algorithm)
		}
	}
	k, current, err := sealer.Open(active.ID, active.Algorithm, active.Sealed)
	if errors.Is(err, ErrUnseal) {
		return nil, nil, false, fmt.Errorf("assertion: stored signing key %s cannot be decrypted: session.secret has changed since it was generated. "+
			"Put the previous secret back (after the new one, as a list), or delete the key's row from signing_keys so that a new key is generated, or set assertion.key_file: %w", active.ID, err)
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("assertion: stored signing key: %w", err)
	}
	if !current {
		if err := resealKey(ctx, o, k); err != nil {
			return nil, nil, false, err
		}
		resealed = true
	}
	return k, stored, resealed, nil
}

// activatePending makes the newest key of the algorithm that waits to sign
// (ActivateAt set, see `teamgate keys rotate`) the active one when no key
// is active, even before its time: it has been published since it was
// inserted, unlike a key generated now. This is the start of a replica
// whose assertion.key_file was removed after a rotation. A pending key this
// process cannot decrypt is an error rather than a reason to generate one.
func activatePending(ctx context.Context, o LoadOptions, sealer *Sealer, stored []StoredKey) ([]StoredKey, error) {
	var p *StoredKey
	for i := range stored { // newest first
		if k := &stored[i]; !k.Active && k.Algorithm == o.Algorithm && k.ActivateAt != nil {
			p = k
			break
		}
	}
	if p == nil {
		return stored, nil
	}
	k, current, err := sealer.Open(p.ID, p.Algorithm, p.Sealed)
	if err != nil {
		return nil, fmt.Errorf("assertion: no stored signing key is active, and key %s, waiting to sign from %s, cannot be decrypted "+
			"(did `teamgate keys rotate` run with another session.secret?): retire it (teamgate keys retire KID) and rotate again "+
			"with the replicas' config, or set assertion.key_file: %w", p.ID, p.ActivateAt.UTC().Format(time.RFC3339), err)
	}
	if !current {
		if err := resealKey(ctx, o, k); err != nil {
			return nil, err
		}
	}
	now := o.Now()
	if now.Before(*p.ActivateAt) {
		o.Log.Warn("no stored signing key is active, so the key waiting to sign signs now, before its time: "+
			"verifiers whose cached JWKS predates it reject its assertions until they fetch it again; "+
			"keep assertion.key_file until that time next time",
			"kid", p.ID, "activate_at", p.ActivateAt.UTC())
	}
	if err := o.Store.ActivateSigningKey(ctx, p.ID, now); err != nil {
		return nil, fmt.Errorf("assertion: activate signing key %s: %w", p.ID, err)
	}
	stored, err = o.Store.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("assertion: read signing keys: %w", err)
	}
	return stored, nil
}

// insertNewKey generates a key, inserts it unless a concurrent replica got
// there first, and re-reads the keys either way: the winner's key is the
// one everybody must use.
func insertNewKey(ctx context.Context, o LoadOptions, sealer *Sealer) ([]StoredKey, error) {
	rec, err := newStoredKey(o.Algorithm, sealer, o.Now())
	if err != nil {
		return nil, err
	}
	rec.Active = true
	if _, err := o.Store.InsertSigningKey(ctx, rec); err != nil {
		return nil, fmt.Errorf("assertion: store signing key: %w", err)
	}
	stored, err := o.Store.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("assertion: read signing keys: %w", err)
	}
	return stored, nil
}

// findActive returns the newest active key of alg; stored is newest first.
func findActive(stored []StoredKey, alg string) *StoredKey {
	for i := range stored {
		if stored[i].Active && stored[i].Algorithm == alg {
			return &stored[i]
		}
	}
	return nil
}

// buildJWKS publishes the signing key first, then every other stored key,
// newest first, then the publish-only keys. The document depends only on
// these, so its ETag is identical on replicas that see the same keys.
func buildJWKS(signing *Key, stored []StoredKey, extra []jose.JSONWebKey) (*keyState, error) {
	keys := []jose.JSONWebKey{signing.PublicJWK()}
	seen := map[string]bool{signing.ID: true}
	for _, sk := range stored {
		if seen[sk.ID] {
			continue
		}
		seen[sk.ID] = true
		var jwk jose.JSONWebKey
		if err := json.Unmarshal([]byte(sk.PublicJWK), &jwk); err != nil {
			return nil, fmt.Errorf("assertion: stored public key %s: %w", sk.ID, err)
		}
		if !jwk.IsPublic() || !jwk.Valid() || jwk.KeyID != sk.ID {
			return nil, fmt.Errorf("assertion: stored public key %s is not a valid public JWK with that kid", sk.ID)
		}
		jwk.Algorithm, jwk.Use = sk.Algorithm, "sig"
		keys = append(keys, jwk)
	}
	for _, jwk := range extra {
		if !seen[jwk.KeyID] {
			seen[jwk.KeyID] = true
			keys = append(keys, jwk)
		}
	}
	body, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		return nil, fmt.Errorf("assertion: encode JWKS: %w", err)
	}
	sum := sha256.Sum256(body)
	return &keyState{signing: signing, jwks: body, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`}, nil
}

// Signing is the key assertions are signed with.
func (ks *KeySet) Signing() *Key { return ks.state.Load().signing }

// Resealed reports whether Load sealed the stored key again for the
// current session secrets.
func (ks *KeySet) Resealed() bool { return ks.resealed }

// Source says where the signing key came from (SourceFile, SourceDatabase
// or SourceMemory).
func (ks *KeySet) Source() string { return ks.source }

// JWKS returns the published key set document and its strong ETag. The
// slice must not be modified.
func (ks *KeySet) JWKS() (body []byte, etag string) {
	st := ks.state.Load()
	return st.jwks, st.etag
}
