package gateway

import (
	"net/http"
	"net/textproto"
	"slices"
	"testing"
)

// asciiHeaderKey is the reference normalisation, written independently of
// headers.go: how the servers behind teamgate (WSGI/ASGI stacks, Go, nginx)
// decide that two header names are the same header. Only ASCII letters fold,
// and '_' counts as '-'.
func asciiHeaderKey(name string) string {
	b := []byte(name)
	for i, c := range b {
		switch {
		case c == '_':
			b[i] = '-'
		case c >= 'A' && c <= 'Z':
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// FuzzIdentityHeaderStrip checks that after strip no header is left that
// the upstream could read as an identity header, that every other header
// survives untouched, and that the two normalisations in headers.go (the
// allocating one used for configuration, the allocation-free one used per
// request) agree on every input.
//
// Seeds: testdata/fuzz/FuzzIdentityHeaderStrip.
func FuzzIdentityHeaderStrip(f *testing.F) {
	for _, s := range [][2]string{
		{"X-Forwarded-User", "X-Forwarded-User"},
		{"x_forwarded_user", "X-Forwarded-User"},
		{"X_FORWARDED-EMAIL", "X-Remote-User"},
		{"x-litellm-team_id", "X-Key"},
		{"X-\u212Aey", "X-Key"}, // KELVIN SIGN lower-cases to an ASCII 'k'
		{"X-Forwarded-U\u017Fer", "X-Forwarded-User"},
		{"X-Forwarded-Users", "X-Forwarded-User"},
		{"Authorization", "X_Remote_User"},
		{"", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, name, configured string) {
		var cfg Config
		cfg.ApplyDefaults()
		hc := cfg.Upstream.Headers
		hc.User = configured
		if len(hc.validate()) != 0 {
			hc.User = DefaultUserHeader
		}
		ih := newIdentityHeaders(hc)
		owned := map[string]bool{}
		for _, fld := range hc.fields() {
			owned[asciiHeaderKey(fld.value)] = true
		}

		// The two normalisations must agree, whatever the input.
		for _, fld := range hc.fields() {
			want := normalizeHeaderName(name) == normalizeHeaderName(fld.value)
			if got := sameNormalizedHeader(name, normalizeHeaderName(fld.value)); got != want {
				t.Fatalf("normalisations disagree on %q vs %q: per-request %v, configuration %v", name, fld.value, got, want)
			}
		}

		h := http.Header{
			name:                                   {"spoofed-raw"},
			textproto.CanonicalMIMEHeaderKey(name): {"spoofed-canonical"},
			"X-Unrelated":                          {"kept"},
			"Authorization":                        {"Bearer kept"},
			"X-Forwarded-" + name:                  {"prefixed"},
			asciiHeaderKey(name) + "-Suffix":       {"suffixed"},
			textproto.CanonicalMIMEHeaderKey("X_" + name): {"underscored"},
		}
		before := h.Clone()
		ih.strip(h)
		for k := range h {
			if owned[asciiHeaderKey(k)] {
				t.Fatalf("%q (configured user header %q) survived stripping", k, hc.User)
			}
		}
		for k, v := range before {
			if owned[asciiHeaderKey(k)] {
				continue
			}
			if !slices.Equal(h[k], v) {
				t.Fatalf("unrelated header %q was changed: %q → %q", k, v, h[k])
			}
		}
	})
}
