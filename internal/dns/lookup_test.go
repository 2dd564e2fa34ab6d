package dns_test

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"smtpkit/internal/dns"
	"smtpkit/internal/dns/dnstest"
)

// zone is shared by the lookup tables below.
var zone = []string{
	"example.net. MX 20 mx2.example.net.",
	"example.net. MX 10 MX1.Example.NET.",
	"mx1.example.net. A 192.0.2.1",
	"mx1.example.net. AAAA 2001:db8::1",
	"mx2.example.net. A 192.0.2.2",
	"v6only.example.net. AAAA 2001:db8::6",
	"nomx.example.net. A 192.0.2.3",
	"alias.example.net. CNAME example.net.",
	"hostalias.example.net. CNAME mx1.example.net.",
	"null.example.net. MX 0 .",
	"dangling.example.net. CNAME gone.example.org.",
	"loop1.example.net. CNAME loop2.example.net.",
	"loop2.example.net. CNAME loop1.example.net.",
	"c1.example.net. CNAME c2.example.net.", "c2.example.net. CNAME c3.example.net.",
	"c3.example.net. CNAME c4.example.net.", "c4.example.net. CNAME c5.example.net.",
	"c5.example.net. CNAME c6.example.net.", "c6.example.net. CNAME c7.example.net.",
	"c7.example.net. CNAME c8.example.net.", "c8.example.net. CNAME c9.example.net.",
	"c9.example.net. CNAME c10.example.net.", "c10.example.net. A 192.0.2.10",
	"eight.example.net. CNAME c3.example.net.",
	"big.example.net. MX 10 mx1.example.net.",
	"half.example.net. A 192.0.2.4",
	"sub.empty.example.net. A 192.0.2.5",
}

