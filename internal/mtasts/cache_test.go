package mtasts

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"smtpkit/internal/dns/dnstest"
	"smtpkit/internal/tlsrpt"
)

var (
	policy2    = policyText(Enforce, 86400, "mx2.example.com")
	badPolicy  = "version: STSv1\nmode: enforce\nmax_age: 86400\n" // no mx
	nonePolicy = policyText(None, 86400)
	txt1       = txt(domain, "v=STSv1; id=1")
	txt2       = txt(domain, "v=STSv1; id=2")
	hostUp     = addr(domain, "$IP")
	hostDown   = addr(domain, unusedIP)
)

// step is one moment of a cache scenario: the world changes, the clock
// moves, then Lookup (or Refresh) runs.
type step struct {
	dns      []string // records from now on ("$IP": the policy server); nil: unchanged
	servFail []string // names answered with SERVFAIL, with dns
	body     string   // the policy served from now on; "": unchanged
	advance  time.Duration
	restart  bool // a new Cache on the same directory (a daemon restart)
	noDir    bool // the cache directory is removed first
	refresh  bool // Refresh instead of Lookup; then only hits and fetched are checked

	first    string            // id of the policy Lookup returns at once; "": none
	after    string            // id of the policy once the check it started is over
	afterErr tlsrpt.ResultType // the error then
	cached   Mode              // if set, the mode of Cached()
	hits     int               // requests the policy host got so far
	noDNS    bool              // the Lookup asked no DNS question
	fetched  bool              // the cached policy was fetched in this step
}

