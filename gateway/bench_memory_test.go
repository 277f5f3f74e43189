package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"
)

// BenchmarkSessionMemory reports the live heap each active session costs
// the gateway: its cached lookup (principal and precomputed headers) and,
// with assertions on, its cached signed assertion. Each session is created
// in the store, then used by one proxied request, as in production after
// sign-in:
//
//	go test ./gateway -run '^$' -bench SessionMemory
//
// cmd/teamgate-bench reads the resident set size of a teamgate process
// with 10,000 sessions, which adds the runtime's own overhead and the
// garbage collector's headroom (GOGC) to this.
func BenchmarkSessionMemory(b *testing.B) {
	const sessions = 2000
	off := false
	for _, tt := range []struct {
		name string
		opts []func(*setup)
	}{
		{"cookie", []func(*setup){func(s *setup) { s.cfg.Assertion.Enabled = &off }}},
		{"assertion", nil},
	} {
		b.Run(tt.name, func(b *testing.B) {
			var perSession float64
			for b.Loop() {
				perSession = sessionHeap(b, sessions, tt.opts...)
			}
			b.ReportMetric(perSession, "B/session")
		})
	}
}

// sessionHeap builds a gateway with n active sessions and returns the live
// heap per session.
func sessionHeap(b *testing.B, n int, opts ...func(*setup)) float64 {
	quiet := func(s *setup) {
		s.deps.Now = time.Now
		s.deps.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil)) // not the harness's growing buffer
	}
	h := newHarness(b, append([]func(*setup){quiet}, opts...)...)
	h.gw.proxy.Transport = memoryUpstream{}
	teams := []TeamRef{
		{ID: "b0000000-0000-4000-9000-000000000001", Alias: "Bench Team 01"},
		{ID: "b0000000-0000-4000-9000-000000000008", Alias: "Bench Team 08"},
		{ID: "b0000000-0000-4000-9000-000000000014", Alias: "Bench Team 14"},
	}
	cookies := make([]string, n)
	for i := range cookies {
		id := fmt.Sprintf("b0000000-0000-4000-8000-%012d", i)
		upn := fmt.Sprintf("user%05d@bench.example", i)
		h.store.set(func(m *memStore) {
			m.principals[id] = Principal{UserID: id, Email: upn, UPN: upn, DisplayName: "Bench User", Role: "internal_user", Teams: teams}
		})
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if err := h.gw.sessions.create(context.Background(), rec, req, id, time.Hour); err != nil {
			b.Fatal(err)
		}
		cookies[i] = rec.Result().Cookies()[0].Value
	}
	before := liveHeap()
	w := &discardWriter{header: http.Header{}}
	for _, c := range cookies {
		clear(w.header)
		w.status = 0
		r := httptest.NewRequest(http.MethodGet, "http://teamgate.example/v1/models", nil)
		r.Header.Set("Cookie", DefaultCookieName+"="+c)
		h.gw.ServeHTTP(w, r)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
	after := liveHeap()
	if got := h.gw.sessions.cache.len(); got != n {
		b.Fatalf("%d sessions cached, want %d", got, n)
	}
	runtime.KeepAlive(h)
	return float64(after-before) / float64(n)
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
