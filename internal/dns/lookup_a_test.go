package dns_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	mdns "github.com/miekg/dns"

	"smtpkit/internal/dns"
	"smtpkit/internal/dns/dnstest"
)

// onlyIP hides the AResolver of a resolver, for the Cache's fallback.
type onlyIP struct{ dns.Resolver }

// TestLookupA: LookupA asks for A records only (no AAAA query), through a
// Client and through a Cache, which keeps the answer for its TTL; in
// front of a resolver without LookupA the Cache keeps LookupIP's IPv4
// addresses.
func TestLookupA(t *testing.T) {
	srv := dnstest.Start(t, dnstest.Zone{Host: "127.15.3.54", Records: []string{
		"2.0.0.127.bl.test. 300 A 127.0.0.2",
		"2.0.0.127.bl.test. 300 A 127.0.0.4",
		"2.0.0.127.bl.test. 300 AAAA ::1",
	}})
	client, err := dns.New(dns.Options{Servers: []string{srv.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.4")}
	for _, tt := range []struct {
		name string
		res  dns.AResolver
		aaaa int // AAAA queries expected
	}{
		{"client", client, 0},
		{"cache", dns.NewCache(client, dns.CacheOptions{}), 0},
		{"cache over LookupIP", dns.NewCache(onlyIP{client}, dns.CacheOptions{}), 1},
	} {
		before := countQueries(srv, "2.0.0.127.bl.test.", mdns.TypeAAAA)
		for range 2 {
			a, err := tt.res.LookupA(context.Background(), "2.0.0.127.bl.test")
			slices.SortFunc(a.IPs, func(x, y netip.Addr) int { return x.Compare(y) })
			if err != nil || !slices.Equal(a.IPs, want) {
				t.Fatalf("%s: %v, %v; want %v", tt.name, a.IPs, err, want)
			}
		}
		if n := countQueries(srv, "2.0.0.127.bl.test.", mdns.TypeAAAA) - before; n != tt.aaaa {
			t.Errorf("%s: %d AAAA queries, want %d", tt.name, n, tt.aaaa)
		}
	}
	if n := countQueries(srv, "2.0.0.127.bl.test.", mdns.TypeA); n != 4 {
		t.Errorf("%d A queries, want 4 (the client twice, each cache once)", n)
	}
	a, err := client.LookupA(context.Background(), "nx.bl.test")
	if err != nil || !a.NXDomain || len(a.IPs) != 0 {
		t.Errorf("nx: %+v, %v", a, err)
	}
}
