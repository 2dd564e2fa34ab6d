package probe

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseTarget: whatever the input, a parsed target has a host that is
// an IP or a plausible name, and ports in range; and it round-trips through
// net.JoinHostPort.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"mx.example.net", "mx:25", "[::1]:465", "::1", "127.0.0.1:2525", "[", "a:b:c", "host:+1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseTarget(s)
		if err != nil {
			return
		}
		if checkHost(tg.Host) != nil || len(tg.Ports) == 0 {
			t.Fatalf("%q: %+v", s, tg)
		}
		for _, p := range tg.Ports {
			if p < 1 || p > 65535 {
				t.Fatalf("%q: port %d", s, p)
			}
			again, err := ParseTarget(net.JoinHostPort(tg.Host, strconv.Itoa(p)))
			if err != nil || again.Host != tg.Host || len(again.Ports) != 1 || again.Ports[0] != p {
				t.Fatalf("%q: round trip %+v %v", s, again, err)
			}
		}
	})
}

// FuzzParseDestination: a parsed destination is either a domain (lower
// case, a plausible name, no port, not an IP address) or a host target as
// ParseTarget gives it; never both.
func FuzzParseDestination(f *testing.F) {
	for _, s := range []string{"example.com", "Example.COM.", "mx:25", "[::1]", "127.0.0.1", "exa$mple", ".", "", "a..b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseDestination(s)
		if err != nil {
			return
		}
		if tg.Domain == "" {
			if want, err := ParseTarget(s); err != nil || want.Host != tg.Host || len(want.Ports) != len(tg.Ports) {
				t.Fatalf("%q: host target %+v differs from ParseTarget's %+v (%v)", s, tg, want, err)
			}
			return
		}
		if tg.Host != "" || tg.Ports != nil || checkHost(tg.Domain) != nil || net.ParseIP(tg.Domain) != nil ||
			strings.ToLower(tg.Domain) != tg.Domain || strings.ContainsAny(tg.Domain, ":[") {
			t.Fatalf("%q: domain target %+v", s, tg)
		}
	})
}
