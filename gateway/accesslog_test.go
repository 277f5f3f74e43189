package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// slogAccessLine is what slog's own JSON handler writes for a, the
// reference the access line encoder must match byte for byte.
func slogAccessLine(t testing.TB, at time.Time, a *accessLine, with ...any) string {
	t.Helper()
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, nil)).With(with...)
	r := slog.NewRecord(at, slog.LevelInfo, "request", 0)
	attrs := a.attrs()
	r.AddAttrs(attrs[:]...)
	if err := l.Handler().Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// fastAccessLine is what NewLogHandler's encoder writes for a.
func fastAccessLine(t testing.TB, at time.Time, a *accessLine, with ...any) string {
	t.Helper()
	var buf bytes.Buffer
	l := slog.New(NewLogHandler(&buf, false, nil)).With(with...)
	lh, ok := l.Handler().(*logHandler)
	if !ok || !lh.fast {
		t.Fatalf("handler %T is not on the fast path", l.Handler())
	}
	lh.writeAccess(at, a)
	return buf.String()
}

func TestAccessLineMatchesSlog(t *testing.T) {
	at := time.Date(2026, 11, 28, 22, 18, 54, 123456789, time.UTC)
	base := accessLine{method: "POST", path: "/v1/chat/completions", status: 200, duration: 1234567 * time.Nanosecond,
		requestID: "ABCDEFGHIJKLMNOPQRSTUVWXYZ", clientIP: netip.MustParseAddr("192.0.2.1"), userID: "00000000-0000-0000-0000-000000000001",
		teamID: "00000000-0000-0000-0000-0000000000aa"}
	tests := []struct {
		name   string
		change func(*accessLine)
		at     time.Time
	}{
		{name: "typical"},
		{name: "anonymous", change: func(a *accessLine) { a.userID, a.teamID, a.status = "", "", 401 }},
		{name: "zero duration", change: func(a *accessLine) { a.duration = 0 }},
		{name: "sub-microsecond duration", change: func(a *accessLine) { a.duration = 999 }},
		{name: "one microsecond", change: func(a *accessLine) { a.duration = time.Microsecond }},
		{name: "whole milliseconds", change: func(a *accessLine) { a.duration = 25 * time.Millisecond }},
		{name: "a long stream", change: func(a *accessLine) { a.duration = 3*time.Hour + 7*time.Microsecond }},
		{name: "a year", change: func(a *accessLine) { a.duration = 365 * 24 * time.Hour }},
		{name: "client gone", change: func(a *accessLine) { a.status = 499 }},
		{name: "quotes and backslashes", change: func(a *accessLine) { a.path = `/a"b\c` }},
		{name: "control characters", change: func(a *accessLine) { a.path = "/a\nb\rc\td\x00e\x1ff\x7fg" }},
		{name: "HTML is not escaped", change: func(a *accessLine) { a.path = "/<script>&</script>" }},
		{name: "unicode", change: func(a *accessLine) { a.path = "/ünïcødé/日本/😀" }},
		{name: "line and paragraph separators", change: func(a *accessLine) { a.path = "/a\u2028b\u2029c" }},
		{name: "invalid UTF-8", change: func(a *accessLine) { a.path = "/a\xffb\xc3(c\xed\xa0\x80" }},
		{name: "truncated rune at the end", change: func(a *accessLine) { a.path = "/a\xe6\x97" }},
		{name: "odd method", change: func(a *accessLine) { a.method = "M-SEARCH" }},
		{name: "empty everything", change: func(a *accessLine) { *a = accessLine{} }},
		{name: "IPv6 client", change: func(a *accessLine) { a.clientIP = netip.MustParseAddr("2001:db8::1") }},
		{name: "IPv4-mapped IPv6 client", change: func(a *accessLine) { a.clientIP = netip.MustParseAddr("::ffff:192.0.2.1") }},
		{name: "zoned IPv6 client", change: func(a *accessLine) { a.clientIP = netip.MustParseAddr("fe80::1%eth0") }},
		{name: "unknown client", change: func(a *accessLine) { a.clientIP = netip.Addr{} }},
		{name: "local time zone", at: time.Date(2026, 3, 1, 0, 0, 0, 0, time.FixedZone("X", -(3*3600+30*60)))},
		{name: "whole second", at: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
		{name: "monotonic reading", at: time.Now()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := base
			if tt.change != nil {
				tt.change(&a)
			}
			when := at
			if !tt.at.IsZero() {
				when = tt.at
			}
			want := slogAccessLine(t, when, &a, "component", "gateway")
			if got := fastAccessLine(t, when, &a, "component", "gateway"); got != want {
				t.Errorf("access line differs from slog's\n got: %s\nwant: %s", got, want)
			}
			if !json.Valid([]byte(want)) {
				t.Errorf("not JSON: %s", want)
			}
		})
	}
}

// Attributes added with With are encoded as slog encodes them; anything but
// a string (or a group) sends the line through slog instead.
func TestAccessLineWithAttributes(t *testing.T) {
	at := time.Date(2026, 11, 28, 22, 18, 54, 5, time.UTC)
	a := accessLine{method: "GET", path: "/", status: 200, requestID: "r"}
	for _, with := range [][]any{nil, {"component", "gateway", "replica", `b"1`}, {"k\n", "v\xff"}} {
		if got, want := fastAccessLine(t, at, &a, with...), slogAccessLine(t, at, &a, with...); got != want {
			t.Errorf("With(%q): got %s, want %s", with, got, want)
		}
	}
	for name, l := range map[string]*slog.Logger{
		"int attribute": slog.New(NewLogHandler(&bytes.Buffer{}, false, nil)).With("n", 1),
		"group":         slog.New(NewLogHandler(&bytes.Buffer{}, false, nil)).WithGroup("g"),
		"text":          slog.New(NewLogHandler(&bytes.Buffer{}, true, nil)),
		"ReplaceAttr": slog.New(NewLogHandler(&bytes.Buffer{}, false, &slog.HandlerOptions{
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return a }})),
	} {
		if lh, ok := l.Handler().(*logHandler); !ok || lh.fast {
			t.Errorf("%s: the access line would skip slog", name)
		}
	}
}

