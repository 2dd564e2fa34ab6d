package route_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"smtpkit/internal/dns/dnstest"
	"smtpkit/internal/route"
)

func TestParseHosts(t *testing.T) {
	long := "127.0.0.9 " + string(make([]byte, 5000)) + "\n"
	in := "# comment\n" +
		"127.0.0.1\tlocalhost localhost.localdomain\n" +
		"::1 localhost ip6-localhost  # the IPv6 one\n" +
		"127.17.5.9 Relay.Example. relay\n" +
		"127.17.5.10 relay\n" +
		"127.17.5.9 relay\n" + // duplicate address: once
		"not-an-ip name.example\n" +
		"fe80::1%eth0 zoned.example\n" +
		"::ffff:192.0.2.7 mapped.example\n" +
		"192.0.2.8\n" + // no name
		long +
		"192.0.2.9 bad_label- after.long\r\n"
	got := route.ParseHosts([]byte(in))
	ip := netip.MustParseAddr
	want := map[string][]netip.Addr{
		"localhost":             {ip("127.0.0.1"), ip("::1")},
		"localhost.localdomain": {ip("127.0.0.1")},
		"ip6-localhost":         {ip("::1")},
		"relay.example":         {ip("127.17.5.9")},
		"relay":                 {ip("127.17.5.9"), ip("127.17.5.10")},
		"mapped.example":        {ip("192.0.2.7")},
		"after.long":            {ip("192.0.2.9")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseHosts =\n%v\nwant\n%v", got, want)
	}
}

// TestStaticRouteHostsFile: a route host is looked up in the hosts file
// first, then in DNS; IP literals need neither (issue #19).
func TestStaticRouteHostsFile(t *testing.T) {
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("127.17.5.20 localhost smarthost.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustStatic := func(domain, host string) route.Static {
		s, err := route.ParseStatic(domain, host, "", "", "")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	routes := []route.Static{
		mustStatic("a.example", "localhost:2525"),
		mustStatic("b.example", "smarthost.example"), // in both: the file wins
		mustStatic("c.example", "mx1.example.net"),   // only in DNS
		mustStatic("d.example", "127.17.5.21:2526"),
		mustStatic("e.example", "[127.17.5.22]"),
	}
	res := newResolver(t, dnstest.Zone{})
	r := route.New(res, routes, route.Options{Hosts: route.HostsFile(hosts)})
	for domain, want := range map[string]string{
		"a.example": "localhost:2525/0 [127.17.5.20] via a.example",
		"b.example": "smarthost.example:25/0 [127.17.5.20] via b.example",
		"c.example": "mx1.example.net:25/0 [2001:db8::1 192.0.2.1] via c.example",
		"d.example": "127.17.5.21:2526/0 [127.17.5.21] via d.example",
		"e.example": "127.17.5.22:25/0 [127.17.5.22] via e.example",
	} {
		hops, err := r.Hops(context.Background(), domain)
		if err != nil {
			t.Errorf("%s: %v", domain, err)
			continue
		}
		if got := describe(hops); got != want {
			t.Errorf("%s: hops %s, want %s", domain, got, want)
		}
	}
	// Without the hosts file, "localhost" is a DNS name that does not exist.
	r = route.New(res, routes, route.Options{Hosts: route.HostsFile(filepath.Join(t.TempDir(), "none"))})
	if _, err := r.Hops(context.Background(), "a.example"); err == nil {
		t.Error("localhost resolved without a hosts file")
	}
}
