package route

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseStatic checks that ParseStatic never panics, that what it accepts
// is normalised, and that formatting an accepted route and parsing it again
// gives the same route.
func FuzzParseStatic(f *testing.F) {
	for _, s := range [][2]string{
		{"example.com", "smart.example.net:587"},
		{"*", "[2001:db8::1]:25"},
		{"A.Example.", "192.0.2.1"},
		{"a.example", "[192.0.2.1]"},
		{"a.example", "2001:db8::1"},
		{"a..b", "x:0"},
		{"a.example", "[fe80::1%eth0]:25"},
	} {
		f.Add(s[0], s[1], "required", "user", "/pw")
	}
	f.Fuzz(func(t *testing.T, domain, hostport, tls, user, file string) {
		s, err := ParseStatic(domain, hostport, tls, user, file)
		if err != nil {
			return
		}
		if s.Domain != "*" && (s.Domain != strings.ToLower(s.Domain) || !validDomain(s.Domain)) {
			t.Fatalf("domain %q not normalised", s.Domain)
		}
		if s.Host == "" || strings.ContainsAny(s.Host, "[]% ") || s.Port < 0 || s.Port > 65535 {
			t.Fatalf("bad host/port %q %d from %q", s.Host, s.Port, hostport)
		}
		hp := s.Host
		if s.Port != 0 {
			hp = net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
		}
		policy := ""
		if s.TLSSet {
			policy = s.TLS.String()
		}
		again, err := ParseStatic(s.Domain, hp, policy, s.AuthUser, s.AuthPasswordFile)
		if err != nil || again != s {
			t.Fatalf("round trip of %+v via %q: %+v, %v", s, hp, again, err)
		}
	})
}

// FuzzParseLiteral checks ParseLiteral never panics and only accepts what
// it can print back in literal form.
func FuzzParseLiteral(f *testing.F) {
	for _, s := range []string{"[192.0.2.1]", "[IPv6:2001:db8::1]", "[IPv6:::ffff:1.2.3.4]", "[x:y]", "["} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ip, err := ParseLiteral(s)
		if err != nil {
			return
		}
		lit := "[" + ip.String() + "]"
		if ip.Is6() {
			lit = "[IPv6:" + ip.String() + "]"
		}
		again, err := ParseLiteral(lit)
		if err != nil || again != ip {
			t.Fatalf("%q → %v → %q → %v, %v", s, ip, lit, again, err)
		}
	})
}
