package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// trusted.go: trusted_networks, the clients trusted as Postfix trusts its
// mynetworks. A trusted client may relay without AUTH on mx listeners
// (its mail is queued, DKIM-signed and logged like authenticated
// submission) and is exempt from the per-IP connection count and rate.
// On submission listeners AUTH is still required (RFC 6409 §4.3).

// defaultTrustedNetworks is the top-level trusted_networks of Default:
// this host only.
func defaultTrustedNetworks() []string { return []string{"127.0.0.0/8", "::1/128"} }

// ParseNetwork parses one trusted_networks entry: a CIDR prefix
// ("192.0.2.0/24", "2001:db8::/32") or a bare address, which is one host
// (/32 or /128). A prefix with host bits set ("192.0.2.1/24") is refused
// rather than guessed at, as are zones and IPv4-mapped IPv6 prefixes
// (client addresses are compared unmapped).
func ParseNetwork(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix or an IP address", s)
		}
		if m := p.Masked(); m != p {
			return netip.Prefix{}, fmt.Errorf("%q has host bits set: did you mean %q?", s, m.String())
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix or an IP address", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q is an IPv4-mapped IPv6 network: write the IPv4 network", s)
	}
	return p, nil
}

// TrustedOn is the trusted networks of listener l: its own
// trusted_networks when set (an empty list trusts nobody), else the
// top-level list. Entries that do not parse are left out; Validate
// reports them.
func (c Config) TrustedOn(l Listener) []netip.Prefix {
	list := c.TrustedNetworks
	if l.TrustedNetworks != nil {
		list = *l.TrustedNetworks
	}
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := ParseNetwork(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func (v *validator) trusted(c Config) {
	v.trustedList("trusted_networks", c.TrustedNetworks)
	for i, l := range c.Listeners {
		if l.TrustedNetworks != nil {
			v.trustedList(fmt.Sprintf("listener[%d].trusted_networks", i), *l.TrustedNetworks)
		}
	}
}

// trustedList checks a trusted_networks list: valid entries, and none
// that trusts every address, which would make an open relay (RFC 5321
// §7.1) — a mistake, never a setting.
func (v *validator) trustedList(key string, list []string) {
	v.networks(key, list)
	for _, s := range list {
		if p, err := ParseNetwork(s); err == nil && p.Bits() == 0 {
			v.add(key, "%q trusts every address: an open relay; list your own networks", s)
		}
	}
}

func (v *validator) networks(key string, list []string) {
	for _, s := range list {
		if _, err := ParseNetwork(s); err != nil {
			v.add(key, "%v", err)
		}
	}
}
