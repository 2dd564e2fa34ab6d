package route_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"smtpkit/internal/dns"
	"smtpkit/internal/dns/dnstest"
	"smtpkit/internal/route"
	"smtpkit/internal/smtp"
)

var zone = []string{
	"example.net. MX 20 mx2.example.net.",
	"example.net. MX 10 mx1.example.net.",
	"mx1.example.net. A 192.0.2.1",
	"mx1.example.net. AAAA 2001:db8::1",
	"mx2.example.net. A 192.0.2.2",
	"equal.example.net. MX 10 a.example.net.",
	"equal.example.net. MX 10 b.example.net.",
	"equal.example.net. MX 10 c.example.net.",
	"equal.example.net. MX 5 first.example.net.",
	"equal.example.net. MX 50 last.example.net.",
	"a.example.net. A 192.0.2.10", "b.example.net. A 192.0.2.11", "c.example.net. A 192.0.2.12",
	"first.example.net. A 192.0.2.5", "last.example.net. A 192.0.2.50",
	"implicit.example.net. A 192.0.2.30",
	"implicit.example.net. AAAA 2001:db8::30",
	"noaddr.example.net. TXT \"no mail here\"",
	"null.example.net. MX 0 .",
	"nullpref.example.net. MX 10 .",
	"mixed.example.net. MX 0 .",
	"mixed.example.net. MX 10 mx2.example.net.",
	"cnamemx.example.net. MX 10 alias.example.net.",
	"alias.example.net. CNAME mx1.example.net.",
	"skip.example.net. MX 5 nowhere.example.net.",
	"skip.example.net. MX 10 noaddr.example.net.",
	"skip.example.net. MX 20 mx2.example.net.",
	"allgone.example.net. MX 10 nowhere.example.net.",
	"allgone.example.net. MX 20 noaddr.example.net.",
	"hostfail.example.net. MX 10 broken.example.net.",
	"hostfail.example.net. MX 20 nowhere.example.net.",
	"loop.example.net. MX 10 localhost.example.net.",
	"localhost.example.net. A 127.0.0.1",
	"localhost.example.net. AAAA ::1",
	"halfloop.example.net. MX 10 localhost.example.net.",
	"halfloop.example.net. MX 20 mx2.example.net.",
	"unspec.example.net. MX 10 zero.example.net.",
	"zero.example.net. A 0.0.0.0",
	"mapped.example.net. MX 10 mappedhost.example.net.",
	"mappedhost.example.net. AAAA ::ffff:127.0.0.1",
	"mixedloop.example.net. MX 10 mixedhost.example.net.",
	"mixedhost.example.net. A 127.0.0.1",
	"mixedhost.example.net. A 192.0.2.77",
	"smarthost.example. A 192.0.2.99",
	"smarthost.example. AAAA 2001:db8::99",
	"broken.example.net. A 192.0.2.66",
}

