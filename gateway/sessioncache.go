package gateway

import (
	"hash/maphash"
	"sync"
	"time"
)

// principalEntry is a looked-up session with everything the proxy injects,
// precomputed once per lookup rather than once per request.
type principalEntry struct {
	sessionID  string    // SHA-256 hex of the session id, as stored
	ended      string    // why teamgate ended the session; "" while it is live
	expiresAt  time.Time // the session's own expiry
	freshUntil time.Time // when this replica must ask the database again
	principal  Principal
	email      string // header-safe, "" when absent or unsendable
	upn        string
	groups     string // the capped, comma-separated team ids
	// activity tracks requests for session.idle_timeout (session_idle.go);
	// nil when the entry was not loaded from a session record.
	activity *entryActivity
}

// usable reports whether the entry may answer a request at now: the session
// has not expired and the cached copy is still fresh.
func (e *principalEntry) usable(now time.Time) bool {
	return now.Before(e.expiresAt) && now.Before(e.freshUntil)
}

const cacheShards = 32

// sessionCache keeps looked-up sessions for a short TTL so steady-state
// proxying does not touch the database. It is keyed by the raw cookie value:
// a hit then costs one map lookup, with no cookie decryption or hashing.
// It is sharded to keep lock contention low under many connections and
// bounded so that a flood of distinct valid cookies cannot grow it without
// limit.
type sessionCache struct {
	seed        maphash.Seed
	maxPerShard int
	shards      [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[string]*principalEntry
}

func newSessionCache(maxEntries int) *sessionCache {
	per := maxEntries / cacheShards
	if per < 1 {
		per = 1
	}
	c := &sessionCache{seed: maphash.MakeSeed(), maxPerShard: per}
	for i := range c.shards {
		c.shards[i].m = make(map[string]*principalEntry)
	}
	return c
}

func (c *sessionCache) shard(key string) *cacheShard {
	return &c.shards[maphash.String(c.seed, key)%cacheShards]
}

// get returns the usable entry for key, or nil.
func (c *sessionCache) get(key string, now time.Time) *principalEntry {
	s := c.shard(key)
	s.mu.RLock()
	e := s.m[key]
	s.mu.RUnlock()
	if e == nil || !e.usable(now) {
		return nil
	}
	return e
}

// put stores e under key. When the shard is full it first drops entries
// that are no longer usable, then arbitrary ones (Go's map iteration order
// is random, which makes this a cheap random eviction).
func (c *sessionCache) put(key string, e *principalEntry, now time.Time) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[key]; !ok && len(s.m) >= c.maxPerShard {
		for k, old := range s.m {
			if !old.usable(now) {
				delete(s.m, k)
			}
		}
		for k := range s.m {
			if len(s.m) < c.maxPerShard {
				break
			}
			delete(s.m, k)
		}
	}
	s.m[key] = e
}

// deleteKey drops one cookie's entry.
func (c *sessionCache) deleteKey(key string) {
	s := c.shard(key)
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
}

// deleteWhere drops every entry matching pred. It scans the whole cache,
// which is fine for what calls it (sign-in and sign-out), never per request.
func (c *sessionCache) deleteWhere(pred func(*principalEntry) bool) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for k, e := range s.m {
			if pred(e) {
				delete(s.m, k)
			}
		}
		s.mu.Unlock()
	}
}

// deleteSession drops every entry of a session (normally one).
func (c *sessionCache) deleteSession(sessionID string) {
	c.deleteWhere(func(e *principalEntry) bool { return e.sessionID == sessionID })
}

// deleteUser drops every entry of a user, so their next request reloads the
// teams a sync may just have changed.
func (c *sessionCache) deleteUser(userID string) {
	c.deleteWhere(func(e *principalEntry) bool { return e.principal.UserID == userID })
}

// len counts entries (tests).
func (c *sessionCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
