package userdb

// cache.go: the verified-credential cache. A client that logs in for every
// message (many submission clients and scripts do) would pay one argon2id
// computation (19 MiB, tens of milliseconds) per message. Authenticate
// remembers each successful verification for Options.CacheTTL, as
// Dovecot's auth cache does, keyed by the account and an HMAC-SHA256 —
// under a random key made for the life of the process and never stored —
// of the account's current password hash and the presented password:
//   - only successes are kept: a wrong password, or a name without an
//     account, always costs the full computation, so the time an answer
//     takes tells a guesser nothing it would not learn from the answer;
//   - an entry matches only the password hash it was verified against:
//     a password changed (SetPassword, the file edited, the database
//     updated) makes the old one miss at once; Reload (SIGHUP) drops all;
//   - entries expire after the TTL from the verification, not from the
//     last use, so a password removed elsewhere is never trusted longer;
//   - at most Options.CacheSize entries: when full, expired ones go first,
//     then an arbitrary one.
//
// What it costs: the process holds, for the TTL, HMACs of passwords that
// were presented. Someone who can read its memory has the key too and can
// test guesses against them at HMAC speed instead of argon2id's — which is
// why the TTL is short and the cache can be turned off (auth.cache_ttl =
// "0s").

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"
)

// DefaultCacheSize bounds the verified-credential cache when
// Options.CacheSize is 0.
const DefaultCacheSize = 10000

// authCache is the verified-credential cache; nil is off.
type authCache struct {
	ttl time.Duration
	max int
	now func() time.Time
	key [32]byte

	mu sync.Mutex
	m  map[string]cacheEntry // canonical account → its last verification
}

type cacheEntry struct {
	mac     [sha256.Size]byte
	expires time.Time
}

// newAuthCache returns a cache for opts, nil when its TTL is not positive.
func newAuthCache(opts Options) *authCache {
	if opts.CacheTTL <= 0 {
		return nil
	}
	c := &authCache{ttl: opts.CacheTTL, max: opts.CacheSize, now: opts.Now, m: map[string]cacheEntry{}}
	if c.max <= 0 {
		c.max = DefaultCacheSize
	}
	if c.now == nil {
		c.now = time.Now
	}
	rand.Read(c.key[:])
	return c
}

// sum is the HMAC an entry keeps for name, its password hash and the
// password presented.
func (c *authCache) sum(name, hash, password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, c.key[:])
	for _, s := range []string{name, hash, password} {
		m.Write(binary.BigEndian.AppendUint32(nil, uint32(len(s)))) // length-prefixed: no two triples give the same input
		m.Write([]byte(s))
	}
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}

// hit reports whether password was verified for the account name, whose
// password hash is hash, less than the TTL ago.
func (c *authCache) hit(name, hash, password string) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	e, ok := c.m[name]
	c.mu.Unlock()
	if !ok || !c.now().Before(e.expires) {
		return false
	}
	mac := c.sum(name, hash, password)
	return hmac.Equal(mac[:], e.mac[:])
}

// add remembers a successful verification.
func (c *authCache) add(name, hash, password string) {
	if c == nil {
		return
	}
	e := cacheEntry{mac: c.sum(name, hash, password), expires: c.now().Add(c.ttl)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[name]; !ok && len(c.m) >= c.max {
		c.evict()
	}
	c.m[name] = e
}

// evict makes room for one entry: the expired ones go, or else one
// arbitrary entry. Called with mu held.
func (c *authCache) evict() {
	now := c.now()
	for k, e := range c.m {
		if !now.Before(e.expires) {
			delete(c.m, k)
		}
	}
	for k := range c.m {
		if len(c.m) < c.max {
			break
		}
		delete(c.m, k)
	}
}

// clear drops every entry.
func (c *authCache) clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

// len is the number of entries, for tests.
func (c *authCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
