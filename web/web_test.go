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
		t.Errorf("%s differs from the golden file:\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
	}
}

func TestRenderError(t *testing.T) {
	tests := []struct {
		name   string
		page   ErrorPage
		golden string
	}{
		{
			name: "not assigned, with code and action",
			page: ErrorPage{
				Status:    403,
				Title:     "You are not assigned to this application",
				Message:   "Your account exists, but an administrator has not given it access to this application.",
				Next:      "Ask your administrator to assign you, or a group you belong to, to the application in Microsoft Entra.",
				Code:      "AADSTS50105",
				Action:    &Link{Href: "/oauth2/start?rd=%2F", Label: "Try again"},
				RequestID: "req-123",
			},
			golden: "error_not_assigned.html",
		},
		{
			name: "minimal",
			page: ErrorPage{
				Status:  404,
				Title:   "Page not found",
				Message: "There is nothing here.",
			},
			golden: "error_minimal.html",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := RenderError(&buf, tt.page); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.golden, buf.Bytes())
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

func TestRenderSignedOut(t *testing.T) {
	var buf bytes.Buffer
	if err := RenderSignedOut(&buf, SignedOutPage{SignInHref: "/oauth2/start?rd=%2F"}); err != nil {
		t.Fatal(err)
	}
	golden(t, "signed_out.html", buf.Bytes())
}

func TestPagesAreSelfContained(t *testing.T) {
	var buf bytes.Buffer
	if err := RenderError(&buf, ErrorPage{Title: "t", Message: "m"}); err != nil {
		t.Fatal(err)
	}
	if err := RenderSignedOut(&buf, SignedOutPage{SignInHref: "/"}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, bad := range []string{"<script", "http://", "https://", "style="} {
		if strings.Contains(out, bad) {
			t.Errorf("pages must not contain %q (CSP allows only same-origin styles, no scripts)", bad)
		}
	}
	if !strings.Contains(out, `<html lang="en">`) {
		t.Error("pages must declare their language")
	}
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
