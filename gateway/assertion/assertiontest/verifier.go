// Package assertiontest verifies teamgate identity assertions the way an
// upstream would: it fetches the JWKS over HTTP and checks the signature,
// the header, iss, aud, exp and nbf with go-jose, independently of the
// signing code. Tests of the gateway and of the LiteLLM recipes use it.
package assertiontest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/teamgate/teamgate/gateway/assertion"
)

// Verifier checks assertions against a JWKS URL.
type Verifier struct {
	JWKSURL  string
	Issuer   string
	Audience string
	// Now is the verifier's clock (nil: time.Now); tests move it to check
	// expiry.
	Now    func() time.Time
	Client *http.Client // nil: http.DefaultClient
}

// Claims is the verified payload: the typed claims and every claim by
// name, as a verifier configured with claim names (LiteLLM) reads them.
type Claims struct {
	assertion.Claims
	Raw map[string]any
	// KeyID and Algorithm come from the protected header.
	KeyID, Algorithm string
}

// KeySet fetches and decodes the JWKS.
func (v Verifier) KeySet(ctx context.Context) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.JWKSURL, nil)
	if err != nil {
		return set, err
	}
	client := v.Client
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		return set, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return set, fmt.Errorf("read JWKS: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return set, fmt.Errorf("fetch JWKS: status %d", res.StatusCode)
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return set, fmt.Errorf("decode JWKS: %w", err)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return set, fmt.Errorf("JWKS key %s is not a public key", k.KeyID)
		}
	}
	return set, nil
}

// Verify checks token against the JWKS fetched now and returns its claims.
func (v Verifier) Verify(ctx context.Context, token string) (Claims, error) {
	set, err := v.KeySet(ctx)
	if err != nil {
		return Claims{}, err
	}
	return v.VerifyWith(set, token)
}

// VerifyWith checks token against an already fetched key set.
func (v Verifier) VerifyWith(set jose.JSONWebKeySet, token string) (Claims, error) {
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		return Claims{}, fmt.Errorf("parse: %w", err)
	}
	if len(tok.Headers) != 1 {
		return Claims{}, errors.New("want exactly one signature")
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "JWT" {
		return Claims{}, fmt.Errorf("typ = %q, want JWT", typ)
	}
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		return Claims{}, fmt.Errorf("kid %q: %d keys in the JWKS, want 1", h.KeyID, len(keys))
	}
	if keys[0].Algorithm != h.Algorithm {
		return Claims{}, fmt.Errorf("header alg %s, but the JWKS key is for %s", h.Algorithm, keys[0].Algorithm)
	}
	var std jwt.Claims
	out := Claims{KeyID: h.KeyID, Algorithm: h.Algorithm}
	if err := tok.Claims(keys[0], &std, &out.Claims, &out.Raw); err != nil {
		return Claims{}, fmt.Errorf("signature: %w", err)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	err = std.ValidateWithLeeway(jwt.Expected{Issuer: v.Issuer, AnyAudience: jwt.Audience{v.Audience}, Time: now()}, 0)
	if err != nil {
		return Claims{}, fmt.Errorf("claims: %w", err)
	}
	if std.Expiry == nil || std.NotBefore == nil || std.IssuedAt == nil {
		return Claims{}, errors.New("exp, nbf and iat are required")
	}
	return out, nil
}
