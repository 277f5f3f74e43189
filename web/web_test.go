package web

import (
	"bytes"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test ./web -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./web -update rewrites it):\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
	}
}

// TestGolden renders every template with representative data.
func TestGolden(t *testing.T) {
	for _, p := range samplePages() {
		t.Run(p.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := p.render(&buf); err != nil {
				t.Fatal(err)
			}
			golden(t, p.name+".html", buf.Bytes())
		})
	}
}

func TestRenderErrorEscapes(t *testing.T) {
	var buf bytes.Buffer
	err := RenderError(&buf, ErrorPage{
		Title:   `<script>alert(1)</script>`,
		Message: `"><img src=x onerror=alert(1)>`,
		Action:  &Link{Href: "javascript:alert(1)", Label: "x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, bad := range []string{"<script>", "<img", "javascript:"} {
		if strings.Contains(out, bad) {
			t.Errorf("rendered page contains %q unescaped:\n%s", bad, out)
		}
	}
}

// Values that come from Entra (group names, user names) or from the query
// string (search terms) are escaped wherever they appear.
func TestPagesEscapeDirectoryValues(t *testing.T) {
	const evil = `"><script>alert(1)</script>`
	team := TeamRow{ID: evil, Alias: evil, Href: "/teamgate/admin/team?id=x"}
	pages := map[string]func(*bytes.Buffer) error{
		"me": func(b *bytes.Buffer) error {
			return RenderMe(b, MePage{Name: evil, UserID: evil, Teams: []MyTeam{{ID: evil, Alias: evil}},
				LastSync: &SyncEvent{Outcome: "ok", Joined: []TeamName{{Alias: evil}}}})
		},
		"teams": func(b *bytes.Buffer) error {
			return RenderAdminTeams(b, AdminTeamsPage{Query: evil, Teams: []TeamRow{team}})
		},
		"team": func(b *bytes.Buffer) error {
			return RenderAdminTeam(b, AdminTeamPage{Team: team, Members: []MemberRow{{UserID: evil, DisplayName: evil}}})
		},
		"events": func(b *bytes.Buffer) error {
			return RenderAdminEvents(b, AdminEventsPage{UserID: evil, Events: []SyncEvent{{UserID: evil, Outcome: "error", Error: evil}}})
		},
	}
	for name, render := range pages {
		var buf bytes.Buffer
		if err := render(&buf); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if strings.Contains(buf.String(), "<script>") {
			t.Errorf("%s: directory value rendered unescaped", name)
		}
	}
}

// Every page is served under a CSP without scripts or inline styles, shows
// its request id, declares its language, has one h1, and labels every
// form control.
func TestPagesAreSelfContainedAndAccessible(t *testing.T) {
	for _, p := range samplePages() {
		t.Run(p.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := p.render(&buf); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			for _, bad := range []string{"<script", "http://", "https://", "style=", " onclick", "<img"} {
				if strings.Contains(out, bad) {
					t.Errorf("page contains %q (CSP allows only same-origin styles, no scripts)", bad)
				}
			}
			if !strings.Contains(out, `<html lang="en">`) {
				t.Error("page must declare its language")
			}
			if n := strings.Count(out, "<h1"); n != 1 {
				t.Errorf("page has %d h1 headings, want 1", n)
			}
			if !strings.Contains(out, "Request ID <code>"+sampleRequestID+"</code>") {
				t.Error("page does not show its request id")
			}
			checkLabels(t, out)
		})
	}
}

// checkLabels asserts that every visible input and select has a <label for>.
func checkLabels(t *testing.T, page string) {
	t.Helper()
	for _, tag := range []string{"<input ", "<select "} {
		rest := page
		for {
			i := strings.Index(rest, tag)
			if i < 0 {
				break
			}
			end := strings.IndexByte(rest[i:], '>')
			el := rest[i : i+end]
			rest = rest[i+end:]
			if strings.Contains(el, `type="hidden"`) {
				continue
			}
			id := attr(el, "id")
			if id == "" || !strings.Contains(page, `<label for="`+id+`">`) {
				t.Errorf("form control without a label: %s>", el)
			}
		}
	}
}

func attr(el, name string) string {
	_, after, ok := strings.Cut(el, " "+name+`="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(after, `"`)
	return v
}

func TestStatic(t *testing.T) {
	h := http.StripPrefix(strings.TrimSuffix(StaticPrefix, "/"), Static())
	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantType   string
	}{
		{name: "stylesheet", path: StaticPrefix + "style.css", wantStatus: http.StatusOK, wantType: "text/css; charset=utf-8"},
		{name: "missing", path: StaticPrefix + "nope.js", wantStatus: http.StatusNotFound},
		{name: "no templates through static", path: StaticPrefix + "../templates/error.html", wantStatus: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if tt.wantType != "" && rec.Header().Get("Content-Type") != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", rec.Header().Get("Content-Type"), tt.wantType)
			}
		})
	}
}
