package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func testSessionConfig() SessionConfig {
	c := validConfig()
	return c.Session
}

// requestWith returns a request carrying the cookies set on rec.
func requestWith(rec *httptest.ResponseRecorder) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "/oauth2/callback", nil)
	for _, c := range rec.Result().Cookies() {
		req.AddCookie(c)
	}
	return req
}

func TestCookiesSecureFollowsPublicURL(t *testing.T) {
	for _, secure := range []bool{false, true} {
		rec := httptest.NewRecorder()
		if err := newSessionCookies(testSessionConfig(), secure).write(rec, httptest.NewRequest("GET", "/", nil), "id"); err != nil {
			t.Fatal(err)
		}
		if _, err := newStateCookies(testSessionConfig(), secure, time.Now).begin(rec, "/", "verifier"); err != nil {
			t.Fatal(err)
		}
		for _, c := range rec.Result().Cookies() {
			if c.Secure != secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
				t.Errorf("secure=%v: cookie %s = %+v", secure, c.Name, c)
			}
		}
	}
}

func TestSessionCookieRoundTrip(t *testing.T) {
	sc := newSessionCookies(testSessionConfig(), false)
	rec := httptest.NewRecorder()
	if err := sc.write(rec, httptest.NewRequest("GET", "/", nil), "the-session-id"); err != nil {
		t.Fatal(err)
	}
	value := rec.Result().Cookies()[0].Value
	if strings.Contains(value, "the-session-id") {
		t.Fatal("the session id is readable in the cookie")
	}
	if id, ok := sc.decode(value); !ok || id != "the-session-id" {
		t.Fatalf("decode = %q, %v", id, ok)
	}

	other := testSessionConfig()
	other.Secret = strings.Repeat("x", 32)
	tests := []struct {
		name  string
		value string
		sc    *sessionCookies
	}{
		{"tampered", value[:len(value)-2] + "AA", sc},
		{"garbage", "not-a-cookie", sc},
		{"empty", "", sc},
		{"another secret", value, newSessionCookies(other, false)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := tt.sc.decode(tt.value); ok {
				t.Error("decoded a cookie it should refuse")
			}
		})
	}
}

func TestStateCookieKeysAreSeparateFromSessionKeys(t *testing.T) {
	cfg := testSessionConfig()
	if string(deriveKey(cfg.Secret, "state cookie hmac", 64)) == string(deriveKey(cfg.Secret, "session cookie hmac", 64)) {
		t.Fatal("state and session cookies share a signing key")
	}
	// A session cookie renamed as a state cookie does not decode.
	rec := httptest.NewRecorder()
	newSessionCookies(cfg, false).write(rec, httptest.NewRequest("GET", "/", nil), "id")
	state := strings.Repeat("A", 43)
	sc := newStateCookies(cfg, false, time.Now)
	req := httptest.NewRequest(http.MethodGet, "/oauth2/callback", nil)
	req.AddCookie(&http.Cookie{Name: sc.name(state), Value: rec.Result().Cookies()[0].Value})
	if _, ok := sc.take(httptest.NewRecorder(), req, state); ok {
		t.Fatal("a session cookie was accepted as a sign-in attempt")
	}
}

func TestStateCookieTake(t *testing.T) {
	clock := newTestClock()
	sc := newStateCookies(testSessionConfig(), false, clock.Now)
	rec := httptest.NewRecorder()
	st, err := sc.begin(rec, "/ui/", "verifier-1")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("valid, then deleted", func(t *testing.T) {
		out := httptest.NewRecorder()
		got, ok := sc.take(out, requestWith(rec), st.State)
		if !ok || got.Verifier != "verifier-1" || got.RD != "/ui/" || got.Nonce != st.Nonce {
			t.Fatalf("take = %+v, %v", got, ok)
		}
		deleted := out.Result().Cookies()
		if len(deleted) != 1 || deleted[0].MaxAge >= 0 {
			t.Errorf("cookie not deleted: %+v", deleted)
		}
	})
	t.Run("other state", func(t *testing.T) {
		if _, ok := sc.take(httptest.NewRecorder(), requestWith(rec), strings.Repeat("B", 43)); ok {
			t.Error("accepted a state with no attempt")
		}
	})
	t.Run("malformed state", func(t *testing.T) {
		for _, bad := range []string{"", "short", st.State + "x", strings.Repeat(";", 43)} {
			if _, ok := sc.take(httptest.NewRecorder(), requestWith(rec), bad); ok {
				t.Errorf("accepted state %q", bad)
			}
		}
	})
	t.Run("expired", func(t *testing.T) {
		clock.Advance(stateLifetime + time.Second)
		defer clock.Advance(-stateLifetime - time.Second)
		if _, ok := sc.take(httptest.NewRecorder(), requestWith(rec), st.State); ok {
			t.Error("accepted an expired attempt")
		}
	})
}

func TestStateCookieFitsLongestRedirect(t *testing.T) {
	sc := newStateCookies(testSessionConfig(), false, time.Now)
	rd := "/" + strings.Repeat("a", maxRedirectLen-1)
	if safeRedirect(rd) != rd {
		t.Fatal("the longest allowed rd is refused")
	}
	rec := httptest.NewRecorder()
	if _, err := sc.begin(rec, rd, "v"); err != nil {
		t.Fatalf("begin with the longest rd: %v", err)
	}
	c := rec.Result().Cookies()[0]
	if n := len(c.Name) + len(c.Value); n > 4000 {
		t.Errorf("state cookie is %d bytes; browsers drop cookies over 4096", n)
	}
}