// TestLookupCache covers the cache rules of RFC 8461 §3.3, §5.1 and §10.2
// as scenarios of several lookups. The policies have max_age one day, so
// they are refreshed from 21h on (refreshWindow: 3h) and expire at 24h.
func TestLookupCache(t *testing.T) {
	first := step{dns: []string{txt1, hostUp}, body: goodPolicy, first: "1", after: "1", hits: 1, fetched: true}
	tests := []struct {
		name  string
		steps []step
	}{
		{"within RecheckEvery: from memory, no DNS, no disk", []step{first,
			{advance: time.Minute, noDir: true, first: "1", after: "1", hits: 1, noDNS: true}}},
		{"same id after RecheckEvery: TXT checked, no fetch", []step{first,
			{advance: 6 * time.Minute, first: "1", after: "1", hits: 1}}},
		{"new id: fetched in the background", []step{first,
			{dns: []string{txt2, hostUp}, body: policy2, advance: 6 * time.Minute, first: "1", after: "2", hits: 2, fetched: true}}},
		{"new id within RecheckEvery: not seen yet", []step{first,
			{dns: []string{txt2, hostUp}, body: policy2, advance: time.Minute, first: "1", after: "1", hits: 1}}},
		{"near expiry: fetched again", []step{first,
			{advance: 22 * time.Hour, first: "1", after: "1", hits: 2, fetched: true}}},
		{"expired: fetched again before use", []step{first,
			{advance: 25 * time.Hour, first: "1", after: "1", hits: 2, fetched: true}}},
		{"policy host down: the cached policy applies until it expires", []step{first,
			{dns: []string{txt1, hostDown}, advance: 22 * time.Hour, first: "1", after: "1", afterErr: tlsrpt.STSPolicyFetchError, hits: 1},
			{advance: 2*time.Hour + time.Second, first: "", after: "", afterErr: tlsrpt.STSPolicyFetchError, hits: 1, cached: Enforce}}},
		{"new id, policy host down: the cached policy applies", []step{first,
			{dns: []string{txt2, hostDown}, advance: 6 * time.Minute, first: "1", after: "1", afterErr: tlsrpt.STSPolicyFetchError, hits: 1}}},
		{"TXT record deleted: the cached enforce policy applies until it expires", []step{first,
			{dns: []string{hostUp}, advance: 6 * time.Minute, first: "1", after: "1", hits: 1},
			{advance: 22 * time.Hour, first: "1", after: "1", hits: 1},
			{advance: 2 * time.Hour, first: "", after: "", hits: 1, cached: Enforce}}},
		{"TXT lookup fails: the cached policy applies", []step{first,
			{dns: []string{txt1, hostUp}, servFail: []string{"_mta-sts." + domain}, advance: 22 * time.Hour,
				first: "1", after: "1", afterErr: tlsrpt.STSPolicyFetchError, hits: 1}}},
		{"TXT record malformed: the cached policy applies", []step{first,
			{dns: []string{txt(domain, "v=STSv1; id=!"), hostUp}, advance: 6 * time.Minute,
				first: "1", after: "1", afterErr: tlsrpt.STSPolicyInvalid, hits: 1}}},
		{"new id, invalid policy: the cached policy applies", []step{first,
			{dns: []string{txt2, hostUp}, body: badPolicy, advance: 6 * time.Minute, first: "1", after: "1", afterErr: tlsrpt.STSPolicyInvalid, hits: 2}}},
		{"new id, mode none: the policy is withdrawn", []step{first,
			{dns: []string{txt2, hostUp}, body: nonePolicy, advance: 6 * time.Minute, first: "1", after: "", hits: 2, cached: None, fetched: true},
			{dns: []string{txt1, hostUp}, body: goodPolicy, advance: 6 * time.Minute, first: "", after: "1", hits: 3, fetched: true}}},
		{"no policy: asked again after RecheckEvery", []step{
			{dns: []string{hostUp}, body: goodPolicy, first: "", after: "", hits: 0},
			{advance: time.Minute, first: "", after: "", noDNS: true},
			{dns: []string{txt1, hostUp}, advance: 5 * time.Minute, first: "1", after: "1", hits: 1, fetched: true}}},
		{"failed fetch, no cache: not retried within RecheckEvery", []step{
			{dns: []string{txt1, hostUp}, body: badPolicy, first: "", after: "", afterErr: tlsrpt.STSPolicyInvalid, hits: 1},
			{body: goodPolicy, advance: time.Minute, first: "", after: "", afterErr: tlsrpt.STSPolicyInvalid, hits: 1, noDNS: true},
			{advance: 5 * time.Minute, first: "1", after: "1", hits: 2, fetched: true}}},
		{"restart: the policy on disk applies while the host is down", []step{first,
			{restart: true, dns: []string{txt1, hostDown}, advance: time.Minute, first: "1", after: "1", hits: 1, cached: Enforce},
			{dns: []string{txt1, hostDown}, advance: 22 * time.Hour, first: "1", after: "1", afterErr: tlsrpt.STSPolicyFetchError, hits: 1, cached: Enforce}}},
		{"restart: the policy on disk is checked (new id)", []step{first,
			{restart: true, dns: []string{txt2, hostUp}, body: policy2, advance: time.Minute, first: "1", after: "2", hits: 2, fetched: true}}},
		{"restart: an expired policy on disk does not apply", []step{first,
			{restart: true, dns: []string{txt1, hostDown}, advance: 25 * time.Hour, first: "", after: "", afterErr: tlsrpt.STSPolicyFetchError, hits: 1, cached: Enforce}}},
		{"Refresh: a policy near expiry is fetched again", []step{first,
			{refresh: true, advance: 21 * time.Hour, hits: 2, fetched: true},
			{advance: time.Minute, first: "1", after: "1", hits: 2, noDNS: true}}},
		{"Refresh: a policy far from expiry is left alone", []step{first,
			{refresh: true, advance: 20 * time.Hour, hits: 1}}},
		{"Refresh: host down, the policy stays", []step{first,
			{refresh: true, dns: []string{txt1, hostDown}, advance: 23 * time.Hour, hits: 1, cached: Enforce},
			{advance: time.Minute, first: "1", after: "1", afterErr: tlsrpt.STSPolicyFetchError, hits: 1, noDNS: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.open(t)
			for i, s := range tt.steps {
				runStep(t, e, i, s)
			}
		})
	}
}

func runStep(t *testing.T, e *env, i int, s step) {
	t.Helper()
	if s.dns != nil {
		var z dnstest.Zone
		for _, r := range s.dns {
			z.Records = append(z.Records, r)
		}
		z.ServFail = s.servFail
		e.setZone(t, z)
	}
	if s.body != "" {
		e.srv.set(policyHost, host{body: s.body})
	}
	if s.noDir {
		if err := os.RemoveAll(e.dir); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Advance(s.advance)
	if s.restart {
		e.open(t)
	}
	queries := e.dns.Queries()
	if s.refresh {
		e.cache.Refresh(t.Context())
	} else {
		p, _ := e.cache.Lookup(t.Context(), domain)
		if s.noDNS && e.dns.Queries() != queries {
			t.Errorf("step %d: Lookup asked %d DNS questions, want none", i, e.dns.Queries()-queries)
		}
		e.cache.running.Wait()
		after, err := e.cache.Lookup(t.Context(), domain)
		if id(p) != s.first || id(after) != s.after {
			t.Errorf("step %d: Lookup gave policy %q, then %q after the check; want %q, %q", i, id(p), id(after), s.first, s.after)
		}
		wantMode := Mode("")
		if after != nil {
			wantMode = after.Mode
		}
		checkResult(t, after, err, wantMode, s.afterErr, "")
	}
	if got := e.srv.Hits(policyHost); got != s.hits {
		t.Errorf("step %d: the policy host got %d requests, want %d", i, got, s.hits)
	}
	c := e.cache.Cached(domain)
	if s.cached != "" && (c == nil || c.Mode != s.cached) {
		t.Errorf("step %d: Cached() = %+v, want mode %s", i, c, s.cached)
	}
	if s.fetched && (c == nil || !c.Fetched.Equal(e.clock.Now())) {
		t.Errorf("step %d: Cached() = %+v, want a policy fetched now (%v)", i, c, e.clock.Now())
	}
	if !s.fetched && c != nil && c.Fetched.Equal(e.clock.Now()) && s.advance != 0 {
		t.Errorf("step %d: the policy was fetched again", i)
	}
}

func id(p *Policy) string {
	if p == nil {
		return ""
	}
	return p.ID
}

// setZone replaces the DNS records; "$IP" stands for the policy server.
func (e *env) setZone(t *testing.T, z dnstest.Zone) {
	t.Helper()
	for i, r := range z.Records {
		z.Records[i] = replaceIP(r, e.srv.IP)
	}
	e.dns.set(t, z)
}

// TestLookupSharesOneFetch: concurrent lookups of a domain without a
// cached policy wait for one fetch.
func TestLookupSharesOneFetch(t *testing.T) {
	e := newEnv(t, txt1, hostUp)
	e.srv.set(policyHost, host{body: goodPolicy, block: true})
	e.open(t)
	const n = 20
	var wg sync.WaitGroup
	results := make(chan *Policy, n)
	for range n {
		wg.Go(func() {
			p, err := e.cache.Lookup(t.Context(), domain)
			if err != nil {
				t.Error(err)
			}
			results <- p
		})
	}
	waitFor(t, func() bool { return e.srv.Waiting() == 1 })
	e.srv.unblock()
	wg.Wait()
	close(results)
	for p := range results {
		if id(p) != "1" {
			t.Errorf("a Lookup got %+v", p)
		}
	}
	if got := e.srv.Hits(policyHost); got != 1 {
		t.Errorf("%d fetches, want 1", got)
	}
}

// TestLookupCancelled: a Lookup whose context ends stops waiting; the
// check goes on for the others and fills the cache.
func TestLookupCancelled(t *testing.T) {
	e := newEnv(t, txt1, hostUp)
	e.srv.set(policyHost, host{body: goodPolicy, block: true})
	e.open(t)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := e.cache.Lookup(ctx, domain)
		errc <- err
	}()
	waitFor(t, func() bool { return e.srv.Waiting() == 1 })
	cancel()
	checkResult(t, nil, <-errc, "", tlsrpt.STSPolicyFetchError, "waiting")
	e.srv.unblock()
	e.cache.running.Wait()
	if p, err := e.cache.Lookup(t.Context(), domain); id(p) != "1" || err != nil {
		t.Errorf("after the check: %+v, %v", p, err)
	}
}

// waitFor polls cond until it holds, for at most 10 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCacheFiles(t *testing.T) {
	e := newEnv(t, txt1, hostUp)
	e.srv.set(policyHost, host{body: goodPolicy})
	e.opts.Dir = filepath.Join(e.dir, "data", "mta-sts")
	e.open(t)
	if _, err := e.cache.Lookup(t.Context(), domain); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(e.opts.Dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("cache directory: %v, %v; want mode 0700", fi, err)
	}
	file := filepath.Join(e.opts.Dir, domain+".json")
	fi, err = os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("cache file: %v, %v; want mode 0600", fi, err)
	}
	// Files that are not good cache files are skipped.
	for name, content := range map[string]string{
		"garbage.example.json":  "{not json",
		"other.example.json":    `{"domain":"example.com","id":"1","fetched":"2026-12-02T00:00:00Z","policy":"version: STSv1\nmode: none\nmax_age: 1\n"}`,
		"bad-id.example.json":   `{"domain":"bad-id.example","id":"a-b","fetched":"2026-12-02T00:00:00Z","policy":"version: STSv1\nmode: none\nmax_age: 1\n"}`,
		"bad-pol.example.json":  `{"domain":"bad-pol.example","id":"1","fetched":"2026-12-02T00:00:00Z","policy":"mode: none\n"}`,
		"UPPER.example.json":    `{"domain":"UPPER.example","id":"1","fetched":"2026-12-02T00:00:00Z","policy":"version: STSv1\nmode: none\nmax_age: 1\n"}`,
		".example.com.json.tmp": "partial",
		"notes.txt":             "hello",
	} {
		if err := os.WriteFile(filepath.Join(e.opts.Dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := e.open(t)
	c.mu.Lock()
	n := len(c.entries)
	c.mu.Unlock()
	if n != 1 {
		t.Errorf("%d policies loaded, want 1", n)
	}
	p := c.Cached(domain)
	if p == nil || p.ID != "1" || p.Mode != Enforce || !p.Fetched.Equal(e.clock.Now()) || len(p.MX) != 2 {
		t.Fatalf("Cached after a restart: %+v", p)
	}
	p.MX[0] = "changed" // a copy
	if c.Cached(domain).MX[0] != "mx1.example.com" {
		t.Error("Cached returned the cache's own policy")
	}
	if c.Cached("nothing.example") != nil || c.Cached("../etc") != nil {
		t.Error("Cached of an unknown domain")
	}
}

func TestLookupInvalidDomain(t *testing.T) {
	e := newEnv(t)
	e.open(t)
	for _, d := range []string{"", "..", "../x", "a/b", "a b", "-a.example", "\u212aa.example"} {
		p, err := e.cache.Lookup(t.Context(), d)
		checkResult(t, p, err, "", tlsrpt.STSPolicyFetchError, "not a valid domain")
	}
}

// TestRefreshForgets: Refresh drops what the cache knows of domains
// without a policy once their check is stale, and keeps policies.
func TestRefreshForgets(t *testing.T) {
	e := newEnv(t, txt1, hostUp)
	e.srv.set(policyHost, host{body: goodPolicy})
	e.open(t)
	for _, d := range []string{domain, "nopolicy.example", "other.example"} {
		e.cache.Lookup(t.Context(), d)
	}
	count := func() int {
		e.cache.mu.Lock()
		defer e.cache.mu.Unlock()
		return len(e.cache.entries)
	}
	e.cache.Refresh(t.Context())
	if n := count(); n != 3 {
		t.Errorf("%d entries after a Refresh within RecheckEvery, want 3", n)
	}
	e.clock.Advance(RecheckEvery)
	e.cache.Refresh(t.Context())
	if n := count(); n != 1 || e.cache.Cached(domain) == nil {
		t.Errorf("%d entries after RecheckEvery, want the one policy", n)
	}
}

// TestMemoryOnly: with no directory the cache works and writes nothing.
func TestMemoryOnly(t *testing.T) {
	e := newEnv(t, txt1, hostUp)
	e.srv.set(policyHost, host{body: goodPolicy})
	e.opts.Dir = ""
	e.open(t)
	if p, err := e.cache.Lookup(t.Context(), domain); id(p) != "1" || err != nil {
		t.Fatalf("Lookup: %+v, %v", p, err)
	}
	if ents, _ := os.ReadDir(e.dir); len(ents) != 0 {
		t.Errorf("files written: %v", ents)
	}
}

func TestNewNeedsResolver(t *testing.T) {
	if _, err := New(Options{Dir: t.TempDir()}); err == nil {
		t.Error("New without a resolver succeeded")
	}
}

// TestConcurrentLookupRefresh runs lookups of several domains, Refresh and
// a moving clock at once (for the race detector); every answer is the one
// policy or none.
func TestConcurrentLookupRefresh(t *testing.T) {
	const other = "other.example"
	e := newEnv(t, txt1, hostUp, txt(other, "v=STSv1; id=1"), addr(other, "$IP"))
	e.srv.set(policyHost, host{body: goodPolicy})
	e.srv.set("mta-sts."+other, host{body: policy2})
	e.open(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				d := domain
				if (g+i)%2 == 0 {
					d = other
				}
				p, _ := e.cache.Lookup(t.Context(), d)
				if p != nil && (p.ID != "1" || p.Domain != d) {
					t.Errorf("Lookup(%s) = %+v", d, p)
				}
				if i%25 == 0 {
					e.clock.Advance(RecheckEvery)
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			e.cache.Refresh(t.Context())
			e.clock.Advance(time.Hour)
		}
	})
	wg.Wait()
	e.cache.running.Wait()
}

// BenchmarkLookupHit is the cost of the answer from memory, the path every
// delivery attempt takes between two checks.
func BenchmarkLookupHit(b *testing.B) {
	e := newEnv(b, txt1, hostUp)
	e.srv.set(policyHost, host{body: goodPolicy})
	e.open(b)
	ctx := context.Background()
	if p, err := e.cache.Lookup(ctx, domain); p == nil || err != nil {
		b.Fatalf("Lookup: %+v, %v", p, err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if p, _ := e.cache.Lookup(ctx, domain); p == nil {
				b.Fatal("no policy")
			}
		}
	})
}
