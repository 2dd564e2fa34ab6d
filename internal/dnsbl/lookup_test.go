package dnsbl

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"smtpkit/internal/dns"
	"smtpkit/internal/dns/dnstest"

	mdns "github.com/miekg/dns"
)

// dnsHost keeps the test DNS server in this package's loopback range.
const dnsHost = "127.15.3.53"

// lists serves a block list, a second block list, an allow list and a
// broken list on loopback.
func lists(t *testing.T) *dnstest.Server {
	return dnstest.Start(t, dnstest.Zone{Host: dnsHost, Records: []string{
		"2.0.0.127.bl.test. 300 A 127.0.0.2",
		"2.0.0.127.bl.test. 300 TXT \"Listed: see https://bl.test/2\"",
		"10.2.0.192.bl.test. 300 A 127.0.0.4",
		"10.2.0.192.bl2.test. 300 A 127.0.0.3",
		"20.2.0.192.bl.test. 300 A 127.0.0.2",
		"20.2.0.192.wl.test. 300 A 127.0.15.0",
		"30.2.0.192.bl.test. 300 A 127.255.255.254",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.bl.test. 300 A 127.0.0.2",
		"50.2.0.192.zen.test. 300 A 127.0.0.3",
		"50.2.0.192.zen.test. 300 A 127.0.0.10",
		"51.2.0.192.zen.test. 300 A 127.0.0.11",
		"ns.test. 300 A 127.0.0.1", // keeps the lists' parents existent
	}, Silent: []string{"40.2.0.192.slow.test."}})
}

