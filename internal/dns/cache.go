package dns

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Defaults for CacheOptions.
const (
	DefaultCacheEntries = 10000
	DefaultMaxTTL       = time.Hour
	DefaultNegativeTTL  = time.Minute
)

// CacheOptions configures a Cache.
type CacheOptions struct {
	// MaxEntries bounds the answers kept (0: DefaultCacheEntries); when
	// full, expired answers go first, then the oldest.
	MaxEntries int
	// MaxTTL caps how long an answer is kept whatever its TTL says
	// (0: DefaultMaxTTL); MinTTL is a floor (0: none).
	MinTTL, MaxTTL time.Duration
	// NegativeTTL is how long an NXDOMAIN or empty answer is kept when the
	// response carried no SOA to say (RFC 2308 §5), and how long any
	// answer is kept when the resolver does not report TTLs
	// (0: DefaultNegativeTTL).
	NegativeTTL time.Duration
	Now         func() time.Time
}

// Cache is a Resolver (and PTRResolver) that keeps answers for their TTL
// (RFC 1035 §3.2.1, RFC 2181 §8), so that the lookups of many messages
// from one sender (SPF records, DKIM keys, DMARC records) go to the
// network once. Errors are never kept: a temporary failure is asked again.
// The Authentic flag is kept as the answer had it. Safe for concurrent
// use; the slices it returns are copies.
type Cache struct {
	res  Resolver
	opts CacheOptions

	mu      sync.Mutex
	entries map[cacheKey]cacheEntry
	order   []cacheKey // insertion order, for eviction; may hold stale keys
}

type cacheKey struct {
	kind string // "mx", "ip", "a", "txt", "tlsa", "ptr"
	name string
}

type cacheEntry struct {
	answer  any
	expires time.Time
}

var (
	_ Resolver    = (*Cache)(nil)
	_ PTRResolver = (*Cache)(nil)
	_ AResolver   = (*Cache)(nil)
	_ AResolver   = (*Client)(nil)
)

// NewCache returns a Cache in front of r. TTLs come from the responses
// when r is a *Client; another Resolver's answers are kept NegativeTTL.
func NewCache(r Resolver, opts CacheOptions) *Cache {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultCacheEntries
	}
	if opts.MaxTTL <= 0 {
		opts.MaxTTL = DefaultMaxTTL
	}
	if opts.NegativeTTL <= 0 {
		opts.NegativeTTL = DefaultNegativeTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Cache{res: r, opts: opts, entries: map[cacheKey]cacheEntry{}}
}

// Len reports the number of answers held (expired ones included until
// they are evicted).
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (c *Cache) get(k cacheKey) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		return nil, false
	}
	if !c.opts.Now().Before(e.expires) {
		delete(c.entries, k)
		return nil, false
	}
	return e.answer, true
}

func (c *Cache) put(k cacheKey, answer any, ttl time.Duration) {
	ttl = min(max(ttl, c.opts.MinTTL), c.opts.MaxTTL)
	if ttl <= 0 {
		return // TTL 0: use once, never keep (RFC 1035 §3.2.1)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opts.Now()
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.opts.MaxEntries {
		c.evict(now)
	}
	c.entries[k] = cacheEntry{answer: answer, expires: now.Add(ttl)}
	c.order = append(c.order, k)
}

// evict makes room for one entry: every expired one goes, and when none
// had, the oldest. order is compacted as it is walked.
func (c *Cache) evict(now time.Time) {
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
	for len(c.entries) >= c.opts.MaxEntries && len(c.order) > 0 {
		k := c.order[0]
		c.order = c.order[1:]
		delete(c.entries, k)
	}
	if len(c.order) > 2*c.opts.MaxEntries {
		live := c.order[:0]
		for _, k := range c.order {
			if _, ok := c.entries[k]; ok {
				live = append(live, k)
			}
		}
		c.order = slices.Clone(live)
	}
}

// lookup is the cached path of every method: a live entry, or a lookup
// through the resolver whose TTL the sink collects.
func lookup[A any](c *Cache, ctx context.Context, kind, name string, ask func(context.Context) (A, error)) (A, error) {
	k := cacheKey{kind, canonName(name)}
	if a, ok := c.get(k); ok {
		return a.(A), nil
	}
	sink := &ttlSink{}
	a, err := ask(withTTLSink(ctx, sink))
	if err != nil {
		return a, err
	}
	c.put(k, a, sink.duration(c.opts.NegativeTTL))
	return a, nil
}

// canonName folds case and the trailing dot, so that one name has one entry.
func canonName(s string) string {
	b := []byte(s)
	for i, ch := range b {
		if 'A' <= ch && ch <= 'Z' {
			b[i] = ch + 'a' - 'A'
		}
	}
	if n := len(b); n > 1 && b[n-1] == '.' {
		b = b[:n-1]
	}
	return string(b)
}

// LookupMX implements Resolver.
func (c *Cache) LookupMX(ctx context.Context, domain string) (MXAnswer, error) {
	a, err := lookup(c, ctx, "mx", domain, func(ctx context.Context) (MXAnswer, error) { return c.res.LookupMX(ctx, domain) })
	a.Records = slices.Clone(a.Records)
	return a, err
}

// LookupIP implements Resolver.
func (c *Cache) LookupIP(ctx context.Context, host string) (IPAnswer, error) {
	a, err := lookup(c, ctx, "ip", host, func(ctx context.Context) (IPAnswer, error) { return c.res.LookupIP(ctx, host) })
	a.IPs = slices.Clone(a.IPs)
	return a, err
}

// LookupA implements AResolver; in front of a resolver without A-only
// lookups it asks LookupIP and keeps the IPv4 addresses.
func (c *Cache) LookupA(ctx context.Context, host string) (IPAnswer, error) {
	a, err := lookup(c, ctx, "a", host, func(ctx context.Context) (IPAnswer, error) {
		if ar, ok := c.res.(AResolver); ok {
			return ar.LookupA(ctx, host)
		}
		a, err := c.res.LookupIP(ctx, host)
		a.IPs = slices.DeleteFunc(a.IPs, func(ip netip.Addr) bool { return !ip.Unmap().Is4() })
		return a, err
	})
	a.IPs = slices.Clone(a.IPs)
	return a, err
}

// LookupTXT implements Resolver.
func (c *Cache) LookupTXT(ctx context.Context, name string) (TXTAnswer, error) {
	a, err := lookup(c, ctx, "txt", name, func(ctx context.Context) (TXTAnswer, error) { return c.res.LookupTXT(ctx, name) })
	a.Records = slices.Clone(a.Records)
	return a, err
}

// LookupTLSA implements Resolver.
func (c *Cache) LookupTLSA(ctx context.Context, name string) (TLSAAnswer, error) {
	a, err := lookup(c, ctx, "tlsa", name, func(ctx context.Context) (TLSAAnswer, error) { return c.res.LookupTLSA(ctx, name) })
	a.Records = slices.Clone(a.Records)
	return a, err
}

// LookupAddr implements PTRResolver; a resolver without reverse lookups
// gives a temporary error.
func (c *Cache) LookupAddr(ctx context.Context, ip netip.Addr) (AddrAnswer, error) {
	ptr, ok := c.res.(PTRResolver)
	if !ok {
		return AddrAnswer{}, fmt.Errorf("%w: no reverse lookups", ErrTemporary)
	}
	a, err := lookup(c, ctx, "ptr", ip.Unmap().String(), func(ctx context.Context) (AddrAnswer, error) { return ptr.LookupAddr(ctx, ip) })
	a.Names = slices.Clone(a.Names)
	return a, err
}
