package main

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for the harness binary when the
// smoke test re-executes it as a child server.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "upstream" || os.Args[1] == "bareproxy") {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if err := runChild(ctx, os.Args[1], os.Args[2:], os.Stdout, os.Stderr); err != nil {
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

func TestRawConnReadsEveryResponseShape(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		wantErr string
	}{
		{"content length", func(w http.ResponseWriter, r *http.Request) { w.Write(chatReply) }, ""},
		{"chunked", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("part one "))
			w.(http.Flusher).Flush()
			w.Write([]byte("part two"))
		}, ""},
		{"chunked with trailer", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Done")
			w.Write([]byte("body"))
			w.(http.Flusher).Flush()
			w.Header().Set("X-Done", "yes")
		}, ""},
		{"connection close", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		}, ""},
		{"no content", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }, "status 204"},
		{"unauthorized", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusUnauthorized) }, "status 401"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			addr := strings.TrimPrefix(srv.URL, "http://")
			c := &rawConn{addr: addr}
			defer c.close()
			for i := 0; i < 3; i++ { // the connection must stay usable (or be redialed)
				err := c.roundTrip(chatRequest(addr, "Cookie", "a=b"))
				if got := errString(err); got != tt.wantErr {
					t.Fatalf("request %d: error %q, want %q", i, got, tt.wantErr)
				}
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestPercentile(t *testing.T) {
	vals := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct {
		name string
		in   []int64
		p    float64
		want int64
	}{
		{"empty", nil, 50, 0},
		{"median", vals, 50, 5},
		{"p99 of ten is the largest", vals, 99, 10},
		{"p100", vals, 100, 10},
		{"p0 is the smallest", vals, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.in, tt.p); got != tt.want {
				t.Errorf("percentile(%v) = %d, want %d", tt.p, got, tt.want)
			}
		})
	}
}

func TestUpstreamStampsEachEvent(t *testing.T) {
	srv := httptest.NewServer(upstreamHandler())
	defer srv.Close()
	before := time.Now().UnixNano()
	delays, err := readStream(t.Context(), srv.Client(), sseTarget{name: "direct", url: srv.URL, header: http.Header{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(delays) != sseEvents {
		t.Fatalf("%d delays, want %d", len(delays), sseEvents)
	}
	for i, d := range delays {
		if d < 0 || d > time.Now().UnixNano()-before {
			t.Fatalf("delay %d = %d ns: not a time since the stream began", i, d)
		}
	}
}

// TestSmoke runs the whole harness briefly: every process starts, users
// sign in, every target answers 200 and the report has all its parts.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds teamgate and starts five processes")
	}
	var out, progress bytes.Buffer
	args := []string{"--duration", "100ms", "--rounds", "2", "--connections", "4", "--users", "4",
		"--sessions", "10", "--storm", "10", "--sse-streams", "1"}
	getenv := func(k string) string { return os.Getenv(k) }
	if err := run(t.Context(), args, getenv, &out, &progress); err != nil {
		t.Fatalf("%v\nprogress:\n%s", err, progress.String())
	}
	report := out.String()
	t.Log("\n" + report)
	for _, want := range []string{nameDirect, nameBare, nameCookie, nameAssertion, nameAPIKey,
		"database statements during the timed runs", "SSE delay", "memory: teamgate (assertions on) RSS", "sign-in storm", "targets:"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	// Every row must have answered 200 throughout: its errors column is 0.
	s := bufio.NewScanner(strings.NewReader(report))
	for s.Scan() {
		line := s.Text()
		for _, name := range []string{nameDirect, nameBare, nameCookie, nameAssertion, nameAPIKey} {
			row := strings.HasPrefix(strings.TrimSpace(line), name+" ") && strings.Contains(line, "µs") // not the SSE lines
			if row && !strings.HasSuffix(strings.TrimSpace(line), " 0") {
				t.Errorf("errors in row: %s", line)
			}
		}
	}
}
