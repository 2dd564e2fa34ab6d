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

// FuzzParseHosts checks that ParseHosts never panics and that every name
// it returns is a valid lower-case host name with at least one address,
// none repeated.
func FuzzParseHosts(f *testing.F) {
	for _, s := range []string{"127.0.0.1 localhost\n::1 localhost ip6-localhost\n", "# c\n10.0.0.1 A.B. a.b #x\n",
		"fe80::1%lo x\n", "1.2.3.4\n", "::ffff:1.2.3.4 m\r\n1.2.3.4 m\n", "x y z\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for name, addrs := range ParseHosts(data) {
			if name == "" || strings.ToLower(name) != name || strings.HasSuffix(name, ".") || len(addrs) == 0 {
				t.Fatalf("name %q addrs %v", name, addrs)
			}
			seen := map[string]bool{}
			for _, a := range addrs {
				if !a.IsValid() || a.Zone() != "" || seen[a.String()] {
					t.Fatalf("%q: address %v", name, a)
				}
				seen[a.String()] = true
			}
		}
	})
}
