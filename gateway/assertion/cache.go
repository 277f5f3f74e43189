package assertion

import (
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Signing costs tens of microseconds (ES256) to milliseconds (RS256), far
// more than the rest of a proxied request's work in teamgate. The cache
// keeps it off the hot path: a session's assertion for a team is reused
// until less than a third of its lifetime remains, so a busy session signs
// about once every three minutes (with the default 5m lifetime) whatever
// its request rate.

const cacheShards = 16

// Cache hands out assertions per (session, team). It is safe for
// concurrent use.
type Cache struct {
	signer      atomic.Pointer[Signer]
	seed        maphash.Seed
	maxPerShard int
	signed      atomic.Int64
	shards      [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[cacheKey]*cached
}

type cacheKey struct{ session, team string }

// cached is immutable once stored; updates replace it.
type cached struct {
	src     any     // the principal snapshot the token was built from
	sub     Subject // what the token says about the user
	jwt     string
	renewAt time.Time
}

// NewCache keeps at most about maxEntries assertions; 0 disables caching
// (every Get signs), which benchmarks use to measure what the cache saves.
func NewCache(s *Signer, maxEntries int) *Cache {
	per := 0
	if maxEntries > 0 {
		per = max(maxEntries/cacheShards, 1)
	}
	c := &Cache{seed: maphash.MakeSeed(), maxPerShard: per}
	c.signer.Store(s)
	for i := range c.shards {
		c.shards[i].m = make(map[cacheKey]*cached)
	}
	return c
}

// Signer is the signer behind the cache.
func (c *Cache) Signer() *Signer { return c.signer.Load() }

// SetSigner switches to s (a new signing key after a rotation) and drops
// the cached assertions, so that the next request of every session signs
// with s. Assertions the old signer issued stay valid while its key is
// published.
func (c *Cache) SetSigner(s *Signer) {
	c.signer.Store(s)
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.m)
		sh.mu.Unlock()
	}
}

// Signed counts the assertions signed so far (cache misses).
func (c *Cache) Signed() int64 { return c.signed.Load() }

func (c *Cache) shard(session string) *cacheShard {
	return &c.shards[maphash.String(c.seed, session)%cacheShards]
}

// Get returns the assertion of session acting for team. src identifies the
// immutable snapshot of the user the caller holds (a pointer: it is compared
// with ==); subject builds the Subject from it and runs only when src is new
// to the cache. A snapshot re-read from the database that says the same as
// the old one keeps the token; one that differs (teams changed, say) gets a
// new token at once.
func (c *Cache) Get(session, team string, src any, subject func() Subject) (string, error) {
	signer := c.signer.Load()
	now := signer.opts.Now()
	key := cacheKey{session, team}
	sh := c.shard(session)
	sh.mu.RLock()
	e := sh.m[key]
	sh.mu.RUnlock()

	var sub Subject
	if e != nil && now.Before(e.renewAt) {
		if e.src == src {
			return e.jwt, nil
		}
		sub = subject()
		if sameSubject(sub, e.sub) {
			next := *e
			next.src = src
			c.put(sh, key, &next, now)
			return e.jwt, nil
		}
	} else {
		sub = subject()
	}
	tok, err := signer.Sign(sub, team)
	if err != nil {
		return "", err
	}
	c.signed.Add(1)
	lifetime := signer.opts.Lifetime
	c.put(sh, key, &cached{src: src, sub: sub, jwt: tok.JWT, renewAt: tok.ExpiresAt.Add(-lifetime / 3)}, now)
	return tok.JWT, nil
}

func sameSubject(a, b Subject) bool {
	return a.UserID == b.UserID && a.Email == b.Email && a.Name == b.Name && slices.Equal(a.Teams, b.Teams)
}

// put stores e. A full shard first drops entries due for renewal, then
// arbitrary ones (map iteration order is random).
func (c *Cache) put(sh *cacheShard, key cacheKey, e *cached, now time.Time) {
	if c.maxPerShard == 0 {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[key]; !ok && len(sh.m) >= c.maxPerShard {
		for k, old := range sh.m {
			if !now.Before(old.renewAt) {
				delete(sh.m, k)
			}
		}
		for k := range sh.m {
			if len(sh.m) < c.maxPerShard {
				break
			}
			delete(sh.m, k)
		}
	}
	sh.m[key] = e
}

// ForgetSession drops a session's assertions (sign-out).
func (c *Cache) ForgetSession(session string) {
	sh := c.shard(session)
	sh.mu.Lock()
	for k := range sh.m {
		if k.session == session {
			delete(sh.m, k)
		}
	}
	sh.mu.Unlock()
}

// ForgetUser drops every assertion of a user, so the next request signs one
// with what a sync has just written. It scans the cache, which is fine for
// what calls it (sign-in), never per request.
func (c *Cache) ForgetUser(userID string) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for k, e := range sh.m {
			if e.sub.UserID == userID {
				delete(sh.m, k)
			}
		}
		sh.mu.Unlock()
	}
}

// Len counts cached assertions.
func (c *Cache) Len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}
