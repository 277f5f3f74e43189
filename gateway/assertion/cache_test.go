package assertion_test

import (
	"sync"
	"testing"
	"time"

	"github.com/teamgate/teamgate/gateway/assertion"
)

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// snapshot stands for the gateway's cached session entry: the cache only
// compares its address.
type snapshot struct{ sub assertion.Subject }

func (s *snapshot) subject() assertion.Subject { return s.sub }

func newCache(t testing.TB, max int) (*assertion.Cache, *clock) {
	t.Helper()
	clk := &clock{now: t0}
	s, _ := newSigner(t, assertion.ES256, func(o *assertion.Options) { o.Now = clk.Now })
	return assertion.NewCache(s, max), clk
}

func get(t testing.TB, c *assertion.Cache, session, team string, snap *snapshot) string {
	t.Helper()
	jwt, err := c.Get(session, team, snap, snap.subject)
	if err != nil {
		t.Fatal(err)
	}
	return jwt
}

func TestCacheReusesUntilAThirdOfTheLifetimeRemains(t *testing.T) {
	c, clk := newCache(t, 100)
	alice := &snapshot{assertion.Subject{UserID: "alice", Teams: []string{"t1", "t2"}}}
	first := get(t, c, "s1", "t1", alice)

	steps := []struct {
		name     string
		advance  time.Duration
		team     string
		snap     *snapshot
		wantSame bool // the same token as `first`
	}{
		{"same session and team", 0, "t1", alice, true},
		{"another team", 0, "t2", alice, false},
		// Signed at t0 with iat = t0-10s and exp = iat+5m: renewal is due
		// when less than 100s remain, i.e. at t0+3m10s.
		{"just before renewal is due", 3*time.Minute + 9*time.Second, "t1", alice, true},
		{"a re-read snapshot saying the same", 0, "t1", &snapshot{alice.sub}, true},
		{"renewal due", time.Second, "t1", alice, false},
	}
	signed := c.Signed()
	for _, st := range steps {
		clk.Advance(st.advance)
		before := c.Signed()
		got := get(t, c, "s1", st.team, st.snap)
		if (got == first) != st.wantSame {
			t.Errorf("%s: same token = %v, want %v", st.name, got == first, st.wantSame)
		}
		if signedNow := c.Signed() - before; (signedNow == 0) != st.wantSame {
			t.Errorf("%s: signed %d assertions", st.name, signedNow)
		}
	}
	if n := c.Signed() - signed; n != 2 {
		t.Errorf("signed %d assertions over the steps, want 2 (another team, renewal)", n)
	}
}

func TestCacheResignsWhenTheUserChanged(t *testing.T) {
	c, _ := newCache(t, 100)
	before := get(t, c, "s1", "t1", &snapshot{assertion.Subject{UserID: "alice", Teams: []string{"t1", "t2"}}})
	after := get(t, c, "s1", "t1", &snapshot{assertion.Subject{UserID: "alice", Teams: []string{"t1"}}})
	if before == after {
		t.Fatal("a user whose teams changed kept the old assertion")
	}
	if payload(t, after)["teams"] == nil || string(payload(t, after)["teams"]) != `["t1"]` {
		t.Errorf("teams = %s", payload(t, after)["teams"])
	}
}

func TestCacheForgets(t *testing.T) {
	c, _ := newCache(t, 100)
	alice := &snapshot{assertion.Subject{UserID: "alice"}}
	bob := &snapshot{assertion.Subject{UserID: "bob"}}
	a1, a2, b1 := get(t, c, "sa1", "", alice), get(t, c, "sa2", "", alice), get(t, c, "sb", "", bob)

	c.ForgetUser("alice")
	if get(t, c, "sa1", "", alice) == a1 || get(t, c, "sa2", "", alice) == a2 {
		t.Error("ForgetUser kept alice's assertions")
	}
	if get(t, c, "sb", "", bob) != b1 {
		t.Error("ForgetUser dropped bob's assertion")
	}
	c.ForgetSession("sb")
	if get(t, c, "sb", "", bob) == b1 {
		t.Error("ForgetSession kept the session's assertion")
	}
}

func TestCacheIsBounded(t *testing.T) {
	c, _ := newCache(t, 32) // 16 shards of 2
	snap := &snapshot{assertion.Subject{UserID: "u"}}
	for i := range 500 {
		get(t, c, string(rune('A'+i%26))+string(rune('a'+i/26)), "", snap)
	}
	if n := c.Len(); n > 32 {
		t.Errorf("cache holds %d assertions, want at most 32", n)
	}
}

func TestCacheConcurrentUse(t *testing.T) {
	c, clk := newCache(t, 1000)
	snap := &snapshot{assertion.Subject{UserID: "u", Teams: []string{"t1", "t2"}}}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 200 {
				if _, err := c.Get([]string{"s1", "s2"}[w%2], []string{"t1", "t2"}[i%2], snap, snap.subject); err != nil {
					t.Error(err)
					return
				}
				if i == 100 && w == 0 {
					clk.Advance(4 * time.Minute)
				}
			}
		})
	}
	wg.Wait()
}

func TestCacheOfSizeZeroSignsEveryTime(t *testing.T) {
	c, _ := newCache(t, 0)
	snap := &snapshot{assertion.Subject{UserID: "u"}}
	if get(t, c, "s", "", snap) == get(t, c, "s", "", snap) || c.Signed() != 2 || c.Len() != 0 {
		t.Errorf("signed %d, holds %d: a disabled cache must sign every time and keep nothing", c.Signed(), c.Len())
	}
}