func newChecker(t *testing.T, srv string, zones []Zone, threshold int, timeout time.Duration) *Checker {
	t.Helper()
	client, err := dns.New(dns.Options{Servers: []string{srv}, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Zones: zones, Threshold: threshold, Resolver: dns.NewCache(client, dns.CacheOptions{}), Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestVerdict(t *testing.T) {
	srv := lists(t)
	zones := []Zone{{Name: "bl.test", Weight: 2}, {Name: "bl2.test.", Weight: 1}, {Name: "WL.test", Weight: -5}}
	c := newChecker(t, srv.Addr, zones, 3, 2*time.Second)
	tests := []struct {
		ip          string
		score       int
		blocked     bool
		allowlisted bool
		blocker     string
		answer      string
		text        string
	}{
		{"127.0.0.2", 2, false, false, "bl.test", "127.0.0.2", "Listed: see https://bl.test/2"},
		{"192.0.2.10", 3, true, false, "bl.test", "127.0.0.4", ""},
		{"192.0.2.20", -3, false, true, "bl.test", "127.0.0.2", ""},
		{"192.0.2.30", 0, false, false, "", "", ""}, // error answer only
		{"192.0.2.99", 0, false, false, "", "", ""}, // NXDOMAIN everywhere
		{"::1", 2, false, false, "bl.test", "127.0.0.2", ""},
		{"::ffff:192.0.2.10", 3, true, false, "bl.test", "127.0.0.4", ""},
	}
	for _, tt := range tests {
		v := c.Start(context.Background(), netip.MustParseAddr(tt.ip)).Wait()
		if v.Score != tt.score || v.Blocked != tt.blocked || v.Allowlisted != tt.allowlisted || len(v.Failed) != 0 {
			t.Errorf("%s: %+v; want score %d blocked %v allowlisted %v", tt.ip, v, tt.score, tt.blocked, tt.allowlisted)
			continue
		}
		h, ok := v.Blocker()
		if ok != (tt.blocker != "") || h.Zone != tt.blocker || (ok && h.Answer.String() != tt.answer) || h.Text != tt.text {
			t.Errorf("%s: blocker %+v %v; want %s %s %q", tt.ip, h, ok, tt.blocker, tt.answer, tt.text)
		}
	}
}

// One zone given several times with different answers and weights (a
// combined list's sub-lists) is asked once, and each entry its answers
// match counts.
func TestZoneParts(t *testing.T) {
	srv := lists(t)
	zones := []Zone{
		{Name: "zen.test", Weight: 3, Answers: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/31")}},
		{Name: "zen.test", Weight: -1, Answers: []netip.Prefix{netip.MustParsePrefix("127.0.0.10/31")}},
		{Name: "zen.test", Weight: 1},
	}
	c := newChecker(t, srv.Addr, zones, 3, 2*time.Second)
	if got := c.Zones(); len(got) != 1 || got[0] != "zen.test" {
		t.Fatalf("Zones() = %q", got)
	}
	for _, tt := range []struct {
		ip    string
		score int
		hits  int
	}{{"192.0.2.50", 3 - 1 + 1, 3}, {"192.0.2.51", -1 + 1, 2}, {"192.0.2.52", 0, 0}} {
		v := c.Start(context.Background(), netip.MustParseAddr(tt.ip)).Wait()
		if v.Score != tt.score || len(v.Hits) != tt.hits {
			t.Errorf("%s: score %d, %d hits (%+v); want %d, %d", tt.ip, v.Score, len(v.Hits), v.Hits, tt.score, tt.hits)
		}
	}
	n := 0
	for _, q := range srv.Queries() {
		if q.Name == "50.2.0.192.zen.test." && q.Type == mdns.TypeA {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d A queries for one client of a zone given three times, want 1", n)
	}
}

// The answers are cached by their TTL: a second client from the same
// address asks nothing. Only A records are asked for.
func TestCachedByTTL(t *testing.T) {
	srv := lists(t)
	c := newChecker(t, srv.Addr, []Zone{{Name: "bl.test"}}, 1, 2*time.Second)
	for range 3 {
		if v := c.Start(context.Background(), netip.MustParseAddr("127.0.0.2")).Wait(); !v.Blocked {
			t.Fatalf("not blocked: %+v", v)
		}
	}
	n, aaaa := 0, 0
	for _, q := range srv.Queries() {
		if q.Name == "2.0.0.127.bl.test." && q.Type == mdns.TypeA {
			n++
		}
		if q.Type == mdns.TypeAAAA {
			aaaa++
		}
	}
	if n != 1 || aaaa != 0 {
		t.Fatalf("%d A and %d AAAA queries for three clients, want 1 A (cached) and no AAAA (RFC 5782 §2.1): %+v", n, aaaa, srv.Queries())
	}
}

// A list that does not answer costs at most the timeout and lists
// nobody; the other lists still count.
func TestTimeoutFailsOpen(t *testing.T) {
	srv := lists(t)
	c := newChecker(t, srv.Addr, []Zone{{Name: "slow.test", Weight: 5}, {Name: "bl.test"}}, 1, 300*time.Millisecond)
	l := c.Start(context.Background(), netip.MustParseAddr("192.0.2.40"))
	v := l.Wait()
	if v.Blocked || v.Score != 0 || len(v.Failed) != 1 || v.Failed[0] != "slow.test" {
		t.Fatalf("verdict %+v, want nothing listed and slow.test failed", v)
	}
	if r, ok := l.Result(); !ok || r.Failed[0] != "slow.test" {
		t.Fatalf("Result after Wait = %+v, %v", r, ok)
	}
}

// Cancelling the session's context ends the lookups at once.
func TestCancel(t *testing.T) {
	srv := lists(t)
	c := newChecker(t, srv.Addr, []Zone{{Name: "slow.test"}}, 1, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	l := c.Start(ctx, netip.MustParseAddr("192.0.2.40"))
	if _, ok := l.Result(); ok {
		t.Fatal("Result ready before the silent list answered")
	}
	cancel()
	if v := l.Wait(); len(v.Failed) != 1 {
		t.Fatalf("verdict %+v after cancel, want slow.test failed", v)
	}
}

func TestNew(t *testing.T) {
	res := dns.NewCache(nil, dns.CacheOptions{})
	tests := []struct {
		name string
		opts Options
		ok   bool
	}{
		{"ok", Options{Zones: []Zone{{Name: "bl.test"}}, Resolver: res}, true},
		{"no zones", Options{Resolver: res}, false},
		{"no resolver", Options{Zones: []Zone{{Name: "bl.test"}}}, false},
		{"empty name", Options{Zones: []Zone{{Name: "."}}, Resolver: res}, false},
		{"answer outside 127/8", Options{Zones: []Zone{{Name: "bl.test", Answers: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/32")}}}, Resolver: res}, false},
	}
	for _, tt := range tests {
		c, err := New(tt.opts)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err %v", tt.name, err)
		}
		if err == nil && (c.opts.Threshold != 1 || c.opts.Zones[0].Weight != 1 || c.opts.Timeout != DefaultTimeout) {
			t.Errorf("%s: defaults not applied: %+v", tt.name, c.opts)
		}
	}
	if (*Lookup)(nil).Wait().Blocked {
		t.Error("a nil Lookup blocks")
	}
}
