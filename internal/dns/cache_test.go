package dns_test

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"smtpkit/internal/dns"
	"smtpkit/internal/dns/dnstest"
)

// clock is a settable time for the cache tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func cacheFor(t *testing.T, z dnstest.Zone, opts dns.CacheOptions) (*dnstest.Server, *dns.Cache, *clock) {
	t.Helper()
	srv := dnstest.Start(t, z)
	c, err := dns.New(dns.Options{Servers: []string{srv.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)}
	opts.Now = clk.now
	return srv, dns.NewCache(c, opts), clk
}

func countQueries(srv *dnstest.Server, name string, qtype uint16) int {
	n := 0
	for _, q := range srv.Queries() {
		if q.Name == name && q.Type == qtype {
			n++
		}
	}
	return n
}

// TestCacheTTL: answers are kept for their TTL (the shortest in a CNAME
// chain), capped by MaxTTL; negative answers for NegativeTTL; failures
// not at all.
func TestCacheTTL(t *testing.T) {
	srv, c, clk := cacheFor(t, dnstest.Zone{
		Records: []string{
			`short.test. 30 TXT "v=spf1 -all"`,
			`long.test. 86400 TXT "v=spf1 -all"`,
			`alias.test. 10 CNAME target.test.`,
			`target.test. 100 A 127.14.3.50`,
			`mx.test. 300 MX 10 mx1.mx.test.`,
			`50.3.14.127.in-addr.arpa. 300 PTR host.test.`,
		},
		ServFail:    []string{"broken.test."},
		FollowCNAME: true,
	}, dns.CacheOptions{MaxTTL: time.Hour, NegativeTTL: 20 * time.Second})
	ctx := context.Background()
	ask := func(kind, name string) {
		t.Helper()
		var err error
		switch kind {
		case "txt":
			_, err = c.LookupTXT(ctx, name)
		case "ip":
			_, err = c.LookupIP(ctx, name)
		case "mx":
			_, err = c.LookupMX(ctx, name)
		case "ptr":
			_, err = c.LookupAddr(ctx, netip.MustParseAddr(name))
		}
		if err != nil && name != "broken.test" {
			t.Fatalf("%s %s: %v", kind, name, err)
		}
	}
	for _, tc := range []struct {
		kind, name, qname string
		qtype             uint16
		keep              time.Duration // still cached just before this
	}{
		{"txt", "short.test", "short.test.", mdns.TypeTXT, 30 * time.Second},
		{"txt", "long.test", "long.test.", mdns.TypeTXT, time.Hour},
		{"ip", "alias.test", "alias.test.", mdns.TypeA, 10 * time.Second},
		{"mx", "MX.test.", "mx.test.", mdns.TypeMX, 300 * time.Second},
		{"ptr", "127.14.3.50", "50.3.14.127.in-addr.arpa.", mdns.TypePTR, 300 * time.Second},
		{"txt", "nothing.test", "nothing.test.", mdns.TypeTXT, 20 * time.Second},
	} {
		t.Run(tc.kind+" "+tc.name, func(t *testing.T) {
			before := countQueries(srv, tc.qname, tc.qtype)
			ask(tc.kind, tc.name)
			ask(tc.kind, tc.name)
			clk.add(tc.keep - time.Second)
			ask(tc.kind, tc.name)
			if n := countQueries(srv, tc.qname, tc.qtype) - before; n != 1 {
				t.Errorf("%d queries within the TTL, want 1", n)
			}
			clk.add(time.Second)
			ask(tc.kind, tc.name)
			if n := countQueries(srv, tc.qname, tc.qtype) - before; n != 2 {
				t.Errorf("%d queries after the TTL, want 2", n)
			}
		})
	}
	t.Run("failures are not kept", func(t *testing.T) {
		ask("txt", "broken.test")
		ask("txt", "broken.test")
		if n := countQueries(srv, "broken.test.", mdns.TypeTXT); n != 2 {
			t.Errorf("%d queries for a SERVFAIL name, want 2", n)
		}
	})
}

// TestCacheBoundsAndCopies: MaxEntries holds, the Authentic flag is kept,
// and a caller changing a returned slice does not change the cache.
func TestCacheBoundsAndCopies(t *testing.T) {
	_, c, _ := cacheFor(t, dnstest.Zone{
		Records:   []string{`a.test. TXT "one"`, `b.test. TXT "two"`, `c.test. TXT "three"`},
		Authentic: true,
	}, dns.CacheOptions{MaxEntries: 2})
	ctx := context.Background()
	for _, n := range []string{"a.test", "b.test", "c.test", "a.test"} {
		a, err := c.LookupTXT(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if !a.Authentic {
			t.Errorf("%s: Authentic lost", n)
		}
		a.Records[0] = "changed"
		if c.Len() > 2 {
			t.Fatalf("%d entries, MaxEntries 2", c.Len())
		}
	}
	if a, _ := c.LookupTXT(ctx, "a.test"); a.Records[0] != "one" {
		t.Errorf("cached answer changed to %q", a.Records[0])
	}
}

// TestCacheNegativeSOA: a negative answer with an SOA in the authority
// section is kept for min(SOA TTL, MINIMUM) (RFC 2308 §5).
func TestCacheNegativeSOA(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.14.3.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	queries := 0
	srv := &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		mu.Lock()
		queries++
		mu.Unlock()
		m := new(mdns.Msg)
		m.SetRcode(r, mdns.RcodeNameError)
		soa, _ := mdns.NewRR("test. 600 SOA ns.test. host.test. 1 3600 600 86400 45")
		m.Ns = []mdns.RR{soa}
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	cl, err := dns.New(dns.Options{Servers: []string{pc.LocalAddr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now()}
	c := dns.NewCache(cl, dns.CacheOptions{Now: clk.now, NegativeTTL: time.Hour})
	look := func() {
		a, err := c.LookupTXT(context.Background(), "gone.test")
		if err != nil || !a.NXDomain {
			t.Fatalf("%+v %v", a, err)
		}
	}
	look()
	clk.add(44 * time.Second)
	look()
	clk.add(time.Second)
	look()
	mu.Lock()
	defer mu.Unlock()
	if queries != 2 {
		t.Errorf("%d queries, want 2 (kept 45 s, the SOA MINIMUM)", queries)
	}
}
