package litellm

import (
	"strings"
	"testing"
	"time"
)

func TestParseError(t *testing.T) {
	tests := []struct {
		name, body, wantType, wantMsg string
	}{
		{
			name:     "ProxyException with a Python-repr dict",
			body:     `{"error":{"message":"{'error': 'Team id = g1 already exists. Please use a different team id.'}","type":"internal_server_error","param":"None","code":"400"}}`,
			wantType: "internal_server_error",
			wantMsg:  "Team id = g1 already exists. Please use a different team id.",
		},
		{
			name:    "Python repr switches to double quotes around an apostrophe",
			body:    `{"error":{"message":"{'error': \"User's budget can't be negative\"}","type":"x","code":"400"}}`,
			wantMsg: "User's budget can't be negative", wantType: "x",
		},
		{
			name:    "Python repr with escaped quotes",
			body:    `{"error":{"message":"{'error': 'it\\'s \\\\ here'}","code":"400"}}`,
			wantMsg: `it's \ here`,
		},
		{
			name:    "Python repr of a message dict (team/info)",
			body:    `{"error":{"message":"{'message': 'Team not found, passed team id: g1.'}","type":"auth_error","param":"None","code":"404"}}`,
			wantMsg: "Team not found, passed team id: g1.", wantType: "auth_error",
		},
		{name: "detail dict", body: `{"detail":{"error":"User not found in team"}}`, wantMsg: "User not found in team"},
		{name: "detail dict with message", body: `{"detail":{"message":"Malformed request."}}`, wantMsg: "Malformed request."},
		{name: "detail string", body: `{"detail":"User x not found"}`, wantMsg: "User x not found"},
		{name: "detail nested object", body: `{"detail":{"error":{"code":1}}}`, wantMsg: `{"code":1}`},
		{
			name:     "422 list",
			body:     `{"detail":[{"type":"missing","loc":["body","team_id"],"msg":"Field required","input":{}}]}`,
			wantType: "missing", wantMsg: "body.team_id: Field required",
		},
		{name: "error as a plain string", body: `{"error":"boom"}`, wantMsg: "boom"},
		{name: "error code as a number", body: `{"error":{"message":"m","type":"t","code":400}}`, wantMsg: "m", wantType: "t"},
		{name: "not JSON", body: "upstream connect error", wantMsg: "upstream connect error"},
		{name: "empty", body: "", wantMsg: ""},
		{name: "JSON without an envelope", body: `{"ok":false}`, wantMsg: `{"ok":false}`},
		{
			name:    "master key and virtual keys redacted",
			body:    `{"detail":{"error":"bad key ` + testMasterKey + ` and sk-abcdefgh123"}}`,
			wantMsg: "bad key [REDACTED] and sk-[REDACTED]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseError([]byte(tt.body), testMasterKey)
			if got.Type != tt.wantType || got.Message != tt.wantMsg {
				t.Errorf("parseError = {%q %q}, want {%q %q}", got.Type, got.Message, tt.wantType, tt.wantMsg)
			}
		})
	}
}

func TestParseErrorBoundsMessage(t *testing.T) {
	got := parseError([]byte(`{"detail":{"error":"`+strings.Repeat("é", 1000)+`"}}`), "")
	if len(got.Message) > maxMessage+len("…") || !strings.HasSuffix(got.Message, "…") {
		t.Errorf("message is %d bytes: %q", len(got.Message), got.Message[len(got.Message)-10:])
	}
	if !strings.HasPrefix(got.Message, "éé") || strings.ContainsRune(got.Message, '\uFFFD') {
		t.Error("message cut inside a rune")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{" 5 ", 5 * time.Second, true},
		{"-3", 0, true},
		{"1.5", 0, false},
		{"5s", 0, false},
		{"Tue, 01 Jan 2030 00:00:10 GMT", 10 * time.Second, true},
		{"Mon, 31 Dec 2029 23:00:00 GMT", 0, true},
		{"tomorrow", 0, false},
	}
	for _, tt := range tests {
		d, ok := parseRetryAfter(tt.in, now)
		if d != tt.want || ok != tt.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, d, ok, tt.want, tt.ok)
		}
	}
}
