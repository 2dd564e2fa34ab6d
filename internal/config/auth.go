package config

import "time"

// Auth is [auth]: how the server checks SMTP AUTH passwords against the
// account store (internal/userdb).
type Auth struct {
	// CacheTTL is how long a successful password check is remembered for
	// the same account and the same password, so that a client logging
	// in for every message does not pay argon2id each time (userdb's
	// verified-credential cache, docs/auth.md); default "60s", "0s" is
	// off. Failures are never cached.
	CacheTTL Duration `toml:"cache_ttl"`
	// CacheSize bounds the remembered checks (one per account), default
	// 10000.
	CacheSize int `toml:"cache_size"`
}

// defaultAuth is the [auth] of Default.
func defaultAuth() Auth {
	return Auth{CacheTTL: Duration(time.Minute), CacheSize: 10000}
}

// Bounds of [auth]: a check trusted for more than an hour outlives the
// purpose (a burst of logins) and widens what a memory read exposes.
const (
	maxAuthCacheTTL  = Duration(time.Hour)
	maxAuthCacheSize = 1_000_000
)

func (v *validator) auth(a Auth) {
	if a.CacheTTL < 0 || a.CacheTTL > maxAuthCacheTTL {
		v.add("auth.cache_ttl", "%s: want 0s (off) to %s", a.CacheTTL, maxAuthCacheTTL)
	}
	if a.CacheSize < 1 || a.CacheSize > maxAuthCacheSize {
		v.add("auth.cache_size", "%d: want 1 to %d", a.CacheSize, maxAuthCacheSize)
	}
}