func newResolver(t *testing.T, z dnstest.Zone) dns.Resolver {
	t.Helper()
	if z.Records == nil {
		z.Records = zone
	}
	srv := dnstest.Start(t, z)
	res, err := dns.New(dns.Options{Servers: []string{srv.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// describe renders hops compactly: "host:port/pref [addr addr] route".
func describe(hops []route.Hop) string {
	var parts []string
	for _, h := range hops {
		var addrs []string
		for _, a := range h.Addrs {
			addrs = append(addrs, a.String())
		}
		s := fmt.Sprintf("%s:%d/%d [%s]", h.Host, h.Port, h.Pref, strings.Join(addrs, " "))
		if h.Route != nil {
			s += " via " + h.Route.Domain
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// wantErr describes an expected *smtp.Error by code and enhanced code.
type wantErr struct {
	code int
	enh  smtp.Enhanced
}

func checkErr(t *testing.T, err error, want wantErr) {
	t.Helper()
	var se *smtp.Error
	if !errors.As(err, &se) {
		t.Fatalf("err = %v (%T), want *smtp.Error %d %s", err, err, want.code, want.enh)
	}
	if se.Reply.Code != want.code || se.Reply.Enhanced != want.enh {
		t.Fatalf("err = %v, want %d %s", err, want.code, want.enh)
	}
}

func TestHopsDNS(t *testing.T) {
	tests := []struct {
		name          string
		domain        string
		allowLoopback bool
		want          string
		err           wantErr
	}{
		{name: "MX by preference", domain: "example.net",
			want: "mx1.example.net:25/10 [2001:db8::1 192.0.2.1]; mx2.example.net:25/20 [192.0.2.2]"},
		{name: "case and trailing dot", domain: "Example.NET.",
			want: "mx1.example.net:25/10 [2001:db8::1 192.0.2.1]; mx2.example.net:25/20 [192.0.2.2]"},
		{name: "implicit MX", domain: "implicit.example.net",
			want: "implicit.example.net:25/0 [2001:db8::30 192.0.2.30]"},
		{name: "implicit MX without addresses", domain: "noaddr.example.net", err: wantErr{451, "4.4.4"}},
		{name: "null MX", domain: "null.example.net", err: wantErr{556, "5.1.10"}},
		{name: "null MX with nonzero preference", domain: "nullpref.example.net", err: wantErr{556, "5.1.10"}},
		{name: "null MX mixed with a real MX", domain: "mixed.example.net", want: "mx2.example.net:25/10 [192.0.2.2]"},
		{name: "nxdomain", domain: "nope.example.net", err: wantErr{550, "5.1.2"}},
		{name: "servfail", domain: "servfail.example.net", err: wantErr{451, "4.4.3"}},
		{name: "invalid name", domain: "a..b", err: wantErr{550, "5.1.2"}},
		{name: "CNAME'd MX host", domain: "cnamemx.example.net",
			want: "alias.example.net:25/10 [2001:db8::1 192.0.2.1]"},
		{name: "unresolvable MX hosts skipped", domain: "skip.example.net", want: "mx2.example.net:25/20 [192.0.2.2]"},
		{name: "no MX host resolves", domain: "allgone.example.net", err: wantErr{451, "4.4.4"}},
		{name: "MX host lookup fails", domain: "hostfail.example.net", err: wantErr{451, "4.4.3"}},
		{name: "loopback refused", domain: "loop.example.net", err: wantErr{550, "5.4.4"}},
		{name: "loopback allowed", domain: "loop.example.net", allowLoopback: true,
			want: "localhost.example.net:25/10 [::1 127.0.0.1]"},
		{name: "loopback host skipped", domain: "halfloop.example.net", want: "mx2.example.net:25/20 [192.0.2.2]"},
		{name: "unspecified refused", domain: "unspec.example.net", err: wantErr{550, "5.4.4"}},
		{name: "IPv4-mapped loopback refused", domain: "mapped.example.net", err: wantErr{550, "5.4.4"}},
		{name: "loopback address dropped, others kept", domain: "mixedloop.example.net",
			want: "mixedhost.example.net:25/10 [192.0.2.77]"},
		{name: "address literal", domain: "[192.0.2.7]", want: "192.0.2.7:25/0 [192.0.2.7]"},
		{name: "IPv6 address literal", domain: "[IPv6:2001:DB8::7]", want: "2001:db8::7:25/0 [2001:db8::7]"},
		{name: "loopback literal refused", domain: "[127.0.0.1]", err: wantErr{550, "5.4.4"}},
		{name: "loopback literal allowed", domain: "[127.0.0.1]", allowLoopback: true, want: "127.0.0.1:25/0 [127.0.0.1]"},
		{name: "bad literal", domain: "[IPv6:192.0.2.1]", err: wantErr{550, "5.1.3"}},
		{name: "empty domain", domain: "", err: wantErr{550, "5.1.3"}},
	}
	res := newResolver(t, dnstest.Zone{ServFail: []string{"servfail.example.net", "broken.example.net"}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := route.New(res, nil, route.Options{AllowLoopback: tt.allowLoopback, Rand: rand.New(rand.NewPCG(1, 2))})
			hops, err := r.Hops(context.Background(), tt.domain)
			if tt.want == "" {
				checkErr(t, err, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := describe(hops); got != tt.want {
				t.Errorf("hops\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestNullMXIsErrNullMX(t *testing.T) {
	r := route.New(newResolver(t, dnstest.Zone{}), nil, route.Options{})
	_, err := r.Hops(context.Background(), "null.example.net")
	if !errors.Is(err, route.ErrNullMX) {
		t.Fatalf("err = %v, want ErrNullMX", err)
	}
	var se *smtp.Error
	if !errors.As(err, &se) || !se.Permanent() || !strings.Contains(se.Reply.Text(), "null.example.net") {
		t.Errorf("err = %v, want a permanent error naming the domain", err)
	}
}

func TestEqualPreferenceShuffled(t *testing.T) {
	res := newResolver(t, dnstest.Zone{})
	order := func(seed uint64) string {
		r := route.New(res, nil, route.Options{Rand: rand.New(rand.NewPCG(seed, seed))})
		hops, err := r.Hops(context.Background(), "equal.example.net")
		if err != nil {
			t.Fatal(err)
		}
		var hosts []string
		for _, h := range hops {
			hosts = append(hosts, strings.TrimSuffix(h.Host, ".example.net"))
		}
		if len(hosts) != 5 || hosts[0] != "first" || hosts[4] != "last" {
			t.Fatalf("seed %d: order %v: preferences not respected", seed, hosts)
		}
		return strings.Join(hosts, " ")
	}
	if a, b := order(7), order(7); a != b {
		t.Errorf("same seed gave %q and %q", a, b)
	}
	seen := map[string]bool{}
	for seed := range uint64(64) {
		seen[order(seed)] = true
	}
	// Three hosts of equal preference have six orders; 64 seeds should
	// show every one of them.
	if len(seen) != 6 {
		t.Errorf("saw %d orders of the equal-preference hosts, want 6: %v", len(seen), seen)
	}
}

func TestHopsStatic(t *testing.T) {
	mustStatic := func(domain, host, tls string) route.Static {
		s, err := route.ParseStatic(domain, host, tls, "", "")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	exact := mustStatic("Routed.Example", "smarthost.example:587", "required")
	loop := mustStatic("local.example", "127.0.0.1:2525", "")
	star := mustStatic("*", "[2001:db8::25]:465", "")
	missing := mustStatic("missing.example", "nowhere.example.net", "")
	broken := mustStatic("broken.example", "broken.example.net", "")
	tests := []struct {
		name   string
		routes []route.Static
		domain string
		want   string
		err    wantErr
	}{
		{name: "exact route", routes: []route.Static{exact}, domain: "routed.example",
			want: "smarthost.example:587/0 [2001:db8::99 192.0.2.99] via routed.example"},
		{name: "exact route is case-insensitive", routes: []route.Static{exact, star}, domain: "ROUTED.example.",
			want: "smarthost.example:587/0 [2001:db8::99 192.0.2.99] via routed.example"},
		{name: "exact beats *", routes: []route.Static{star, exact}, domain: "routed.example",
			want: "smarthost.example:587/0 [2001:db8::99 192.0.2.99] via routed.example"},
		{name: "* for other domains", routes: []route.Static{exact, star}, domain: "example.net",
			want: "2001:db8::25:465/0 [2001:db8::25] via *"},
		{name: "* for address literals", routes: []route.Static{star}, domain: "[192.0.2.1]",
			want: "2001:db8::25:465/0 [2001:db8::25] via *"},
		{name: "no * falls back to MX", routes: []route.Static{exact}, domain: "example.net",
			want: "mx1.example.net:25/10 [2001:db8::1 192.0.2.1]; mx2.example.net:25/20 [192.0.2.2]"},
		{name: "no match of subdomains", routes: []route.Static{exact}, domain: "sub.routed.example", err: wantErr{550, "5.1.2"}},
		{name: "route to loopback allowed", routes: []route.Static{loop}, domain: "local.example",
			want: "127.0.0.1:2525/0 [127.0.0.1] via local.example"},
		{name: "route host does not resolve", routes: []route.Static{missing}, domain: "missing.example", err: wantErr{451, "4.4.4"}},
		{name: "route host lookup fails", routes: []route.Static{broken}, domain: "broken.example", err: wantErr{451, "4.4.3"}},
	}
	res := newResolver(t, dnstest.Zone{ServFail: []string{"broken.example.net"}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := route.New(res, tt.routes, route.Options{})
			hops, err := r.Hops(context.Background(), tt.domain)
			if tt.want == "" {
				checkErr(t, err, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := describe(hops); got != tt.want {
				t.Errorf("hops\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestStaticRouteCarriesSettings(t *testing.T) {
	s, err := route.ParseStatic("routed.example", "smarthost.example:587", "verify", "user", "/etc/smtpkit/pw")
	if err != nil {
		t.Fatal(err)
	}
	r := route.New(newResolver(t, dnstest.Zone{}), []route.Static{s}, route.Options{DefaultPort: 2525})
	hops, err := r.Hops(context.Background(), "routed.example")
	if err != nil {
		t.Fatal(err)
	}
	if got := *hops[0].Route; got != s {
		t.Errorf("Route = %+v, want %+v", got, s)
	}
	// The hop's Route is a copy: changing it does not change the router.
	hops[0].Route.Host = "elsewhere.example"
	again, err := r.Hops(context.Background(), "routed.example")
	if err != nil || again[0].Route.Host != "smarthost.example" {
		t.Errorf("router state changed through a hop: %+v, %v", again, err)
	}
}

func TestDefaultPort(t *testing.T) {
	noPort, err := route.ParseStatic("routed.example", "smarthost.example", "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	res := newResolver(t, dnstest.Zone{})
	r := route.New(res, []route.Static{noPort}, route.Options{DefaultPort: 2525})
	for _, d := range []string{"routed.example", "example.net", "[192.0.2.1]"} {
		hops, err := r.Hops(context.Background(), d)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hops {
			if h.Port != 2525 {
				t.Errorf("%s: hop %s port %d, want 2525", d, h.Host, h.Port)
			}
		}
	}
}

func TestAuthentic(t *testing.T) {
	tests := []struct {
		name     string
		unsigned []string
		domain   string
		want     []bool
	}{
		{name: "all signed", domain: "example.net", want: []bool{true, true}},
		{name: "MX answer unsigned", unsigned: []string{"example.net"}, domain: "example.net", want: []bool{false, false}},
		{name: "one host unsigned", unsigned: []string{"mx2.example.net"}, domain: "example.net", want: []bool{true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := newResolver(t, dnstest.Zone{Authentic: true, Unsigned: tt.unsigned})
			hops, err := route.New(res, nil, route.Options{}).Hops(context.Background(), tt.domain)
			if err != nil {
				t.Fatal(err)
			}
			var got []bool
			for _, h := range hops {
				got = append(got, h.Authentic)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Authentic %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCancelledContext(t *testing.T) {
	r := route.New(newResolver(t, dnstest.Zone{}), nil, route.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := r.Hops(ctx, "example.net")
	checkErr(t, err, wantErr{451, "4.4.3"})
}
