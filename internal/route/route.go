// Package route chooses the next hops for a recipient domain: a configured
// static route (a smarthost), an address literal, or the domain's MX records
// (RFC 5321 §5.1) with the implicit MX and null MX (RFC 7505) rules. Each hop
// comes with its addresses already resolved, so the courier only dials.
// docs/routing.md describes the rules in prose.
//
// Every error Hops returns is an *smtp.Error whose reply says whether the
// failure is permanent (bounce now) or temporary (retry later).
package route

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"

	"smtpkit/internal/dns"
	"smtpkit/internal/smtp"
	"smtpkit/internal/tlspolicy"
)

// Limits on what the DNS of a remote domain can make us try
// (house rule 4: everything a peer controls is bounded).
const (
	// MaxMXHosts is how many MX hosts, lowest preference first, are
	// resolved and returned.
	MaxMXHosts = 10
	// MaxAddrs is how many addresses of one host are returned.
	MaxAddrs = 8
)

// ErrNullMX is the permanent error for a domain that publishes a null MX
// (RFC 7505 §3): 556 5.1.10. Hops wraps it in an *smtp.Error naming the
// domain, so test with errors.Is.
var ErrNullMX = smtp.E(smtp.CodeNoMail, smtp.EnhNullMX, "domain does not accept mail")

// Hop is one next hop: a host to connect to and its addresses in the order
// to try them.
type Hop struct {
	Host  string       // MX host, static route host or address literal (no brackets), lower case
	Port  int          // TCP port
	Pref  uint16       // MX preference; 0 for implicit MX, static routes and literals
	Addrs []netip.Addr // resolved addresses, IPv6 and IPv4 interleaved (RFC 8305 §4)
	// Authentic reports that the answers this hop was built from (the MX
	// answer, when there was one, and the host's address answer) were all
	// DNSSEC-validated, as DANE requires (RFC 7672 §2.2).
	Authentic bool
	// Route is the static route the hop comes from; nil for DNS and
	// address literal hops.
	Route *Static
	// DANE is the hop's secure TLSA answer when Options.DANE is on and
	// the hop is Authentic (enforced.go); nil otherwise.
	DANE *tlspolicy.DANE
	// STS is the recipient domain's MTA-STS state when Options.STS is set
	// and the domain has a policy or a problem with one; nil otherwise.
	STS *STSState
}

// Options configures a Router.
type Options struct {
	// DefaultPort is used for MX hosts, literals and static routes without
	// a port; zero means 25, the SMTP port.
	DefaultPort int
	// AllowLoopback accepts MX hosts and address literals that resolve to
	// loopback or unspecified addresses. Tests set it; in production such
	// addresses are refused (they would deliver to ourselves or nowhere)
	// unless a static route names them.
	AllowLoopback bool
	// DANE looks up TLSA records for MX hops whose DNS answers were
	// DNSSEC-validated (outbound.dane, RFC 7672).
	DANE bool
	// STS finds recipient domains' MTA-STS policies (outbound.mta_sts,
	// RFC 8461); nil leaves MTA-STS out.
	STS STSLookup
	// Hosts answers static route hosts before DNS (HostsFile: /etc/hosts,
	// hosts.go); nil asks DNS only. MX hosts are always looked up in DNS.
	Hosts HostsLookup
	// Rand orders MX hosts of equal preference. Nil means the
	// math/rand/v2 top-level functions; tests pass a seeded source.
	Rand *rand.Rand
}

// Router chooses next hops. It is safe for concurrent use.
type Router struct {
	res           dns.Resolver
	routes        map[string]Static // by lower-case domain, "*" included
	port          int
	allowLoopback bool
	dane          bool
	sts           STSLookup
	hosts         HostsLookup

	mu   sync.Mutex // guards rand
	rand *rand.Rand
}

// New returns a Router that resolves with res and applies routes. When two
// routes name the same domain (case-insensitively) the first wins; config
// validation reports that as an error before this point.
func New(res dns.Resolver, routes []Static, opts Options) *Router {
	r := &Router{
		res:           res,
		routes:        map[string]Static{},
		port:          opts.DefaultPort,
		allowLoopback: opts.AllowLoopback,
		dane:          opts.DANE,
		sts:           opts.STS,
		hosts:         opts.Hosts,
		rand:          opts.Rand,
	}
	if r.port <= 0 {
		r.port = 25
	}
	for _, s := range routes {
		d := strings.ToLower(s.Domain)
		if _, dup := r.routes[d]; !dup {
			r.routes[d] = s
		}
	}
	return r
}

