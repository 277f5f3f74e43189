// Package assertion issues teamgate's signed identity assertion: a short-lived
// JWT (ES256 by default, RS256 as an option) that tells the upstream who the
// signed-in user is and which team the request acts for, verifiable against
// the JWKS teamgate publishes. Unlike bare identity headers, which the
// upstream must take on trust from the network, the assertion lets LiteLLM
// (JWT auth mode) or any other service check the identity cryptographically.
//
// The package holds the keys (from a PEM file, or generated once and stored
// sealed in the database), the signer, the JWKS document and a cache that
// keeps signing off the hot path. It knows nothing about HTTP or sessions.
package assertion

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Limits on assertion.lifetime. The upper bound keeps a leaked assertion
// short-lived; the lower one leaves room for clock skew and reuse.
const (
	MaxLifetime = 5 * time.Minute
	MinLifetime = 30 * time.Second
)

// Backdate is how far iat and nbf are set in the past, so that a verifier
// whose clock runs a little behind teamgate's (PyJWT, which LiteLLM uses,
// rejects an iat in its future) still accepts a fresh assertion. exp − iat
// is exactly the configured lifetime.
const Backdate = 10 * time.Second

// Subject is what an assertion says about a user.
type Subject struct {
	UserID string   // Entra object id: sub and user_id
	Email  string   // may be empty (then omitted)
	Name   string   // display name, may be empty (then omitted)
	Teams  []string // every team id of the user, in the order to publish
}

// Claims is the assertion's payload. The names are a public contract
// (LiteLLM's JWT mode maps them); add to them, never rename them.
type Claims struct {
	Issuer        string   `json:"iss"`
	Audience      string   `json:"aud"`
	Subject       string   `json:"sub"`
	UserID        string   `json:"user_id"`
	Email         string   `json:"email,omitempty"`
	Name          string   `json:"name,omitempty"`
	TeamID        string   `json:"team_id,omitempty"` // omitted when the user has no team
	Teams         []string `json:"teams"`             // never null
	TeamsOverflow bool     `json:"teams_overflow,omitempty"`
	IssuedAt      int64    `json:"iat"`
	NotBefore     int64    `json:"nbf"`
	Expiry        int64    `json:"exp"`
	ID            string   `json:"jti"`
}

// Options configure a Signer.
type Options struct {
	Issuer   string        // server.public_url
	Audience string        // assertion.audience, default upstream.url
	Lifetime time.Duration // between MinLifetime and MaxLifetime
	// TeamsMaxBytes caps the teams claim like the groups header: the ids,
	// comma-joined, take at most this many bytes; past it whole ids are
	// left out and teams_overflow is set.
	TeamsMaxBytes int
	Now           func() time.Time // nil: time.Now
}

// Signer signs assertions with one key. It is safe for concurrent use.
type Signer struct {
	key  *Key
	opts Options
	jose jose.Signer
}

// NewSigner prepares a signer for key.
func NewSigner(key *Key, o Options) (*Signer, error) {
	var errs []error
	if key == nil {
		errs = append(errs, errors.New("no signing key"))
	}
	if o.Issuer == "" || o.Audience == "" {
		errs = append(errs, errors.New("issuer and audience are required"))
	}
	if o.Lifetime < MinLifetime || o.Lifetime > MaxLifetime {
		errs = append(errs, fmt.Errorf("lifetime must be between %s and %s (got %s)", MinLifetime, MaxLifetime, o.Lifetime))
	}
	if o.TeamsMaxBytes <= 0 {
		errs = append(errs, errors.New("TeamsMaxBytes must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("assertion signer: %w", err)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	js, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.SignatureAlgorithm(key.Algorithm),
		// A JSONWebKey with a KeyID makes go-jose put "kid" in the header.
		Key: jose.JSONWebKey{Key: key.Private, KeyID: key.ID, Algorithm: key.Algorithm},
	}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("assertion signer: %w", err)
	}
	return &Signer{key: key, opts: o, jose: js}, nil
}

// KeyID is the kid of the signing key.
func (s *Signer) KeyID() string { return s.key.ID }

// Lifetime is the configured lifetime (exp − iat).
func (s *Signer) Lifetime() time.Duration { return s.opts.Lifetime }

// Token is a signed assertion and its validity.
type Token struct {
	JWT       string
	IssuedAt  time.Time // when it was signed (iat is Backdate earlier)
	ExpiresAt time.Time
}

// Sign issues an assertion for sub acting for team ("" for none).
func (s *Signer) Sign(sub Subject, team string) (Token, error) {
	now := s.opts.Now()
	iat := now.Add(-Backdate).Truncate(time.Second)
	exp := iat.Add(s.opts.Lifetime)
	teams, overflow := capTeams(sub.Teams, s.opts.TeamsMaxBytes)
	c := Claims{
		Issuer: s.opts.Issuer, Audience: s.opts.Audience,
		Subject: sub.UserID, UserID: sub.UserID, Email: sub.Email, Name: sub.Name,
		TeamID: team, Teams: teams, TeamsOverflow: overflow,
		IssuedAt: iat.Unix(), NotBefore: iat.Unix(), Expiry: exp.Unix(),
		ID: newJTI(),
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return Token{}, fmt.Errorf("assertion: encode claims: %w", err)
	}
	jws, err := s.jose.Sign(payload)
	if err != nil {
		return Token{}, fmt.Errorf("assertion: sign: %w", err)
	}
	compact, err := jws.CompactSerialize()
	if err != nil {
		return Token{}, fmt.Errorf("assertion: serialize: %w", err)
	}
	return Token{JWT: compact, IssuedAt: now, ExpiresAt: exp}, nil
}

// capTeams keeps ids in order while their comma-joined length fits max: the
// byte budget of the groups header, so that an assertion never grows past
// what a header may carry. It never returns nil: verifiers get "teams": [],
// not null.
func capTeams(ids []string, max int) ([]string, bool) {
	out := make([]string, 0, len(ids))
	size := 0
	for _, id := range ids {
		if id == "" {
			continue
		}
		need := len(id)
		if len(out) > 0 {
			need++
		}
		if size+need > max {
			return out, true
		}
		size += need
		out = append(out, id)
	}
	return out, false
}

// newJTI is a random assertion id (128 bits).
func newJTI() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails: crypto/rand aborts the process instead
	return base64.RawURLEncoding.EncodeToString(b[:])
}