func FuzzAccessLineMatchesSlog(f *testing.F) {
	f.Add("POST", "/v1/chat/completions", 200, int64(1234567), "id", "u", "t", int64(1764368334), 987654321, 0)
	f.Add("GET", "/a\u2028\xff\"\\\n", 499, int64(0), "", "", "", int64(0), 0, -210)
	f.Add("GET", "/", 200, int64(math.MaxInt64), "", "", "", int64(253402300799), 100, 14*60)
	f.Fuzz(func(t *testing.T, method, path string, status int, d int64, id, user, team string, sec int64, nsec, zoneMinutes int) {
		if d < 0 {
			d = -(d + 1)
		}
		a := accessLine{method: method, path: path, status: status, duration: time.Duration(d),
			requestID: id, clientIP: netip.MustParseAddr("127.0.0.1"), userID: user, teamID: team}
		// Any instant of the years 1970 to 9999 (slog flags others), any
		// zone offset within a day.
		sec = max(sec, -sec-1) % 253402300800
		zone := time.FixedZone("Z", zoneMinutes%(24*60)*60)
		at := time.Unix(sec, int64(max(nsec, -nsec-1)%1e9)).In(zone)
		if y := at.Year(); y < 0 || y > 9999 {
			t.Skip()
		}
		if got, want := fastAccessLine(t, at, &a, "component", "gateway"), slogAccessLine(t, at, &a, "component", "gateway"); got != want {
			t.Errorf("got  %q\nwant %q", got, want)
		}
	})
}

// Lines within one second share its formatted date; the next second, or
// another zone, is formatted afresh.
func TestAccessLineTimes(t *testing.T) {
	var buf bytes.Buffer
	lh := slog.New(NewLogHandler(&buf, false, nil)).Handler().(*logHandler)
	base := time.Date(2026, 11, 28, 23, 59, 59, 0, time.UTC)
	a := accessLine{method: "GET", path: "/", status: 200}
	for _, at := range []time.Time{base, base.Add(1), base.Add(120 * time.Millisecond), base.Add(999999999),
		base.Add(time.Second), base.Add(time.Second + 1000), base.Add(time.Second).In(time.FixedZone("", 3600)),
		base.Add(time.Second).In(time.FixedZone("", -5*3600-30*60)), base.AddDate(-1, 0, 0), base} {
		buf.Reset()
		lh.writeAccess(at, &a)
		if want := slogAccessLine(t, at, &a); buf.String() != want {
			t.Errorf("at %v:\n got %s\nwant %s", at, buf.String(), want)
		}
	}
}

// The gateway writes its access lines through NewLogHandler's encoder, and
// they read as before: one JSON object per request with its fields.
func TestAccessLogThroughLogHandler(t *testing.T) {
	var buf syncBuffer
	h := newHarness(t, func(s *setup) { s.deps.Logger = slog.New(NewLogHandler(&buf, false, nil)) })
	req := httptest.NewRequest(http.MethodGet, "/teamgate/healthz?code=q-must-not-be-logged", nil)
	rec := httptest.NewRecorder()
	h.gw.ServeHTTP(rec, req)
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if strings.Contains(l, `"msg":"request"`) {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatalf("access line is not JSON: %v: %s", err, l)
			}
		}
	}
	if line == nil {
		t.Fatalf("no access line in:\n%s", buf.String())
	}
	for k, want := range map[string]any{"level": "INFO", "component": "gateway", "method": "GET",
		"path": "/teamgate/healthz", "status": float64(200), "request_id": rec.Header().Get(requestIDHeader),
		"client_ip": "192.0.2.1", "user_id": "", "team_id": ""} {
		if line[k] != want {
			t.Errorf("%s = %#v, want %#v", k, line[k], want)
		}
	}
	if _, ok := line["duration_ms"].(float64); !ok {
		t.Errorf("duration_ms = %#v", line["duration_ms"])
	}
	if strings.Contains(buf.String(), "q-must-not-be-logged") {
		t.Errorf("the query reached the log:\n%s", buf.String())
	}
}

// flushCounter is a buffering writer: it counts its flushes.
type flushCounter struct {
	bytes.Buffer
	flushes int
}

func (f *flushCounter) Flush() error { f.flushes++; return nil }

// Warnings and errors are flushed at once when the writer buffers; info
// lines are left to the writer.
func TestLogHandlerFlushesWarnings(t *testing.T) {
	for _, text := range []bool{false, true} {
		w := &flushCounter{}
		l := slog.New(NewLogHandler(w, text, nil)).With("component", "test")
		l.Info("one")
		l.Debug("not logged")
		if w.flushes != 0 {
			t.Errorf("text=%v: an info line flushed", text)
		}
		l.Warn("two")
		l.Error("three")
		if w.flushes != 2 {
			t.Errorf("text=%v: %d flushes after a warning and an error, want 2", text, w.flushes)
		}
		if n := strings.Count(w.String(), "\n"); n != 3 {
			t.Errorf("text=%v: %d lines, want 3:\n%s", text, n, w.String())
		}
	}
}
