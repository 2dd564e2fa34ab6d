package dnsbl

import "net/netip"

var (
	// loopback is where list answers live (RFC 5782 §2.1: "the A record
	// ... is 127.0.0.2" by convention, any 127/8 value by practice).
	loopback = netip.MustParsePrefix("127.0.0.0/8")
	// errorRange holds the answers lists use to report errors rather than
	// listings (Spamhaus: 127.255.255.252 typo in the zone name, .254
	// query through a public resolver, .255 excessive queries).
	errorRange = netip.MustParsePrefix("127.255.255.0/24")
	// notListed is the RFC 5782 §5 test entry that must never be listed.
	notListed = netip.MustParseAddr("127.0.0.1")
)

// listing picks, among the addresses of an answer, the first that counts
// as a listing for z: IPv4 inside 127.0.0.0/8, not an error answer, not
// 127.0.0.1, and one of z.Answers when the zone has a filter.
func (z Zone) listing(ips []netip.Addr) (netip.Addr, bool) {
	for _, ip := range ips {
		ip = ip.Unmap()
		if !ip.Is4() || !loopback.Contains(ip) || errorRange.Contains(ip) || ip == notListed {
			continue
		}
		if len(z.Answers) == 0 {
			return ip, true
		}
		for _, p := range z.Answers {
			if p.Contains(ip) {
				return ip, true
			}
		}
	}
	return netip.Addr{}, false
}
