package gateway

import (
	"crypto/sha256"
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
// proxying does not touch the database. It is keyed by the SHA-256 of the
// raw cookie value: a hit then costs one hash of the cookie and one map
// lookup, with no cookie decryption, and a cached session holds 32 bytes
// of key rather than its ~250-byte cookie (SHA-256's collision resistance
// makes the digest as good a key as the cookie itself). It is sharded to
// keep lock contention low under many connections (by the digest's first
// byte: only valid sessions are cached, so nobody can aim at a shard) and
// bounded so that a flood of distinct valid cookies cannot grow it without
// limit.
type sessionCache struct {
	maxPerShard int
	shards      [cacheShards]cacheShard
}

type cacheKey [sha256.Size]byte

// keyOf hashes a cookie value. It copies the value to the stack first:
// []byte(cookie) would allocate for anything longer than 32 bytes, and
// teamgate's cookies are about 250.
func keyOf(cookie string) cacheKey {
	var buf [512]byte
	if len(cookie) > len(buf) {
		return sha256.Sum256([]byte(cookie))
	}
	n := copy(buf[:], cookie)
	return sha256.Sum256(buf[:n])
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[cacheKey]*principalEntry
}

func newSessionCache(maxEntries int) *sessionCache {
	per := maxEntries / cacheShards
	if per < 1 {
		per = 1
	}
	c := &sessionCache{maxPerShard: per}
	for i := range c.shards {
		c.shards[i].m = make(map[cacheKey]*principalEntry)
	}
	return c
}

func (c *sessionCache) shard(key cacheKey) *cacheShard {
	return &c.shards[key[0]%cacheShards]
}

// get returns the usable entry for the cookie value, or nil.
func (c *sessionCache) get(cookie string, now time.Time) *principalEntry {
	key := keyOf(cookie)
	s := c.shard(key)
	s.mu.RLock()
	e := s.m[key]
	s.mu.RUnlock()
	if e == nil || !e.usable(now) {
		return nil
	}
	return e
}

// put stores e under the cookie value. When the shard is full it first drops entries
// that are no longer usable, then arbitrary ones (Go's map iteration order
// is random, which makes this a cheap random eviction).
func (c *sessionCache) put(cookie string, e *principalEntry, now time.Time) {
	key := keyOf(cookie)
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
func (c *sessionCache) deleteKey(cookie string) {
	key := keyOf(cookie)
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
