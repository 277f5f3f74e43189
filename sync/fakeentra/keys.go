package fakeentra

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-jose/go-jose/v4"
)

// signingKey is one RS256 key of the tenant. Keys are never removed: after
// RotateKeys the old one stays in the JWKS so tokens it signed keep
// verifying, as with Entra's overlapping key roll-over.
type signingKey struct {
	kid    string
	priv   *rsa.PrivateKey
	signer jose.Signer
}

func newSigningKey() (*signingKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("fakeentra: generate key: %w", err)
	}
	// Entra's kids look like base64url SHA-1 thumbprints; the RFC 7638
	// thumbprint of the public key gives the same shape and is stable.
	tp, err := (&jose.JSONWebKey{Key: &priv.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("fakeentra: key thumbprint: %w", err)
	}
	kid := base64.RawURLEncoding.EncodeToString(tp)[:27]
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: string(jose.RS256)}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return nil, fmt.Errorf("fakeentra: signer: %w", err)
	}
	return &signingKey{kid: kid, priv: priv, signer: signer}, nil
}

// sign serialises claims as a compact JWS with the key's kid in the header.
func (k *signingKey) sign(claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("fakeentra: marshal claims: %w", err)
	}
	jws, err := k.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("fakeentra: sign: %w", err)
	}
	return jws.CompactSerialize()
}

// currentKey is the key new tokens are signed with.
func (t *Tenant) currentKey() *signingKey {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.keys[len(t.keys)-1]
}

// RotateKeys makes a new signing key (with a new kid) current. The old keys
// stay published in the JWKS, so tokens already issued keep verifying and a
// relying party that cached the old JWKS must refetch on the unknown kid.
func (t *Tenant) RotateKeys() {
	k, err := newSigningKey()
	if err != nil {
		panic(err) // only if the system's random source fails
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.keys = append(t.keys, k)
}

// SignIDToken signs arbitrary claims with the current key, for tests that
// feed a relying party hostile or malformed tokens (wrong aud, expired, …).
func (t *Tenant) SignIDToken(claims map[string]any) string {
	s, err := t.currentKey().sign(claims)
	if err != nil {
		panic(err) // claims that do not marshal to JSON are a bug in the test
	}
	return s
}

// serveJWKS answers the discovery keys endpoint with every key ever used.
func (t *Tenant) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	t.mu.Lock()
	set := jose.JSONWebKeySet{}
	for _, k := range t.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{
			Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: string(jose.RS256), Use: "sig",
		})
	}
	t.mu.Unlock()
	writeJSON(w, http.StatusOK, set)
}

var errBadToken = errors.New("invalid token")

// verifyJWT checks a token's RS256 signature against the tenant's keys and
// returns its claims (numbers as json.Number). It does not check any claim.
func (t *Tenant) verifyJWT(raw string) (map[string]any, error) {
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil || len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: not a well-formed JWS", errBadToken)
	}
	kid := jws.Signatures[0].Header.KeyID
	t.mu.Lock()
	var pub *rsa.PublicKey
	for _, k := range t.keys {
		if k.kid == kid {
			pub = &k.priv.PublicKey
		}
	}
	t.mu.Unlock()
	if pub == nil {
		return nil, fmt.Errorf("%w: unknown kid", errBadToken)
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: signature", errBadToken)
	}
	var claims map[string]any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		return nil, fmt.Errorf("%w: payload is not a JSON object", errBadToken)
	}
	return claims, nil
}
