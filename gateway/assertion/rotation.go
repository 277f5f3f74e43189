package assertion

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Rotation without restarting replicas:
//
//  1. `teamgate keys rotate` inserts a new key, inactive, with ActivateAt
//     far enough ahead (--publish-for, DefaultPublish) that every replica
//     has re-read the keys (KeySet.Refresh, every assertion.key_refresh)
//     and every copy of the JWKS a verifier may hold has been fetched
//     since: the key is published before anything it signs can reach a
//     verifier.
//  2. The first replica to refresh after ActivateAt activates it, once it
//     has checked that it can decrypt it (the old key becomes inactive,
//     stamped DeactivatedAt); the others follow at their next refresh,
//     meanwhile still signing with the old key, which stays published.
//  3. `teamgate keys retire KID` deletes the old key once RetireAfter has
//     passed: no replica signs with it any more and its last assertion has
//     expired.

// LiteLLMKeyTTL is how long LiteLLM's JWT auth (README recipe (b)) keeps a
// JWKS it fetched: litellm_jwtauth.public_key_ttl, 600 s by default. It
// ignores Cache-Control, and a kid missing from its copy fails the request
// ("No matching public key found") without a re-fetch, so a key must be
// in every copy LiteLLM may hold before it signs.
const LiteLLMKeyTTL = 10 * time.Minute

// PublishMargin is added to the default publication: clock skew, a
// replica whose refresh failed once or twice, LiteLLM's in-memory copy of
// a JWKS it read from its Redis cache.
const PublishMargin = 4 * time.Minute

// MinPublish is the shortest time a key must be published before it signs:
// every replica publishes it within refresh, and an HTTP cache that kept
// the JWKS for maxAge (its Cache-Control) has fetched it again since.
func MinPublish(refresh, maxAge time.Duration) time.Duration {
	return refresh + maxAge
}

// DefaultPublish is `teamgate keys rotate`'s default --publish-for:
// MinPublish, then LiteLLM's default JWKS cache (LiteLLMKeyTTL), plus
// PublishMargin; 20m with key_refresh 1m and the 5m max-age.
func DefaultPublish(refresh, maxAge time.Duration) time.Duration {
	return MinPublish(refresh, maxAge) + LiteLLMKeyTTL + PublishMargin
}

// RetireAfter is when a key deactivated at deactivated may be unpublished:
// replicas may sign with it until their next refresh, and what they signed
// verifies for lifetime more.
func RetireAfter(deactivated time.Time, refresh, lifetime time.Duration) time.Time {
	return deactivated.Add(refresh + lifetime)
}

// NewRotationKey generates a key for alg, sealed for secrets (session.secret's
// entries, the current one first), as an inactive row that becomes the
// signing key at activateAt.
func NewRotationKey(alg string, secrets []string, now, activateAt time.Time) (StoredKey, error) {
	sealer, err := NewSealer(secrets...)
	if err != nil {
		return StoredKey{}, fmt.Errorf("assertion: %w", err)
	}
	rec, err := newStoredKey(alg, sealer, now)
	if err != nil {
		return StoredKey{}, err
	}
	rec.ActivateAt = &activateAt
	return rec, nil
}

// newStoredKey generates an inactive key row.
func newStoredKey(alg string, sealer *Sealer, now time.Time) (StoredKey, error) {
	k, err := GenerateKey(alg)
	if err != nil {
		return StoredKey{}, fmt.Errorf("assertion: %w", err)
	}
	sealed, err := sealer.Seal(k)
	if err != nil {
		return StoredKey{}, fmt.Errorf("assertion: %w", err)
	}
	pub, err := json.Marshal(k.PublicJWK())
	if err != nil {
		return StoredKey{}, fmt.Errorf("assertion: encode public key: %w", err)
	}
	return StoredKey{ID: k.ID, Algorithm: k.Algorithm, Sealed: sealed, PublicJWK: string(pub), CreatedAt: now}, nil
}

// loadPublishFiles reads assertion.publish_key_files.
func loadPublishFiles(paths []string) ([]jose.JSONWebKey, error) {
	var out []jose.JSONWebKey
	for _, path := range paths {
		jwk, err := loadPublicKeyFile(path)
		if err != nil {
			return nil, fmt.Errorf("assertion.publish_key_files %s: %w", path, err)
		}
		out = append(out, jwk)
	}
	return out, nil
}

// loadPublicKeyFile reads the public key of a PEM file holding a public key
// ("PUBLIC KEY", "RSA PUBLIC KEY") or a private one (as key_file).
func loadPublicKeyFile(path string) (jose.JSONWebKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	defer clear(data)
	pub, err := parsePublicKeyPEM(data)
	if err != nil {
		priv, perr := ParsePrivateKeyPEM(data)
		if perr != nil {
			return jose.JSONWebKey{}, errors.New("no PEM public key (PUBLIC KEY, RSA PUBLIC KEY) or private key found")
		}
		pub = priv.Public()
	}
	var alg string
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return jose.JSONWebKey{}, fmt.Errorf("an EC key must be on P-256, not %s", k.Curve.Params().Name)
		}
		alg = ES256
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < minRSABits {
			return jose.JSONWebKey{}, fmt.Errorf("an RSA key must have at least %d bits, not %d", minRSABits, n)
		}
		alg = RS256
	default:
		return jose.JSONWebKey{}, fmt.Errorf("unsupported key type %T (want EC P-256 or RSA)", pub)
	}
	kid, err := keyID(pub)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	return jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: alg, Use: "sig"}, nil
}

// parsePublicKeyPEM returns the first public key block's key.
func parsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM public key found")
		}
		switch block.Type {
		case "PUBLIC KEY":
			return x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			return x509.ParsePKCS1PublicKey(block.Bytes)
		}
	}
}
