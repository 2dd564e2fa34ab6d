package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// DNSBL is one [[dnsbl]]: a DNS block list (positive weight) or allow
// list (negative weight) asked about every untrusted client of an mx
// listener (RFC 5782; internal/dnsbl, wired in internal/inbound). The
// weights of the lists that list a client are added up; a total at or
// above dnsbl_threshold gets 554 5.7.1 at RCPT, a negative total exempts
// the client from greylisting.
type DNSBL struct {
	Zone string `toml:"zone"` // e.g. "zen.spamhaus.org"
	// Weight is added to the score when the zone lists the client,
	// negative for an allow list; 0 or absent means 1.
	Weight int `toml:"weight"`
	// Answers, when set, are the answers that count as a listing:
	// addresses ("127.0.0.2") or prefixes ("127.0.0.0/29") inside
	// 127.0.0.0/8. Absent: any 127.0.0.0/8 answer but the
	// 127.255.255.0/24 error replies.
	Answers []string `toml:"answers,omitempty"`
}

// Defaults of the DNSBL and early-talker keys.
const (
	DefaultDNSBLThreshold = 1
	DefaultDNSBLTimeout   = 10 * time.Second
)

// AnswerPrefixes parses Answers (a bare address is a /32).
func (d DNSBL) AnswerPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	loop := netip.MustParsePrefix("127.0.0.0/8")
	for _, a := range d.Answers {
		var p netip.Prefix
		var err error
		if strings.Contains(a, "/") {
			p, err = netip.ParsePrefix(a)
		} else {
			var ip netip.Addr
			if ip, err = netip.ParseAddr(a); err == nil {
				p = netip.PrefixFrom(ip, ip.BitLen())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or prefix", a)
		}
		if !p.Addr().Is4() || !loop.Contains(p.Addr()) || p.Bits() < 8 {
			return nil, fmt.Errorf("%q: list answers are inside 127.0.0.0/8 (RFC 5782 §2.1)", a)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// ListenerPregreet is how long l waits for an early talker before its
// greeting: the listener's pregreet, else for an mx listener the
// top-level pregreet; 0 is off.
func (c Config) ListenerPregreet(l Listener) time.Duration {
	if l.Pregreet != nil {
		return l.Pregreet.D()
	}
	if l.Role == RoleMX {
		return c.Pregreet.D()
	}
	return 0
}

func (v *validator) dnsbl(c Config) {
	if c.DNSBLThreshold < 1 {
		v.add("dnsbl_threshold", "must be at least 1, got %d (a lower threshold would block every client)", c.DNSBLThreshold)
	}
	if c.DNSBLTimeout <= 0 {
		v.add("dnsbl_timeout", "must be positive, got %s", c.DNSBLTimeout)
	}
	// A zone may come more than once, with different answers (the
	// sub-lists of a combined list), but not twice with the same ones.
	seen := map[string]bool{}
	for i, d := range c.DNSBL {
		key := fmt.Sprintf("dnsbl[%d]", i)
		zone := strings.ToLower(strings.TrimSuffix(d.Zone, "."))
		answers, err := d.AnswerPrefixes()
		if err != nil {
			v.add(key+".answers", "%v", err)
		}
		entry := fmt.Sprint(zone, answers)
		switch {
		case !validDomain(zone):
			v.add(key+".zone", "%q is not a domain name", d.Zone)
		case err == nil && seen[entry]:
			v.add(key+".zone", "zone %q listed twice with the same answers", d.Zone)
		}
		if err == nil {
			seen[entry] = true
		}
	}
	if badPregreet(c.Pregreet, c.Limits.CommandTimeout) {
		v.add("pregreet", "%s: want 0 (off) or less than limits.command_timeout", c.Pregreet)
	}
	for i, l := range c.Listeners {
		if l.Pregreet == nil {
			continue
		}
		key := fmt.Sprintf("listener[%d].pregreet", i)
		switch {
		case *l.Pregreet != 0 && l.Role != RoleMX:
			v.add(key, "the greeting delay is for mx listeners only (clients of %s wait for no early talkers test)", l.Role)
		case badPregreet(*l.Pregreet, c.Limits.CommandTimeout):
			v.add(key, "%s: want 0 (off) or less than limits.command_timeout", *l.Pregreet)
		}
	}
}

// badPregreet: a greeting delay is 0 (off), or positive and shorter than
// the command timeout (the client's own wait for the greeting, RFC 5321
// §4.5.3.2.1, is 5 minutes).
func badPregreet(d, command Duration) bool {
	return d < 0 || (d > 0 && command > 0 && d >= command)
}