// Hops returns the ordered next hops for domain:
//  1. a static route for exactly this domain (case-insensitive);
//  2. the "*" static route;
//  3. an address literal such as "[192.0.2.1]" or "[IPv6:2001:db8::1]"
//     (RFC 5321 §4.1.3), to that address;
//  4. the domain's MX records (RFC 5321 §5.1), see mxHops, with what
//     DANE and MTA-STS say about them (secure, enforced.go).
func (r *Router) Hops(ctx context.Context, domain string) ([]Hop, error) {
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	if d == "" {
		return nil, smtp.E(smtp.CodeMailboxUnavail, smtp.EnhBadSyntaxDest, "empty destination domain")
	}
	if s, ok := r.routes[d]; ok {
		return r.staticHops(ctx, d, s)
	}
	if s, ok := r.routes["*"]; ok {
		return r.staticHops(ctx, d, s)
	}
	if strings.HasPrefix(d, "[") {
		return r.literalHops(d)
	}
	return r.mxHops(ctx, d)
}

// literalHops routes an address literal (RFC 5321 §4.1.3) to its address.
func (r *Router) literalHops(d string) ([]Hop, error) {
	ip, err := ParseLiteral(d)
	if err != nil {
		return nil, smtp.Wrap(smtp.R(smtp.CodeMailboxUnavail, smtp.EnhBadSyntaxDest,
			fmt.Sprintf("bad address literal %s", d)), err)
	}
	if !r.allowLoopback && refused(ip) {
		return nil, loopbackError(d)
	}
	return []Hop{{Host: ip.String(), Port: r.port, Addrs: []netip.Addr{ip}}}, nil
}

// ParseLiteral parses an address literal, "[IPv4]" or "[IPv6:addr]"
// (RFC 5321 §4.1.3; the "IPv6:" tag is case-insensitive). General address
// literals with other tags, and addresses with zones, are refused.
func ParseLiteral(s string) (netip.Addr, error) {
	if len(s) < 3 || s[0] != '[' || s[len(s)-1] != ']' {
		return netip.Addr{}, fmt.Errorf("route: %q is not an address literal", s)
	}
	inner := s[1 : len(s)-1]
	want6 := len(inner) >= 5 && strings.EqualFold(inner[:5], "IPv6:")
	if want6 {
		inner = inner[5:]
	}
	ip, err := netip.ParseAddr(inner)
	switch {
	case err != nil:
		return netip.Addr{}, fmt.Errorf("route: address literal %q: %w", s, err)
	case ip.Zone() != "":
		return netip.Addr{}, fmt.Errorf("route: address literal %q has a zone", s)
	case want6 != ip.Is6():
		return netip.Addr{}, fmt.Errorf("route: address literal %q: IPv6 addresses need the IPv6: tag, IPv4 ones must not have it", s)
	}
	return ip, nil
}

// refused reports the addresses production delivery never connects to for
// a DNS or literal hop: loopback and unspecified (also IPv4-mapped).
func refused(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsLoopback() || ip.IsUnspecified()
}

func loopbackError(d string) *smtp.Error {
	return smtp.E(smtp.CodeMailboxUnavail, smtp.EnhNoRoute,
		fmt.Sprintf("refusing to route %s to loopback or unspecified addresses", d))
}

// orderAddrs removes duplicates, interleaves IPv6 and IPv4 starting with
// IPv6 (RFC 8305 §4) and keeps at most MaxAddrs.
func orderAddrs(ips []netip.Addr) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var v6, v4 []netip.Addr
	for _, ip := range ips {
		if !ip.IsValid() || seen[ip] {
			continue
		}
		seen[ip] = true
		if ip.Is4() || ip.Is4In6() {
			v4 = append(v4, ip)
		} else {
			v6 = append(v6, ip)
		}
	}
	out := make([]netip.Addr, 0, len(v6)+len(v4))
	for i := 0; i < len(v6) || i < len(v4); i++ {
		if i < len(v6) {
			out = append(out, v6[i])
		}
		if i < len(v4) {
			out = append(out, v4[i])
		}
	}
	if len(out) > MaxAddrs {
		out = out[:MaxAddrs]
	}
	return out
}
