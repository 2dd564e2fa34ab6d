package mtasts

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"smtpkit/internal/dns"
)

// RecheckEvery is how often Lookup asks for a domain's TXT record again:
// between two checks a Lookup answers from memory. A domain that changes
// its policy (a new id, RFC 8461 §3.1) is noticed within this time; one
// without a policy costs one TXT query per RecheckEvery.
const RecheckEvery = 5 * time.Minute

// Resolver is what a Cache asks DNS: the _mta-sts TXT record and the
// addresses of the policy host. *dns.Client implements it.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) (dns.TXTAnswer, error)
	LookupIP(ctx context.Context, host string) (dns.IPAnswer, error)
}

// Options configures a Cache.
type Options struct {
	// Dir is the cache directory, <data_dir>/mta-sts (created 0700), one
	// file per policy domain. "" keeps policies in memory only.
	Dir string
	// Resolver resolves the TXT record and the policy host; the host is
	// then dialled directly, never through the system resolver.
	Resolver Resolver
	// Roots verify the policy host's certificate; nil means the system
	// roots (SSL_CERT_FILE and SSL_CERT_DIR are honoured).
	Roots *x509.CertPool
	// Port is the policy host's HTTPS port; 0 means 443. Tests set others.
	Port int
	// Timeout bounds one check of a domain: the TXT lookup, the policy
	// host's addresses and the HTTPS fetch; 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxBody is the largest policy accepted; 0 means DefaultMaxBody.
	MaxBody int64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger gets policy changes and fetch failures; nil discards them.
	Logger *slog.Logger
	// AllowLoopback accepts policy hosts on loopback or unspecified
	// addresses, as outbound.allow_loopback does for MX hosts; without it
	// they are refused.
	AllowLoopback bool
}

// Cache finds the MTA-STS policy of a domain and keeps it, in memory and
// on disk, for its max_age. It is safe for concurrent use.
type Cache struct {
	dir     string
	res     Resolver
	fetch   *fetcher
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger

	mu      sync.Mutex
	entries map[string]*entry // by policy domain
	running sync.WaitGroup    // the checks in flight
}

// entry is what the cache knows about one domain.
type entry struct {
	// policy is the last good policy fetched (nil: none); it may have
	// expired or be of mode none, see applies.
	policy *Policy
	// checked is when the TXT record was last checked; zero: never (a
	// policy loaded from disk).
	checked time.Time
	err     error         // of the last check
	running chan struct{} // closed when the check in flight ends; nil: none
}

// New returns a cache holding the policies found in opts.Dir.
func New(opts Options) (*Cache, error) {
	if opts.Resolver == nil {
		return nil, errors.New("mtasts: no resolver")
	}
	if opts.Port == 0 {
		opts.Port = DefaultPort
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Cache{
		dir:     opts.Dir,
		res:     opts.Resolver,
		fetch:   newFetcher(opts),
		timeout: opts.Timeout,
		now:     opts.Now,
		log:     opts.Logger,
		entries: map[string]*entry{},
	}
	policies, err := c.load()
	if err != nil {
		return nil, err
	}
	for _, p := range policies {
		c.entries[p.Domain] = &entry{policy: p}
	}
	return c, nil
}

// Lookup returns the policy that applies to domain now, nil when none does
// (no policy, or mode none), and the error of the last check of the
// domain: an *Error (implementing tlsrpt.Failure) when the TXT lookup, the
// fetch or the policy was bad. A policy and an error together mean that a
// cached policy still applies although it could not be refreshed; a nil
// policy with an error means delivering as if the domain had no policy
// (RFC 8461 §3.3), the error being for TLS-RPT and the logs.
//
// The rules (RFC 8461 §3.3, §5.1, §10.2):
//   - The TXT record is checked at most every RecheckEvery; in between, the
//     answer comes from memory, with no disk or network access.
//   - A check that finds the cached policy's id keeps the policy without
//     fetching, unless it is close to expiry: within max(1h, max_age/8),
//     but at most half the max_age.
//   - A new id, no cached policy, or one close to expiry: the policy is
//     fetched, and a good one replaces the cache (on disk, atomically).
//   - When the fetch fails, the policy is invalid, the TXT record is gone,
//     malformed or its lookup fails, an unexpired cached policy still
//     applies: an attacker who blocks them cannot switch enforcement off.
//   - When a cached policy still applies, the check runs in the
//     background and Lookup returns at once; otherwise Lookup waits for
//     it (or for ctx). Concurrent lookups of a domain share one check.
func (c *Cache) Lookup(ctx context.Context, domain string) (*Policy, error) {
	d, ok := normDomain(domain)
	if !ok {
		return nil, fetchError(domain, nil, "not a valid domain name")
	}
	now := c.now()
	c.mu.Lock()
	e := c.entries[d]
	if e == nil {
		e = &entry{}
		c.entries[d] = e
	}
	if fresh(e.checked, now) {
		p, err := e.applies(now), e.err
		c.mu.Unlock()
		return p, err
	}
	done := c.startLocked(ctx, d, e)
	if usable(e.policy, now) {
		p, err := e.applies(now), e.err
		c.mu.Unlock()
		return p, err
	}
	c.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, fetchError(d, ctx.Err(), "waiting for the policy check")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return e.applies(c.now()), e.err
}

// Refresh checks every cached policy that is within refreshWindow of its
// expiry (serve runs it hourly), one domain after the other, so that a
// policy in use does not lapse while its domain is not written to, and
// forgets the domains without a policy that were not looked up lately.
func (c *Cache) Refresh(ctx context.Context) {
	now := c.now()
	var due []string
	c.mu.Lock()
	for d, e := range c.entries {
		switch {
		case e.policy == nil && !fresh(e.checked, now) && e.running == nil:
			delete(c.entries, d)
		case usable(e.policy, now) && !now.Before(e.policy.Expires().Add(-refreshWindow(e.policy))):
			due = append(due, d)
		}
	}
	c.mu.Unlock()
	for _, d := range due {
		c.mu.Lock()
		e := c.entries[d]
		if e == nil {
			c.mu.Unlock()
			continue
		}
		done := c.startLocked(ctx, d, e)
		c.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return
		}
	}
}

