package route

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"smtpkit/internal/tlspolicy"
)

func TestParseStatic(t *testing.T) {
	tests := []struct {
		domain, hostport, tls, user, file string
		want                              Static
		ok                                bool
	}{
		{"Example.COM.", "Smart.Example.net", "", "", "", Static{Domain: "example.com", Host: "smart.example.net"}, true},
		{"*", "smart.example.net:587", "required", "u", "/pw", Static{Domain: "*", Host: "smart.example.net", Port: 587, TLS: tlspolicy.Required, TLSSet: true, AuthUser: "u", AuthPasswordFile: "/pw"}, true},
		{"a.example", "smart.example.net:465", "verify", "", "", Static{Domain: "a.example", Host: "smart.example.net", Port: 465, TLS: tlspolicy.Verify, TLSSet: true}, true},
		{"a.example", "192.0.2.1", "", "", "", Static{Domain: "a.example", Host: "192.0.2.1"}, true},
		{"a.example", "192.0.2.1:2525", "", "", "", Static{Domain: "a.example", Host: "192.0.2.1", Port: 2525}, true},
		{"a.example", "2001:db8::1", "", "", "", Static{Domain: "a.example", Host: "2001:db8::1"}, true},
		{"a.example", "[2001:DB8::1]", "", "", "", Static{Domain: "a.example", Host: "2001:db8::1"}, true},
		{"a.example", "[2001:db8::1]:25", "none", "", "", Static{Domain: "a.example", Host: "2001:db8::1", Port: 25, TLS: tlspolicy.None, TLSSet: true}, true},
		{"a.example", "[192.0.2.1]", "", "", "", Static{Domain: "a.example", Host: "192.0.2.1"}, true},
		// Policy names are case-insensitive, as in outbound.tls.
		{"a.example", "smart.example", "VERIFY", "", "", Static{Domain: "a.example", Host: "smart.example", TLS: tlspolicy.Verify, TLSSet: true}, true},
		{"a.example", "smart.example", "Opportunistic", "", "", Static{Domain: "a.example", Host: "smart.example", TLS: tlspolicy.Opportunistic, TLSSet: true}, true},
		{"_dmarc.a.example", "mx_1.example:25", "opportunistic", "", "", Static{Domain: "_dmarc.a.example", Host: "mx_1.example", Port: 25, TLS: tlspolicy.Opportunistic, TLSSet: true}, true},
		// Refused.
		{"", "smart.example", "", "", "", Static{}, false},
		{"a..example", "smart.example", "", "", "", Static{}, false},
		{"-a.example", "smart.example", "", "", "", Static{}, false},
		{"[192.0.2.1]", "smart.example", "", "", "", Static{}, false},
		{"*.example", "smart.example", "", "", "", Static{}, false},
		{"a.example", "", "", "", "", Static{}, false},
		{"a.example", "smart.example:0", "", "", "", Static{}, false},
		{"a.example", "smart.example:65536", "", "", "", Static{}, false},
		{"a.example", "smart.example:+25", "", "", "", Static{}, false},
		{"a.example", "smart.example:", "", "", "", Static{}, false},
		{"a.example", "smart.example:smtp", "", "", "", Static{}, false},
		{"a.example", ":25", "", "", "", Static{}, false},
		{"a.example", "[smart.example]:25", "", "", "", Static{}, false},
		{"a.example", "[192.0.2.1]:25", "", "", "", Static{}, false},
		{"a.example", "2001:db8::1:25x", "", "", "", Static{}, false},
		{"a.example", "fe80::1%eth0", "", "", "", Static{}, false},
		{"a.example", "[fe80::1%eth0]:25", "", "", "", Static{}, false},
		{"a.example", "smart example", "", "", "", Static{}, false},
		{"a.example", "smart.example", "tls", "", "", Static{}, false},
		{"a.example", "smart.example", "", "user", "", Static{}, false},
		{"a.example", "smart.example", "", "", "/pw", Static{}, false},
		{"a.example", "smart.example", "", "us\r\ner", "/pw", Static{}, false},
		{strings.Repeat("a", 64) + ".example", "smart.example", "", "", "", Static{}, false},
	}
	for _, tt := range tests {
		got, err := ParseStatic(tt.domain, tt.hostport, tt.tls, tt.user, tt.file)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("ParseStatic(%q, %q, %q, %q, %q) = %+v, %v; want %+v, ok %v",
				tt.domain, tt.hostport, tt.tls, tt.user, tt.file, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseLiteral(t *testing.T) {
	tests := []struct {
		in, want string // want "" = error
	}{
		{"[192.0.2.1]", "192.0.2.1"},
		{"[IPv6:2001:db8::1]", "2001:db8::1"},
		{"[ipv6:2001:DB8::1]", "2001:db8::1"},
		{"[IPv6:::ffff:192.0.2.1]", "::ffff:192.0.2.1"},
		{"[2001:db8::1]", ""},
		{"[IPv6:192.0.2.1]", ""},
		{"[IPv6:fe80::1%eth0]", ""},
		{"[x-tag:content]", ""},
		{"[192.0.2.256]", ""},
		{"[]", ""},
		{"192.0.2.1", ""},
		{"[192.0.2.1", ""},
	}
	for _, tt := range tests {
		ip, err := ParseLiteral(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ParseLiteral(%q) = %v, want error", tt.in, ip)
			}
			continue
		}
		if err != nil || ip.String() != tt.want {
			t.Errorf("ParseLiteral(%q) = %v, %v; want %s", tt.in, ip, err, tt.want)
		}
	}
}

func TestOrderAddrs(t *testing.T) {
	addrs := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	tests := []struct{ in, want []netip.Addr }{
		{addrs("2001:db8::1", "2001:db8::2", "192.0.2.1"), addrs("2001:db8::1", "192.0.2.1", "2001:db8::2")},
		{addrs("192.0.2.1", "192.0.2.2"), addrs("192.0.2.1", "192.0.2.2")},
		{addrs("192.0.2.1", "192.0.2.1", "2001:db8::1", "2001:db8::1"), addrs("2001:db8::1", "192.0.2.1")},
		{addrs("::ffff:192.0.2.1", "2001:db8::1"), addrs("2001:db8::1", "::ffff:192.0.2.1")},
		{addrs("192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5", "192.0.2.6", "192.0.2.7", "192.0.2.8", "192.0.2.9"),
			addrs("192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5", "192.0.2.6", "192.0.2.7", "192.0.2.8")},
		{nil, []netip.Addr{}},
	}
	for _, tt := range tests {
		if got := orderAddrs(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("orderAddrs(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
