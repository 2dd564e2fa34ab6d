package dmarcrpt

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"smtpkit/internal/dns"
	"smtpkit/internal/dns/dnstest"
)

func testResolver(t *testing.T, z dnstest.Zone) *dns.Client {
	t.Helper()
	res, err := dns.New(dns.Options{Servers: []string{dnstest.Start(t, z).Addr}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestAuthorize is the §7.1 check against a DNS server on loopback.
func TestAuthorize(t *testing.T) {
	res := testResolver(t, dnstest.Zone{
		Records: []string{
			`example.com._report._dmarc.reports.example.net. TXT "v=DMARC1"`,
			`other.example._report._dmarc.reports.example.net. TXT "v=DMARC1;"`,
			`sub.example.com._report._dmarc.reports.example.net. TXT "v=DMARC1; rua=mailto:agg@reports.example.net!1m, mailto:evil@elsewhere.example"`,
			`example.org._report._dmarc.reports.example.net. TXT "v=spf1 -all"`,
			`example.org._report._dmarc.reports.example.net. TXT "v=DMARC2"`,
			`bad.example._report._dmarc.reports.example.net. TXT "v=DMARC1; rua=mailto:x@elsewhere.example"`,
		},
		ServFail: []string{"flaky.example._report._dmarc.reports.example.net."},
	})
	dest := Destination{Address: "dmarc@Reports.Example.NET"}
	tests := []struct {
		name, domain string
		d            Destination
		want         []Destination
		err          error
	}{
		{"same organizational domain: no lookup", "mail.example.net", dest, []Destination{dest}, nil},
		{"same domain", "example.com", Destination{Address: "d@example.com"}, []Destination{{Address: "d@example.com"}}, nil},
		{"subdomain of the policy's org domain", "example.com", Destination{Address: "d@rua.example.com"}, []Destination{{Address: "d@rua.example.com"}}, nil},
		{"authorized", "example.com", dest, []Destination{dest}, nil},
		{"authorized, trailing semicolon", "other.example", dest, []Destination{dest}, nil},
		{"rua override, same org only", "sub.example.com", dest, []Destination{{Address: "agg@reports.example.net", MaxSize: 1 << 20}}, nil},
		{"override outside the destination's org", "bad.example", dest, nil, ErrNotAuthorized},
		{"no record", "nobody.example", dest, nil, ErrNotAuthorized},
		{"records not v=DMARC1", "example.org", dest, nil, ErrNotAuthorized},
		{"servfail is temporary", "flaky.example", dest, nil, dns.ErrTemporary},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Authorize(context.Background(), res, tt.domain, tt.d)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Authorize = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestParseURI(t *testing.T) {
	tests := []struct {
		in   string
		want Destination
		ok   bool
		err  bool
	}{
		{"mailto:dmarc@example.com", Destination{Address: "dmarc@example.com"}, true, false},
		{" MAILTO:dmarc@example.com!10m", Destination{Address: "dmarc@example.com", MaxSize: 10 << 20}, true, false},
		{"mailto:d@example.com!500", Destination{Address: "d@example.com", MaxSize: 500}, true, false},
		{"mailto:d@example.com!2k", Destination{Address: "d@example.com", MaxSize: 2048}, true, false},
		{"mailto:d%40x@example.com", Destination{}, false, true}, // two @ is not one address (d@x@example.com)
		{"https://reports.example/dmarc", Destination{}, false, false},
		{"mailto:d@example.com!", Destination{}, false, true},
		{"mailto:d@example.com!10x", Destination{}, false, true},
		{"mailto:a@x.example,b@y.example", Destination{}, false, true},
		{"mailto:", Destination{}, false, true},
		{"dmarc@example.com", Destination{}, false, true},
		{"mAilto:0@.", Destination{}, false, true}, // the root is no domain (a fuzz finding)
		{"mailto:d@a..example", Destination{}, false, true},
		{"mailto:d@example.com.", Destination{Address: "d@example.com."}, true, false},
	}
	for _, tt := range tests {
		got, ok, err := ParseURI(tt.in)
		if got != tt.want || ok != tt.ok || (err != nil) != tt.err {
			t.Errorf("ParseURI(%q) = %+v, %v, %v; want %+v, %v, err %v", tt.in, got, ok, err, tt.want, tt.ok, tt.err)
		}
	}
}

func TestOrgDomain(t *testing.T) {
	for in, want := range map[string]string{
		"mail.example.com": "example.com", "Example.COM.": "example.com", "a.b.example.co.uk": "example.co.uk",
		"com": "com", "example": "example", "x.y.example": "y.example",
	} {
		if got := OrgDomain(in); got != want {
			t.Errorf("OrgDomain(%q) = %q, want %q", in, got, want)
		}
	}
}
