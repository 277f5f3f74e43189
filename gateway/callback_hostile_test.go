package gateway

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// tokenTamper sits in front of the fake tenant and, while craft is set,
// replaces the id_token of every authorization-code answer with a token
// made from the genuine one's header and claims: the callback then receives
// exactly the hostile token a test wants, inside an otherwise valid flow.
type tokenTamper struct {
	mu    sync.Mutex
	craft func(header, claims map[string]any) string
}

func (tt *tokenTamper) set(craft func(header, claims map[string]any) string) {
	tt.mu.Lock()
	tt.craft = craft
	tt.mu.Unlock()
}

func (tt *tokenTamper) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tt.mu.Lock()
		craft := tt.craft
		tt.mu.Unlock()
		if craft == nil || !strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var body map[string]any
		if json.Unmarshal(rec.Body.Bytes(), &body) == nil {
			if raw, ok := body["id_token"].(string); ok {
				header, claims := splitJWT(raw)
				body["id_token"] = craft(header, claims)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.Code)
		json.NewEncoder(w).Encode(body)
	})
}

// splitJWT decodes a compact JWS's header and claims without verifying.
func splitJWT(raw string) (header, claims map[string]any) {
	parts := strings.Split(raw, ".")
	for i, dst := range []*map[string]any{&header, &claims} {
		b, _ := base64.RawURLEncoding.DecodeString(parts[i])
		d := json.NewDecoder(strings.NewReader(string(b)))
		d.UseNumber()
		d.Decode(dst)
	}
	return header, claims
}