// Cached returns a copy of the policy the cache holds for domain (what is
// on disk), expired or of mode none included, without any network access;
// nil if there is none.
func (c *Cache) Cached(domain string) *Policy {
	d, ok := normDomain(domain)
	if !ok {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[d]; e != nil && e.policy != nil {
		return e.policy.clone()
	}
	return nil
}

// startLocked starts a check of d unless one is running, and returns the
// channel closed when it ends. The check does not end with ctx (other
// lookups share it) but is bounded by the cache's timeout.
func (c *Cache) startLocked(ctx context.Context, d string, e *entry) <-chan struct{} {
	if e.running != nil {
		return e.running
	}
	done := make(chan struct{})
	e.running = done
	cached := e.policy
	c.running.Add(1)
	go func() {
		defer c.running.Done()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		p, err := c.check(cctx, d, cached)
		cancel()
		c.mu.Lock()
		e.policy, e.err, e.checked, e.running = p, err, c.now(), nil
		c.mu.Unlock()
		close(done)
	}()
	return done
}

// check looks up the TXT record of d and fetches the policy if needed; it
// returns the policy to keep (the new one, or cached) and what went wrong.
func (c *Cache) check(ctx context.Context, d string, cached *Policy) (*Policy, error) {
	start := c.now()
	id, err := c.lookupID(ctx, d)
	if err != nil {
		c.log.Warn("mta-sts: TXT record", "domain", d, "err", err, "cached", usable(cached, start))
		return cached, err
	}
	if id == "" {
		// RFC 8461 §10.2: no record does not withdraw a cached policy
		// (mode none with a new id does, §8.3).
		return cached, nil
	}
	if cached != nil && cached.ID == id && usable(cached, start) &&
		start.Before(cached.Expires().Add(-refreshWindow(cached))) {
		return cached, nil
	}
	p, err := c.fetch.fetch(ctx, d)
	if err != nil {
		c.log.Warn("mta-sts: policy fetch", "domain", d, "id", id, "err", err, "cached", usable(cached, start))
		return cached, err
	}
	p.Domain, p.ID, p.Fetched = d, id, start
	if err := c.save(p); err != nil {
		c.log.Error("mta-sts: caching the policy", "domain", d, "err", err)
	}
	c.log.Info("mta-sts: policy fetched", "domain", d, "id", id, "mode", string(p.Mode),
		"max_age", int64(p.MaxAge/time.Second), "mx", strings.Join(p.MX, " "))
	return p, nil
}

// lookupID returns the id of d's MTA-STS TXT record, "" when there is none
// (RFC 8461 §3.1: records not starting with v=STSv1 are discarded; more
// than one left, or a malformed one, means no policy is available).
func (c *Cache) lookupID(ctx context.Context, d string) (string, error) {
	ans, err := c.res.LookupTXT(ctx, "_mta-sts."+d)
	if err != nil {
		return "", fetchError(d, err, "looking up the _mta-sts TXT record")
	}
	var recs []string
	for _, r := range ans.Records {
		if isSTSRecord(r) {
			recs = append(recs, r)
		}
	}
	switch len(recs) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", invalidError(d, nil, "%d MTA-STS TXT records at _mta-sts.%s, want one (RFC 8461 §3.1)", len(recs), d)
	}
	id, err := ParseRecord(recs[0])
	if err != nil {
		return "", invalidError(d, err, "malformed TXT record at _mta-sts.%s", d)
	}
	return id, nil
}

// applies is the policy Lookup returns: the cached one while unexpired,
// not of mode none (RFC 8461 §5: as if there were no policy).
func (e *entry) applies(now time.Time) *Policy {
	if !usable(e.policy, now) || e.policy.Mode == None {
		return nil
	}
	return e.policy
}

// usable reports whether p has not expired (RFC 8461 §5.1).
func usable(p *Policy, now time.Time) bool {
	return p != nil && now.Before(p.Expires())
}

// fresh reports whether a check at checked is recent enough to answer from
// memory; a clock that went back makes it stale.
func fresh(checked, now time.Time) bool {
	age := now.Sub(checked)
	return !checked.IsZero() && age >= 0 && age < RecheckEvery
}

// refreshWindow is how long before its expiry a policy is fetched again:
// max(1h, max_age/8), but at most half the max_age, so that an hourly
// Refresh catches every policy of two hours or more before it lapses.
func refreshWindow(p *Policy) time.Duration {
	return min(max(time.Hour, p.MaxAge/8), p.MaxAge/2)
}

// normDomain lower-cases a domain name and drops a trailing dot; ok is
// false for anything but a host name of A-labels (it names a file).
func normDomain(s string) (string, bool) {
	d, ok := asciiLower(strings.TrimSuffix(s, "."))
	return d, ok && isDomain(d)
}
