package assertion_test

import (
	"strconv"
	"testing"

	"github.com/teamgate/teamgate/gateway/assertion"
)

// What one signature costs, and what the cache costs instead:
//
//	go test ./gateway/assertion -run '^$' -bench Assertion -benchmem
func BenchmarkAssertionSignES256(b *testing.B) { benchmarkSign(b, assertion.ES256) }
func BenchmarkAssertionSignRS256(b *testing.B) { benchmarkSign(b, assertion.RS256) }

var benchSubject = assertion.Subject{UserID: "3d0e683a-dee3-5d61-b76c-3b6257711118", Email: "alice@example.com", Name: "Alice Adams",
	Teams: []string{"c5d31310-44c4-5a14-8c92-b8b1090f1f57", "a0482a29-3ca0-5753-854d-6552d9b46511"}}

func benchmarkSign(b *testing.B, alg string) {
	s, _ := newSigner(b, alg, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(benchSubject, benchSubject.Teams[0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAssertionCacheHit is the steady state of a proxied request:
// many sessions, each reusing its assertion, from parallel goroutines.
func BenchmarkAssertionCacheHit(b *testing.B) {
	s, _ := newSigner(b, assertion.ES256, nil)
	c := assertion.NewCache(s, 1<<16)
	const sessions = 1024
	snaps := make([]*snapshot, sessions)
	ids := make([]string, sessions)
	for i := range sessions {
		snaps[i] = &snapshot{benchSubject}
		ids[i] = "session-" + strconv.Itoa(i)
		if _, err := c.Get(ids[i], "t", snaps[i], snaps[i].subject); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i = (i + 1) % sessions
			if _, err := c.Get(ids[i], "t", snaps[i], snaps[i].subject); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if c.Signed() != sessions {
		b.Errorf("signed %d, want only the %d warm-up signatures", c.Signed(), sessions)
	}
}
