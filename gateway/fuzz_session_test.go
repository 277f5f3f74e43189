package gateway

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// issueCookie returns the cookie value sessionCookies writes for id.
func issueCookie(tb testing.TB, sc *sessionCookies, id string) string {
	tb.Helper()
	rec := httptest.NewRecorder()
	if err := sc.write(rec, httptest.NewRequest("GET", "/", nil), id); err != nil {
		tb.Fatal(err)
	}
	return rec.Result().Cookies()[0].Value
}

func rotatedSessionConfigs() (old, rotated, other SessionConfig) {
	old = testSessionConfig()
	old.Secret = "old-secret-0123456789-0123456789-abc"
	rotated = old
	rotated.Secret = "new-secret-0123456789-0123456789-xyz"
	rotated.PreviousSecrets = []string{old.Secret}
	other = old
	other.Secret = "unrelated-secret-0123456789-0123456789"
	return old, rotated, other
}

// FuzzSessionCookieDecode feeds the session cookie decoder arbitrary
// values. Property: it answers an id only for a cookie teamgate issued
// (under the signing secret or one of the previous ones), never for
// anything else, and a decoder without those secrets answers nothing.
//
// Seeds: two genuine cookies made at run time (they expire, so they cannot
// live in testdata), tampered copies, and testdata/fuzz/FuzzSessionCookieDecode.
func FuzzSessionCookieDecode(f *testing.F) {
	oldCfg, rotCfg, otherCfg := rotatedSessionConfigs()
	oldSC, rotSC, otherSC := newSessionCookies(oldCfg, true), newSessionCookies(rotCfg, true), newSessionCookies(otherCfg, true)
	issued := map[string]bool{"id-under-old-secret": true, "id-under-new-secret": true}
	byOld := issueCookie(f, oldSC, "id-under-old-secret")
	byNew := issueCookie(f, rotSC, "id-under-new-secret")
	for _, v := range []string{byOld, byNew, byNew[:len(byNew)-3] + "AAA", strings.ToUpper(byOld), byOld + byNew, "", "a|b|c", "MTcw"} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, value string) {
		if id, ok := rotSC.decode(value); ok && !issued[id] {
			t.Fatalf("decoded forged value %q to id %q", value, id)
		}
		if id, ok := otherSC.decode(value); ok {
			t.Fatalf("a decoder with an unrelated secret accepted %q (id %q)", value, id)
		}
		if id, ok := oldSC.decode(value); ok && id != "id-under-old-secret" {
			t.Fatalf("the old decoder accepted %q (id %q) it never issued", value, id)
		}
	})
}

// Rotation: after the new secret is put first with the old one kept, both
// old and new cookies are read; new cookies are written with the new
// secret only; and a sign-in started before the rotation still completes.
func TestSessionSecretRotation(t *testing.T) {
	oldCfg, rotCfg, _ := rotatedSessionConfigs()
	oldSC, rotSC := newSessionCookies(oldCfg, false), newSessionCookies(rotCfg, false)
	byOld := issueCookie(t, oldSC, "before")
	byNew := issueCookie(t, rotSC, "after")

	newOnly := rotCfg
	newOnly.PreviousSecrets = nil
	newOnlySC := newSessionCookies(newOnly, false)
	tests := []struct {
		name   string
		sc     *sessionCookies
		value  string
		wantID string // "" = refused
	}{
		{"rotated reads a cookie of the old secret", rotSC, byOld, "before"},
		{"rotated reads its own cookie", rotSC, byNew, "after"},
		{"new cookies are signed with the new secret", newOnlySC, byNew, "after"},
		{"old secret dropped: its cookies are refused", newOnlySC, byOld, ""},
		{"the old configuration cannot read new cookies", oldSC, byNew, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ok := tt.sc.decode(tt.value)
			if tt.wantID == "" {
				if ok {
					t.Errorf("decoded %q, want refusal", id)
				}
				return
			}
			if !ok || id != tt.wantID {
				t.Errorf("decode = %q, %v; want %q", id, ok, tt.wantID)
			}
		})
	}

	t.Run("a sign-in in flight survives the rotation", func(t *testing.T) {
		rec := httptest.NewRecorder()
		st, err := newStateCookies(oldCfg, false, newTestClock().Now).begin(rec, "/after", "verifier")
		if err != nil {
			t.Fatal(err)
		}
		got, ok := newStateCookies(rotCfg, false, newTestClock().Now).take(httptest.NewRecorder(), requestWith(rec), st.State)
		if !ok || got.RD != "/after" {
			t.Fatalf("take after rotation = %+v, %v", got, ok)
		}
		if _, ok := newStateCookies(newOnly, false, newTestClock().Now).take(httptest.NewRecorder(), requestWith(rec), st.State); ok {
			t.Fatal("a state cookie of a dropped secret was accepted")
		}
	})
}