func newClient(t *testing.T, z dnstest.Zone, opts dns.Options) (*dns.Client, *dnstest.Server) {
	t.Helper()
	srv := dnstest.Start(t, z)
	if opts.Servers == nil {
		opts.Servers = []string{srv.Addr}
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	c, err := dns.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, srv
}

func TestLookupMX(t *testing.T) {
	tests := []struct {
		name    string
		domain  string
		follow  bool // server includes CNAME chains in answers
		want    dns.MXAnswer
		wantErr error
	}{
		{name: "records", domain: "example.net",
			want: dns.MXAnswer{Records: []dns.MX{{"mx2.example.net", 20}, {"mx1.example.net", 10}}}},
		{name: "trailing dot and case", domain: "EXAMPLE.net.",
			want: dns.MXAnswer{Records: []dns.MX{{"mx2.example.net", 20}, {"mx1.example.net", 10}}}},
		{name: "no MX but domain exists", domain: "nomx.example.net", want: dns.MXAnswer{}},
		{name: "empty non-terminal exists", domain: "empty.example.net", want: dns.MXAnswer{}},
		{name: "nxdomain", domain: "nope.example.net", want: dns.MXAnswer{NXDomain: true}},
		{name: "null MX", domain: "null.example.net", want: dns.MXAnswer{Records: []dns.MX{{".", 0}}}},
		{name: "CNAME asked again", domain: "alias.example.net",
			want: dns.MXAnswer{Records: []dns.MX{{"mx2.example.net", 20}, {"mx1.example.net", 10}}}},
		{name: "CNAME in answer", domain: "alias.example.net", follow: true,
			want: dns.MXAnswer{Records: []dns.MX{{"mx2.example.net", 20}, {"mx1.example.net", 10}}}},
		{name: "CNAME to nxdomain", domain: "dangling.example.net", want: dns.MXAnswer{NXDomain: true}},
		{name: "CNAME to nxdomain in answer", domain: "dangling.example.net", follow: true, want: dns.MXAnswer{NXDomain: true}},
		{name: "CNAME loop", domain: "loop1.example.net", wantErr: dns.ErrTemporary},
		{name: "CNAME loop in answer", domain: "loop1.example.net", follow: true, wantErr: dns.ErrTemporary},
		{name: "servfail", domain: "broken.example.net", wantErr: dns.ErrTemporary},
		{name: "empty name", domain: "", wantErr: dns.ErrInvalidName},
		{name: "root", domain: ".", wantErr: dns.ErrInvalidName},
		{name: "empty label", domain: "a..example.net", wantErr: dns.ErrInvalidName},
		{name: "label too long", domain: strings.Repeat("a", 64) + ".net", wantErr: dns.ErrInvalidName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newClient(t, dnstest.Zone{Records: zone, ServFail: []string{"broken.example.net"}, FollowCNAME: tt.follow}, dns.Options{})
			got, err := c.LookupMX(context.Background(), tt.domain)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLookupIP(t *testing.T) {
	ips := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	tests := []struct {
		name    string
		host    string
		follow  bool
		want    dns.IPAnswer
		wantErr error
	}{
		{name: "AAAA then A", host: "mx1.example.net", want: dns.IPAnswer{IPs: ips("2001:db8::1", "192.0.2.1")}},
		{name: "A only", host: "mx2.example.net", want: dns.IPAnswer{IPs: ips("192.0.2.2")}},
		{name: "AAAA only", host: "v6only.example.net", want: dns.IPAnswer{IPs: ips("2001:db8::6")}},
		{name: "no address records", host: "nomx.example.net", want: dns.IPAnswer{IPs: ips("192.0.2.3")}},
		{name: "name exists, no addresses", host: "empty.example.net", want: dns.IPAnswer{}},
		{name: "nxdomain", host: "nope.example.net", want: dns.IPAnswer{NXDomain: true}},
		{name: "CNAME", host: "hostalias.example.net", want: dns.IPAnswer{IPs: ips("2001:db8::1", "192.0.2.1")}},
		{name: "CNAME in answer", host: "hostalias.example.net", follow: true, want: dns.IPAnswer{IPs: ips("2001:db8::1", "192.0.2.1")}},
		{name: "eight CNAMEs", host: "eight.example.net", want: dns.IPAnswer{IPs: ips("192.0.2.10")}},
		{name: "eight CNAMEs in answer", host: "eight.example.net", follow: true, want: dns.IPAnswer{IPs: ips("192.0.2.10")}},
		{name: "nine CNAMEs", host: "c1.example.net", wantErr: dns.ErrTemporary},
		{name: "nine CNAMEs in answer", host: "c1.example.net", follow: true, wantErr: dns.ErrTemporary},
		// half.example.net has SERVFAIL for AAAA only: the A answer stands.
		{name: "AAAA fails, A answers", host: "half.example.net", want: dns.IPAnswer{IPs: ips("192.0.2.4")}},
		{name: "A fails, AAAA answers", host: "v6only.example.net.", want: dns.IPAnswer{IPs: ips("2001:db8::6")}},
		// null.example.net has no A records and its AAAA query fails.
		{name: "AAAA fails, no A", host: "null.example.net", wantErr: dns.ErrTemporary},
		{name: "servfail", host: "broken.example.net", wantErr: dns.ErrTemporary},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z := dnstest.Zone{
				Records:     zone,
				ServFail:    []string{"broken.example.net", "half.example.net AAAA", "v6only.example.net A", "null.example.net AAAA"},
				FollowCNAME: tt.follow,
			}
			c, _ := newClient(t, z, dns.Options{})
			got, err := c.LookupIP(context.Background(), tt.host)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestTruncatedFallsBackToTCP(t *testing.T) {
	c, srv := newClient(t, dnstest.Zone{Records: zone, Truncate: []string{"big.example.net"}}, dns.Options{})
	got, err := c.LookupMX(context.Background(), "big.example.net")
	if err != nil {
		t.Fatal(err)
	}
	if want := []dns.MX{{"mx1.example.net", 10}}; !reflect.DeepEqual(got.Records, want) {
		t.Errorf("records %+v, want %+v", got.Records, want)
	}
	var nets []string
	for _, q := range srv.Queries() {
		nets = append(nets, q.Net)
	}
	if want := []string{"udp", "tcp"}; !reflect.DeepEqual(nets, want) {
		t.Errorf("queries went over %v, want %v", nets, want)
	}
}

func TestAuthentic(t *testing.T) {
	tests := []struct {
		name     string
		edns0    bool
		signed   bool
		unsigned []string
		host     string
		want     bool
		wantDO   bool
	}{
		{name: "EDNS0 DO, signed", edns0: true, signed: true, host: "mx1.example.net", want: true, wantDO: true},
		{name: "AD in header only, signed", signed: true, host: "mx1.example.net", want: true},
		{name: "unsigned zone", edns0: true, host: "mx1.example.net", want: false, wantDO: true},
		{name: "unsigned CNAME target", edns0: true, signed: true, unsigned: []string{"mx1.example.net"},
			host: "hostalias.example.net", want: false, wantDO: true},
		{name: "signed CNAME chain", edns0: true, signed: true, host: "hostalias.example.net", want: true, wantDO: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z := dnstest.Zone{Records: zone, Authentic: tt.signed, Unsigned: tt.unsigned}
			c, srv := newClient(t, z, dns.Options{EDNS0: tt.edns0})
			ip, err := c.LookupIP(context.Background(), tt.host)
			if err != nil {
				t.Fatal(err)
			}
			if ip.Authentic != tt.want {
				t.Errorf("IP Authentic = %v, want %v", ip.Authentic, tt.want)
			}
			mx, err := c.LookupMX(context.Background(), "example.net")
			if err != nil {
				t.Fatal(err)
			}
			if mx.Authentic != tt.signed {
				t.Errorf("MX Authentic = %v, want %v", mx.Authentic, tt.signed)
			}
			for _, q := range srv.Queries() {
				if q.DO != tt.wantDO {
					t.Errorf("query %s DO = %v, want %v", q.Name, q.DO, tt.wantDO)
				}
			}
		})
	}
}

func TestServersInOrder(t *testing.T) {
	failing := dnstest.Start(t, dnstest.Zone{Records: zone, ServFail: []string{"example.net"}})
	working := dnstest.Start(t, dnstest.Zone{Records: zone})
	c, err := dns.New(dns.Options{Servers: []string{failing.Addr, working.Addr}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.LookupMX(context.Background(), "example.net")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Records) != 2 {
		t.Errorf("records %+v", got.Records)
	}
	if n := len(failing.Queries()); n != 1 {
		t.Errorf("failing server saw %d queries, want 1", n)
	}
	// NXDOMAIN is an answer: the second server is not asked.
	before := len(working.Queries())
	got, err = c.LookupMX(context.Background(), "nope.example.net")
	if err != nil || !got.NXDomain {
		t.Fatalf("got %+v, %v; want NXDomain", got, err)
	}
	if n := len(working.Queries()); n != before {
		t.Errorf("second server asked after an NXDOMAIN from the first")
	}
}

func TestTimeoutIsTemporary(t *testing.T) {
	c, _ := newClient(t, dnstest.Zone{Records: zone, Silent: []string{"example.net"}}, dns.Options{Timeout: 100 * time.Millisecond})
	_, err := c.LookupMX(context.Background(), "example.net")
	if !errors.Is(err, dns.ErrTemporary) {
		t.Fatalf("err = %v, want ErrTemporary", err)
	}
}

func TestCancelledContextIsTemporary(t *testing.T) {
	c, _ := newClient(t, dnstest.Zone{Records: zone, Silent: []string{"example.net"}}, dns.Options{Timeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.LookupMX(ctx, "example.net")
		done <- err
	}()
	cancel()
	err := <-done
	if !errors.Is(err, dns.ErrTemporary) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrTemporary wrapping context.Canceled", err)
	}
}

func TestNewServerOneLiner(t *testing.T) {
	addr := dnstest.NewServer(t, "example.org. MX 5 mail.example.org.", "mail.example.org. A 127.0.0.1")
	c, err := dns.New(dns.Options{Servers: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	mx, err := c.LookupMX(context.Background(), "example.org")
	if err != nil || len(mx.Records) != 1 || mx.Records[0] != (dns.MX{Host: "mail.example.org", Pref: 5}) {
		t.Fatalf("MX = %+v, %v", mx, err)
	}
	ip, err := c.LookupIP(context.Background(), "mail.example.org")
	if err != nil || !reflect.DeepEqual(ip.IPs, []netip.Addr{netip.MustParseAddr("127.0.0.1")}) {
		t.Fatalf("IP = %+v, %v", ip, err)
	}
}

// TestTypeServFail checks the dnstest "name TYPE" form the tables rely on.
func TestTypeServFail(t *testing.T) {
	srv := dnstest.Start(t, dnstest.Zone{Records: zone, ServFail: []string{"mx1.example.net AAAA"}})
	m := new(mdns.Msg)
	m.SetQuestion("mx1.example.net.", mdns.TypeAAAA)
	r, err := mdns.Exchange(m, srv.Addr)
	if err != nil || r.Rcode != mdns.RcodeServerFailure {
		t.Fatalf("AAAA: %v %v, want SERVFAIL", r, err)
	}
	m.SetQuestion("mx1.example.net.", mdns.TypeA)
	r, err = mdns.Exchange(m, srv.Addr)
	if err != nil || r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("A: %v %v, want one record", r, err)
	}
}