func b64JSON(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// signRS256 signs claims with key under kid, adding extra header fields.
func signRS256(t *testing.T, key *rsa.PrivateKey, kid string, claims map[string]any, extra map[jose.HeaderKey]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	for k, v := range extra {
		opts = opts.WithHeader(k, v)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := jws.CompactSerialize()
	return s
}

// hs256 signs header.claims with HMAC-SHA256 under secret.
func hs256(header, claims map[string]any, secret []byte) string {
	header = with(header, map[string]any{"alg": "HS256"})
	signing := b64JSON(header) + "." + b64JSON(claims)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// with returns a copy of m with the changes applied (nil deletes).
func with(m map[string]any, changes map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// tenantPublicKeys fetches the fake tenant's published keys, as an attacker
// can: the HS256 confusion attack uses them as the HMAC secret.
func tenantPublicKeys(t *testing.T, h *harness) (pemKey, jwkJSON []byte) {
	t.Helper()
	res, err := http.Get(strings.TrimSuffix(h.tenant.Issuer(), "/v2.0") + "/discovery/v2.0/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("JWKS: %v %s", err, raw)
	}
	der, err := x509.MarshalPKIXPublicKey(set.Keys[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	jwk, _ := set.Keys[0].MarshalJSON()
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), jwk
}

// Every hostile ID token ends the sign-in on an error page: no session,
// no cookie, and nothing synced.
func TestCallbackRefusesHostileIDTokens(t *testing.T) {
	tamper := &tokenTamper{}
	h := newHarness(t, func(s *setup) { s.wrapIDP = tamper.wrap })
	pemKey, jwkJSON := tenantPublicKeys(t, h)
	attacker, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := h.clock.Now()
	unix := func(d time.Duration) int64 { return now.Add(d).Unix() }
	resign := func(changes map[string]any) func(_, c map[string]any) string {
		return func(_, c map[string]any) string { return h.tenant.SignIDToken(with(c, changes)) }
	}

	tests := []struct {
		name  string
		craft func(header, claims map[string]any) string
	}{
		{"forged: another key under the tenant's kid", func(hd, c map[string]any) string {
			return signRS256(t, attacker, hd["kid"].(string), with(c, map[string]any{"oid": bobID}), nil)
		}},
		{"forged: another key under an unknown kid", func(_, c map[string]any) string {
			return signRS256(t, attacker, "attacker-kid", c, nil)
		}},
		{"forged: jku header pointing at the attacker's keys", func(hd, c map[string]any) string {
			return signRS256(t, attacker, "attacker-kid", c, map[jose.HeaderKey]any{"jku": "https://evil.example/keys"})
		}},
		{"tampered claims under the genuine signature", func(hd, c map[string]any) string {
			genuine := h.tenant.SignIDToken(c)
			parts := strings.Split(genuine, ".")
			return parts[0] + "." + b64JSON(with(c, map[string]any{"oid": bobID})) + "." + parts[2]
		}},
		{"signature stripped", func(_, c map[string]any) string {
			parts := strings.Split(h.tenant.SignIDToken(c), ".")
			return parts[0] + "." + parts[1] + "."
		}},
		{"alg none", func(hd, c map[string]any) string {
			return b64JSON(with(hd, map[string]any{"alg": "none"})) + "." + b64JSON(c) + "."
		}},
		{"alg none, upper case", func(hd, c map[string]any) string {
			return b64JSON(with(hd, map[string]any{"alg": "NONE"})) + "." + b64JSON(c) + "."
		}},
		{"HS256 with the PEM public key as secret", func(hd, c map[string]any) string { return hs256(hd, c, pemKey) }},
		{"HS256 with the JWK as secret", func(hd, c map[string]any) string { return hs256(hd, c, jwkJSON) }},
		{"expired", resign(map[string]any{"iat": unix(-2 * time.Hour), "nbf": unix(-2 * time.Hour), "exp": unix(-time.Hour)})},
		{"not yet valid", resign(map[string]any{"iat": unix(time.Hour), "nbf": unix(time.Hour), "exp": unix(2 * time.Hour)})},
		{"another audience", resign(map[string]any{"aud": "another-client-id"})},
		{"another issuer", resign(map[string]any{"iss": strings.Replace(h.tenant.Issuer(), testTenantID, "other-tenant", 1)})},
		{"no issuer", resign(map[string]any{"iss": nil})},
		{"mismatched nonce", resign(map[string]any{"nonce": "nonce-of-another-sign-in"})},
		{"no nonce", resign(map[string]any{"nonce": nil})},
		{"no oid", resign(map[string]any{"oid": nil})},
		{"not a JWT", func(_, _ map[string]any) string { return "not-a-jwt" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			syncs := h.syncer.callCount()
			tamper.set(tt.craft)
			defer tamper.set(nil)
			c := h.browser()
			res, body := h.signIn(c, "alice@example.com", "/")
			assertRefusedSignIn(t, h, c, res, body, syncs)
		})
	}
	// The harness itself is sound: without tampering the same flow works.
	if res, _ := h.signIn(h.browser(), "alice@example.com", "/"); res.StatusCode != http.StatusOK {
		t.Fatalf("untampered sign-in: %d", res.StatusCode)
	}
}

// assertRefusedSignIn checks an error page with no session and no sync.
func assertRefusedSignIn(t *testing.T, h *harness, c *http.Client, res *http.Response, body string, syncsBefore int) {
	t.Helper()
	title := ""
	if _, rest, ok := strings.Cut(body, "<h1"); ok {
		_, rest, _ = strings.Cut(rest, ">")
		title, _, _ = strings.Cut(rest, "<")
	}
	t.Logf("answer: %d %q", res.StatusCode, title)
	if res.StatusCode < 400 {
		t.Errorf("status %d at %s, want an error page", res.StatusCode, res.Request.URL.Path)
	}
	if !strings.Contains(res.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "<h1") {
		t.Errorf("not an error page: %s %.200s", res.Header.Get("Content-Type"), body)
	}
	if h.sessionCookie(c) != "" {
		t.Error("a session cookie was set")
	}
	if n := h.store.sessionCount(); n != 0 {
		t.Errorf("%d sessions in the store", n)
	}
	if n := h.syncer.callCount(); n != syncsBefore {
		t.Errorf("the user was synced (%d syncs, want %d)", n, syncsBefore)
	}
}

// A replayed authorization code, and an Entra error on an otherwise valid
// callback, are refused the same way.
func TestCallbackRefusesReplayedCodeAndEntraErrors(t *testing.T) {
	h := newHarness(t)
	victim := h.browser()
	stolen := h.callbackURL(victim, "alice@example.com", "/")
	if res, _ := h.get(victim, stolen, nil); res.StatusCode != http.StatusOK {
		t.Fatalf("the genuine callback: %d", res.StatusCode)
	}
	h.store.set(func(m *memStore) { m.sessions = map[string]SessionRecord{} })
	syncs := h.syncer.callCount()

	// The attacker replays the used code inside a sign-in of their own.
	attacker := h.browser()
	own, _ := url.Parse(h.callbackURL(attacker, "bob@example.com", "/"))
	used, _ := url.Parse(stolen)
	q := own.Query()
	q.Set("code", used.Query().Get("code"))
	own.RawQuery = q.Encode()
	res, body := h.get(attacker, own.String(), nil)
	assertRefusedSignIn(t, h, attacker, res, body, syncs)

	// Entra answers with an error on a live sign-in attempt.
	for _, code := range []string{"access_denied", "consent_required", "interaction_required", "server_error", "<script>"} {
		t.Run(code, func(t *testing.T) {
			c := h.browser()
			cb, _ := url.Parse(h.callbackURL(c, "alice@example.com", "/"))
			q := cb.Query()
			q.Del("code")
			q.Set("error", code)
			q.Set("error_description", "AADSTS50105: <b>injected</b>")
			cb.RawQuery = q.Encode()
			res, body := h.get(c, cb.String(), nil)
			assertRefusedSignIn(t, h, c, res, body, syncs)
			if strings.Contains(body, "<b>injected</b>") || strings.Contains(body, "<script>") {
				t.Error("the page renders Entra's parameters unescaped")
			}
		})
	}
}
