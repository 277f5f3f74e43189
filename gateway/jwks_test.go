package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

func TestJWKSEndpoint(t *testing.T) {
	h := newHarness(t)
	jwt := h.proxiedAssertion(h.sessionFor("alice@example.com"), nil)
	kid := h.gw.assert.cache.Signer().KeyID()

	res, body := h.get(apiClient(), JWKSPath, nil)
	etag := res.Header.Get("ETag")
	if res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != "public, max-age=300" ||
		!strings.HasPrefix(etag, `"`) || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET: %d, Cache-Control %q, ETag %q, Content-Type %q", res.StatusCode,
			res.Header.Get("Cache-Control"), etag, res.Header.Get("Content-Type"))
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 || set.Keys[0].KeyID != kid || !set.Keys[0].IsPublic() || set.Keys[0].Algorithm != "ES256" || set.Keys[0].Use != "sig" {
		t.Errorf("JWKS = %s, want the public signing key %s", body, kid)
	}
	if strings.Contains(body, `"d"`) {
		t.Error("the JWKS carries private key material")
	}
	if _, err := h.verifier().Verify(t.Context(), jwt); err != nil {
		t.Errorf("the assertion does not verify against the JWKS: %v", err)
	}

	tests := []struct {
		name        string
		method      string
		ifNoneMatch string
		wantStatus  int
		wantBody    bool
	}{
		{"same ETag", http.MethodGet, etag, http.StatusNotModified, false},
		{"weak form of the ETag", http.MethodGet, "W/" + etag, http.StatusNotModified, false},
		{"in a list", http.MethodGet, `"other", ` + etag, http.StatusNotModified, false},
		{"any", http.MethodGet, "*", http.StatusNotModified, false},
		{"another ETag", http.MethodGet, `"other"`, http.StatusOK, true},
		{"HEAD", http.MethodHead, "", http.StatusOK, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			headers := map[string]string{}
			if tt.ifNoneMatch != "" {
				headers["If-None-Match"] = tt.ifNoneMatch
			}
			res, got := h.do(apiClient(), tt.method, JWKSPath, headers)
			if res.StatusCode != tt.wantStatus || (got != "") != tt.wantBody || res.Header.Get("ETag") != etag ||
				res.Header.Get("Cache-Control") != "public, max-age=300" {
				t.Errorf("%d, body %d bytes, ETag %q, Cache-Control %q", res.StatusCode, len(got), res.Header.Get("ETag"), res.Header.Get("Cache-Control"))
			}
			if tt.wantBody && got != body {
				t.Error("the JWKS changed")
			}
		})
	}
}

func TestNoJWKSWhenAssertionsAreOff(t *testing.T) {
	off := false
	h := newHarness(t, func(s *setup) { s.cfg.Assertion.Enabled = &off })
	if res, _ := h.get(apiClient(), JWKSPath, nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET %s: %d, want 404", JWKSPath, res.StatusCode)
	}
	res, _ := h.get(apiClient(), "/v1/models", withCookie(h.sessionFor("alice@example.com"), map[string]string{"X-Teamgate-Assertion": "forged"}))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	if got := assertionSeen(h.upstream.last(t)); len(got) != 0 {
		t.Errorf("with assertions off the upstream received %q (a client's copy must still be stripped)", got)
	}
}

func TestEtagMatches(t *testing.T) {
	const etag = `"abc"`
	tests := []struct {
		name   string
		values []string
		want   bool
	}{
		{"none", nil, false},
		{"exact", []string{`"abc"`}, true},
		{"weak", []string{`W/"abc"`}, true},
		{"list with spaces", []string{` "x" ,  "abc" `}, true},
		{"second header line", []string{`"x"`, `"abc"`}, true},
		{"star", []string{"*"}, true},
		{"unquoted", []string{"abc"}, false},
		{"prefix only", []string{`"ab"`}, false},
	}
	for _, tt := range tests {
		if got := etagMatches(tt.values, etag); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestKeyFileSigns(t *testing.T) {
	ecDER, err := x509.MarshalECPrivateKey(mustECKey(t))
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, alg, pemType string
		der                []byte
	}{
		{"EC P-256, SEC1", "ES256", "EC PRIVATE KEY", ecDER},
		{"RSA, PKCS#1", "RS256", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "assertion.pem")
			if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: tt.pemType, Bytes: tt.der}), 0o600); err != nil {
				t.Fatal(err)
			}
			h := newHarness(t, func(s *setup) { s.cfg.Assertion.KeyFile, s.cfg.Assertion.Alg = path, tt.alg })
			got, err := h.verifier().Verify(t.Context(), h.proxiedAssertion(h.sessionFor("alice@example.com"), nil))
			if err != nil {
				t.Fatal(err)
			}
			if got.Algorithm != tt.alg || got.KeyID != h.gw.assert.keys.Signing().ID || h.gw.assert.keys.Source() != "key_file" {
				t.Errorf("signed %s with %s from %s", got.Algorithm, got.KeyID, h.gw.assert.keys.Source())
			}
		})
	}
}

func mustECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
