package gateway

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func entry(sid, user string, expires, fresh time.Time) *principalEntry {
	return &principalEntry{sessionID: sid, expiresAt: expires, freshUntil: fresh, principal: Principal{UserID: user}}
}

func TestSessionCacheGet(t *testing.T) {
	tests := []struct {
		name    string
		e       *principalEntry
		at      time.Time
		wantHit bool
	}{
		{"fresh", entry("s", "u", t0.Add(time.Hour), t0.Add(30*time.Second)), t0.Add(10 * time.Second), true},
		{"stale after ttl", entry("s", "u", t0.Add(time.Hour), t0.Add(30*time.Second)), t0.Add(30 * time.Second), false},
		{"session expired while fresh", entry("s", "u", t0.Add(5*time.Second), t0.Add(30*time.Second)), t0.Add(5 * time.Second), false},
		{"session expired long ago", entry("s", "u", t0.Add(-time.Second), t0.Add(30*time.Second)), t0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newSessionCache(64)
			c.put("cookie", tt.e, t0)
			got := c.get("cookie", tt.at)
			if (got != nil) != tt.wantHit {
				t.Errorf("hit = %v, want %v", got != nil, tt.wantHit)
			}
		})
	}
}

func TestSessionCacheDeletes(t *testing.T) {
	c := newSessionCache(1024)
	far := t0.Add(time.Hour)
	c.put("c1", entry("s1", "alice", far, far), t0)
	c.put("c2", entry("s2", "alice", far, far), t0)
	c.put("c3", entry("s3", "bob", far, far), t0)

	c.deleteSession("s1")
	if c.get("c1", t0) != nil || c.get("c2", t0) == nil {
		t.Fatal("deleteSession removed the wrong entries")
	}
	c.deleteUser("alice")
	if c.get("c2", t0) != nil || c.get("c3", t0) == nil {
		t.Fatal("deleteUser removed the wrong entries")
	}
	c.deleteKey("c3")
	if c.len() != 0 {
		t.Fatalf("len = %d after deleting everything", c.len())
	}
}

func TestSessionCacheIsBounded(t *testing.T) {
	c := newSessionCache(cacheShards * 4)
	far := t0.Add(time.Hour)
	for i := 0; i < 10_000; i++ {
		c.put(fmt.Sprintf("cookie-%d", i), entry(fmt.Sprint(i), "u", far, far), t0)
	}
	if n := c.len(); n > cacheShards*4 {
		t.Errorf("cache holds %d entries, bound is %d", n, cacheShards*4)
	}
	// The newest entry is always kept.
	if c.get("cookie-9999", t0) == nil {
		t.Error("the entry just put was evicted")
	}
}

func TestSessionCacheEvictsUnusableFirst(t *testing.T) {
	c := newSessionCache(cacheShards) // one entry per shard
	far := t0.Add(time.Hour)
	// Fill with stale entries, then add fresh ones: every put must succeed
	// and the fresh ones survive.
	for i := 0; i < 200; i++ {
		c.put(fmt.Sprintf("stale-%d", i), entry("x", "u", far, t0), t0)
	}
	c.put("fresh", entry("f", "u", far, far), t0.Add(time.Second))
	if c.get("fresh", t0.Add(time.Second)) == nil {
		t.Fatal("fresh entry missing")
	}
}

func TestSessionCacheConcurrent(t *testing.T) {
	c := newSessionCache(256)
	far := t0.Add(time.Hour)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				key := fmt.Sprintf("c-%d", (i*7+w)%300)
				c.put(key, entry(key, fmt.Sprint(w), far, far), t0)
				c.get(key, t0)
				if i%100 == 0 {
					c.deleteUser(fmt.Sprint(w))
				}
			}
		}()
	}
	wg.Wait()
}
