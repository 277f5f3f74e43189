package assertion

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
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
	Now     func() time.Time
}

// KeySet is the signing key and the published JWKS.
type KeySet struct {
	signing  *Key
	source   string
	resealed bool
	jwks     []byte
	etag     string
}

// Load picks the signing key and builds the JWKS. With a store and no key
// file, the first replica to start generates a key and inserts it; a replica
// racing it loses the insert and re-reads the winner's key, so all replicas
// sign with one key.
func Load(ctx context.Context, o LoadOptions) (*KeySet, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	ks := &KeySet{}
	if o.KeyFile != "" {
		k, err := loadKeyFile(o.KeyFile, o.Algorithm)
		if err != nil {
			return nil, err
		}
		ks.signing, ks.source = k, SourceFile
	}
	var stored []StoredKey
	if o.Store != nil {
		var err error
		if stored, err = o.Store.SigningKeys(ctx); err != nil {
			return nil, fmt.Errorf("assertion: read signing keys: %w", err)
		}
		if ks.signing == nil {
			if ks.signing, stored, ks.resealed, err = fromStore(ctx, o, stored); err != nil {
				return nil, err
			}
			ks.source = SourceDatabase
		}
	}
	if ks.signing == nil {
		k, err := GenerateKey(o.Algorithm)
		if err != nil {
			return nil, fmt.Errorf("assertion: %w", err)
		}
		ks.signing, ks.source = k, SourceMemory
	}
	if err := ks.buildJWKS(stored); err != nil {
		return nil, err
	}
	return ks, nil
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

// fromStore returns the newest active stored key of the algorithm,
// generating and inserting one first when there is none. A key whose seal
// does not match the configured secrets (session.secret was rotated) is
// sealed again, so that it stays readable once the old secret is dropped.
func fromStore(ctx context.Context, o LoadOptions, stored []StoredKey) (k *Key, _ []StoredKey, resealed bool, err error) {
	sealer, err := NewSealer(o.Secrets...)
	if err != nil {
		return nil, nil, false, fmt.Errorf("assertion: %w", err)
	}
	active := findActive(stored, o.Algorithm)
	if active == nil {
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
		sealed, err := sealer.Seal(k)
		if err != nil {
			return nil, nil, false, fmt.Errorf("assertion: %w", err)
		}
		if err := o.Store.ResealSigningKey(ctx, k.ID, sealed); err != nil {
			return nil, nil, false, fmt.Errorf("assertion: re-seal signing key %s: %w", k.ID, err)
		}
		resealed = true
	}
	return k, stored, resealed, nil
}

// insertNewKey generates a key, inserts it unless a concurrent replica got
// there first, and re-reads the keys either way: the winner's key is the
// one everybody must use.
func insertNewKey(ctx context.Context, o LoadOptions, sealer *Sealer) ([]StoredKey, error) {
	k, err := GenerateKey(o.Algorithm)
	if err != nil {
		return nil, fmt.Errorf("assertion: %w", err)
	}
	sealed, err := sealer.Seal(k)
	if err != nil {
		return nil, fmt.Errorf("assertion: %w", err)
	}
	pub, err := json.Marshal(k.PublicJWK())
	if err != nil {
		return nil, fmt.Errorf("assertion: encode public key: %w", err)
	}
	rec := StoredKey{ID: k.ID, Algorithm: k.Algorithm, Sealed: sealed, PublicJWK: string(pub), CreatedAt: o.Now(), Active: true}
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
// newest first. The document is built once, so its ETag is stable for the
// life of the process and identical on replicas that see the same keys.
func (ks *KeySet) buildJWKS(stored []StoredKey) error {
	keys := []jose.JSONWebKey{ks.signing.PublicJWK()}
	seen := map[string]bool{ks.signing.ID: true}
	for _, sk := range stored {
		if seen[sk.ID] {
			continue
		}
		seen[sk.ID] = true
		var jwk jose.JSONWebKey
		if err := json.Unmarshal([]byte(sk.PublicJWK), &jwk); err != nil {
			return fmt.Errorf("assertion: stored public key %s: %w", sk.ID, err)
		}
		if !jwk.IsPublic() || !jwk.Valid() || jwk.KeyID != sk.ID {
			return fmt.Errorf("assertion: stored public key %s is not a valid public JWK with that kid", sk.ID)
		}
		jwk.Algorithm, jwk.Use = sk.Algorithm, "sig"
		keys = append(keys, jwk)
	}
	body, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		return fmt.Errorf("assertion: encode JWKS: %w", err)
	}
	sum := sha256.Sum256(body)
	ks.jwks = body
	ks.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
	return nil
}

// Signing is the key assertions are signed with.
func (ks *KeySet) Signing() *Key { return ks.signing }

// Resealed reports whether Load sealed the stored key again for the
// current session secrets.
func (ks *KeySet) Resealed() bool { return ks.resealed }

// Source says where the signing key came from (SourceFile, SourceDatabase
// or SourceMemory).
func (ks *KeySet) Source() string { return ks.source }

// JWKS returns the published key set document and its strong ETag. The
// slice must not be modified.
func (ks *KeySet) JWKS() (body []byte, etag string) { return ks.jwks, ks.etag }
