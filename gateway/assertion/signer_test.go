package assertion_test

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/teamgate/teamgate/gateway/assertion"
	"github.com/teamgate/teamgate/gateway/assertion/assertiontest"
)

const (
	issuer   = "https://llm.example.com"
	audience = "http://litellm:4000"
)

// t0 is a fixed clock reading with a fraction of a second, which iat drops.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

func clockAt(t time.Time) func() time.Time { return func() time.Time { return t } }

// newSigner returns a signer over a fresh in-memory key and the key set
// that verifies it.
func newSigner(t testing.TB, alg string, mutate func(*assertion.Options)) (*assertion.Signer, jose.JSONWebKeySet) {
	t.Helper()
	ks, err := assertion.Load(t.Context(), assertion.LoadOptions{Algorithm: alg})
	if err != nil {
		t.Fatal(err)
	}
	o := assertion.Options{Issuer: issuer, Audience: audience, Lifetime: 5 * time.Minute, TeamsMaxBytes: 4096, Now: clockAt(t0)}
	if mutate != nil {
		mutate(&o)
	}
	s, err := assertion.NewSigner(ks.Signing(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s, keySet(t, ks)
}

func keySet(t testing.TB, ks *assertion.KeySet) jose.JSONWebKeySet {
	t.Helper()
	body, _ := ks.JWKS()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	return set
}

func verifier(now time.Time) assertiontest.Verifier {
	return assertiontest.Verifier{Issuer: issuer, Audience: audience, Now: clockAt(now)}
}

// payload decodes a token's claims without verifying, to look at the JSON
// as sent (null versus [], absent versus "").
func payload(t testing.TB, jwt string) map[string]json.RawMessage {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSignCarriesEveryClaim(t *testing.T) {
	for _, alg := range []string{assertion.ES256, assertion.RS256} {
		t.Run(alg, func(t *testing.T) {
			s, set := newSigner(t, alg, nil)
			sub := assertion.Subject{UserID: "oid-1", Email: "ada@example.com", Name: "Ada Lovelace", Teams: []string{"t-1", "t-2"}}
			tok, err := s.Sign(sub, "t-2")
			if err != nil {
				t.Fatal(err)
			}
			got, err := verifier(t0).VerifyWith(set, tok.JWT)
			if err != nil {
				t.Fatal(err)
			}
			iat := t0.Add(-assertion.Backdate).Truncate(time.Second)
			want := assertion.Claims{
				Issuer: issuer, Audience: audience, Subject: "oid-1", UserID: "oid-1",
				Email: "ada@example.com", Name: "Ada Lovelace", TeamID: "t-2", Teams: []string{"t-1", "t-2"},
				IssuedAt: iat.Unix(), NotBefore: iat.Unix(), Expiry: iat.Add(5 * time.Minute).Unix(), ID: got.ID,
			}
			if !claimsEqual(got.Claims, want) {
				t.Errorf("claims = %+v\nwant     %+v", got.Claims, want)
			}
			if got.KeyID != s.KeyID() || got.Algorithm != alg {
				t.Errorf("header kid %s alg %s, want %s %s", got.KeyID, got.Algorithm, s.KeyID(), alg)
			}
			if len(got.ID) < 22 {
				t.Errorf("jti %q is too short to be random", got.ID)
			}
			if !tok.ExpiresAt.Equal(iat.Add(5*time.Minute)) || !tok.IssuedAt.Equal(t0) {
				t.Errorf("token times %v..%v", tok.IssuedAt, tok.ExpiresAt)
			}
			again, _ := s.Sign(sub, "t-2")
			if p := payload(t, again.JWT); string(p["jti"]) == `"`+got.ID+`"` {
				t.Error("two assertions share a jti")
			}
		})
	}
}

func claimsEqual(a, b assertion.Claims) bool {
	return reflect.DeepEqual(a, b)
}

func TestSignOmitsWhatIsUnknownButNeverNullsTeams(t *testing.T) {
	s, _ := newSigner(t, assertion.ES256, nil)
	tok, err := s.Sign(assertion.Subject{UserID: "oid-1"}, "")
	if err != nil {
		t.Fatal(err)
	}
	p := payload(t, tok.JWT)
	if string(p["teams"]) != "[]" {
		t.Errorf("teams = %s, want []", p["teams"])
	}
	for _, absent := range []string{"team_id", "email", "name", "teams_overflow"} {
		if v, ok := p[absent]; ok {
			t.Errorf("%s = %s, want it absent", absent, v)
		}
	}
}

func TestVerifierRejects(t *testing.T) {
	s, set := newSigner(t, assertion.ES256, nil)
	tok, err := s.Sign(assertion.Subject{UserID: "oid-1", Teams: []string{"t-1"}}, "t-1")
	if err != nil {
		t.Fatal(err)
	}
	_, otherSet := newSigner(t, assertion.ES256, nil)
	forged := tamper(t, tok.JWT, func(m map[string]any) { m["team_id"] = "t-admins" })

	tests := []struct {
		name  string
		v     assertiontest.Verifier
		set   jose.JSONWebKeySet
		token string
		want  string
	}{
		{"tampered payload", verifier(t0), set, forged, "signature"},
		{"expired", verifier(t0.Add(5 * time.Minute)), set, tok.JWT, "expired"},
		{"another audience", assertiontest.Verifier{Issuer: issuer, Audience: "https://other.example.com", Now: clockAt(t0)}, set, tok.JWT, "audience"},
		{"another issuer", assertiontest.Verifier{Issuer: "https://evil.example.com", Audience: audience, Now: clockAt(t0)}, set, tok.JWT, "issuer"},
		{"another key set", verifier(t0), otherSet, tok.JWT, "kid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.v.VerifyWith(tt.set, tt.token)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	if _, err := verifier(t0.Add(4*time.Minute)).VerifyWith(set, tok.JWT); err != nil {
		t.Errorf("an assertion within its lifetime was refused: %v", err)
	}
}

// tamper rewrites a token's payload, keeping header and signature.
func tamper(t testing.TB, jwt string, edit func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, _ = json.Marshal(m)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func TestTeamsAreCappedLikeTheGroupsHeader(t *testing.T) {
	id := func(c byte) string { return strings.Repeat(string(c), 36) } // a GUID's length
	tests := []struct {
		name         string
		max          int
		teams        []string
		want         []string
		wantOverflow bool
	}{
		{"none", 64, nil, []string{}, false},
		{"fits exactly", 73, []string{id('a'), id('b')}, []string{id('a'), id('b')}, false},
		{"one byte short", 72, []string{id('a'), id('b')}, []string{id('a')}, true},
		{"first alone too long", 30, []string{id('a')}, []string{}, true},
		{"empty ids skipped", 64, []string{"", "x", ""}, []string{"x"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, set := newSigner(t, assertion.ES256, func(o *assertion.Options) { o.TeamsMaxBytes = tt.max })
			tok, err := s.Sign(assertion.Subject{UserID: "u", Teams: tt.teams}, "")
			if err != nil {
				t.Fatal(err)
			}
			got, err := verifier(t0).VerifyWith(set, tok.JWT)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Teams, tt.want) || got.TeamsOverflow != tt.wantOverflow {
				t.Errorf("teams %v overflow %v, want %v %v", got.Teams, got.TeamsOverflow, tt.want, tt.wantOverflow)
			}
			if _, ok := got.Raw["teams_overflow"]; ok != tt.wantOverflow {
				t.Errorf("teams_overflow present = %v, want %v", ok, tt.wantOverflow)
			}
		})
	}
}

func TestNewSignerValidates(t *testing.T) {
	ks, err := assertion.Load(t.Context(), assertion.LoadOptions{Algorithm: assertion.ES256})
	if err != nil {
		t.Fatal(err)
	}
	ok := assertion.Options{Issuer: issuer, Audience: audience, Lifetime: time.Minute, TeamsMaxBytes: 64}
	tests := []struct {
		name   string
		mutate func(*assertion.Options)
		want   string
	}{
		{"lifetime over 5m", func(o *assertion.Options) { o.Lifetime = 6 * time.Minute }, "lifetime"},
		{"lifetime under 30s", func(o *assertion.Options) { o.Lifetime = 10 * time.Second }, "lifetime"},
		{"no audience", func(o *assertion.Options) { o.Audience = "" }, "audience"},
		{"no teams budget", func(o *assertion.Options) { o.TeamsMaxBytes = 0 }, "TeamsMaxBytes"},
	}
	for _, tt := range tests {
		o := ok
		tt.mutate(&o)
		if _, err := assertion.NewSigner(ks.Signing(), o); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := assertion.NewSigner(ks.Signing(), ok); err != nil {
		t.Errorf("valid options refused: %v", err)
	}
}
