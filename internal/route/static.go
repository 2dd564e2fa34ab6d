package route

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"smtpkit/internal/smtp"
	"smtpkit/internal/tlspolicy"
)

// Static is a configured route: mail for Domain goes to Host instead of the
// domain's MX hosts (a smarthost or relay).
type Static struct {
	Domain string // lower case, no trailing dot; "*" = every remote domain
	Host   string // host name (lower case) or IP address, without brackets or port
	Port   int    // 0 = the Router's default port
	// TLS is the route's own outbound TLS policy when TLSSet, parsed once
	// from the configuration; otherwise the outbound default (outbound.tls)
	// applies. tlspolicy turns it into a plan for each connection.
	TLS              tlspolicy.Policy
	TLSSet           bool
	AuthUser         string // SMTP AUTH user; "" = no AUTH
	AuthPasswordFile string // file holding the password
}

// ParseStatic validates and normalises a configured route. hostport is
// "host", "host:port", "[IPv6]:port", "[address]" or a bare IP address;
// the port, when given, must be 1-65535. tls is a policy name as
// tlspolicy.ParsePolicy reads it (case-insensitive), or "" for the outbound
// default. Whether the port implies implicit
// TLS (465, RFC 8314) is for tlspolicy to decide, not this package.
func ParseStatic(domain, hostport, tls, authUser, authPasswordFile string) (Static, error) {
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	if d != "*" && !validDomain(d) {
		return Static{}, fmt.Errorf("route: domain %q: want a domain name or \"*\"", domain)
	}
	host, port, err := splitHostPort(hostport)
	if err != nil {
		return Static{}, fmt.Errorf("route %s: %w", d, err)
	}
	var policy tlspolicy.Policy
	if tls != "" {
		if policy, err = tlspolicy.ParsePolicy(tls); err != nil {
			return Static{}, fmt.Errorf("route %s: tls: %w", d, err)
		}
	}
	if (authUser == "") != (authPasswordFile == "") {
		return Static{}, fmt.Errorf("route %s: auth user and password file go together", d)
	}
	if strings.ContainsAny(authUser, "\x00\r\n") {
		return Static{}, fmt.Errorf("route %s: auth user contains a control character", d)
	}
	return Static{Domain: d, Host: host, Port: port, TLS: policy, TLSSet: tls != "", AuthUser: authUser, AuthPasswordFile: authPasswordFile}, nil
}

// splitHostPort parses a route's host with an optional port.
func splitHostPort(s string) (host string, port int, err error) {
	if s == "" {
		return "", 0, errors.New("empty host")
	}
	if ip, err := netip.ParseAddr(s); err == nil { // bare IPv4 or IPv6, no port
		return checkIP(s, ip)
	}
	if s[0] == '[' && s[len(s)-1] == ']' { // "[address]", no port
		ip, err := netip.ParseAddr(s[1 : len(s)-1])
		if err != nil {
			return "", 0, fmt.Errorf("host %q: %w", s, err)
		}
		return checkIP(s, ip)
	}
	h := s // a name without a port
	if strings.ContainsAny(s, ":[]") {
		var p string
		if h, p, err = net.SplitHostPort(s); err != nil {
			return "", 0, fmt.Errorf("host %q: %w", s, err)
		}
		if port, err = parsePort(p); err != nil {
			return "", 0, fmt.Errorf("host %q: %w", s, err)
		}
	}
	bracketed := strings.HasPrefix(s, "[")
	if ip, err := netip.ParseAddr(h); err == nil {
		if ip.Is4() && bracketed || ip.Is6() && !bracketed {
			return "", 0, fmt.Errorf("host %q: brackets go around IPv6 addresses only", s)
		}
		h, _, err = checkIP(s, ip)
		return h, port, err
	}
	if bracketed {
		return "", 0, fmt.Errorf("host %q: brackets go around IPv6 addresses only", s)
	}
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if !validDomain(h) {
		return "", 0, fmt.Errorf("host %q is not a host name, IP address or host:port", s)
	}
	return h, port, nil
}

func checkIP(s string, ip netip.Addr) (string, int, error) {
	if ip.Zone() != "" {
		return "", 0, fmt.Errorf("host %q: addresses with a zone are not supported", s)
	}
	return ip.String(), 0, nil
}

// parsePort accepts decimal digits only, 1 to 65535.
func parsePort(p string) (int, error) {
	if p == "" || len(p) > 5 || strings.Trim(p, "0123456789") != "" {
		return 0, fmt.Errorf("port %q: want 1-65535", p)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q: want 1-65535", p)
	}
	return n, nil
}

// validDomain checks a lower-case domain name in ASCII form (RFC 1035
// §2.3.1 with RFC 1123 §2.1 digits first, plus "_" seen in real names):
// at most 253 characters, labels of 1-63 letters, digits, "-" or "_" that
// neither start nor end with "-".
func validDomain(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// staticHops resolves a static route's host: an IP address as it is, a
// name in the hosts file (Options.Hosts) first, else in DNS. Failures are
// temporary even when the host does not exist: a broken route is the
// operator's to fix, and the mail should wait for it, not bounce.
// Loopback addresses are allowed: the operator chose them.
func (r *Router) staticHops(ctx context.Context, d string, s Static) ([]Hop, error) {
	hop := Hop{Host: s.Host, Port: s.Port, Route: &s}
	if hop.Port == 0 {
		hop.Port = r.port
	}
	if ip, err := netip.ParseAddr(s.Host); err == nil {
		hop.Addrs = []netip.Addr{ip}
		return []Hop{hop}, nil
	}
	if r.hosts != nil {
		if addrs, ok := r.hosts.LookupHost(s.Host); ok {
			hop.Addrs = orderAddrs(addrs)
			return []Hop{hop}, nil
		}
	}
	ans, err := r.res.LookupIP(ctx, s.Host)
	if err != nil {
		return nil, smtp.Wrap(smtp.R(smtp.CodeLocalError, smtp.EnhDirectory.Temp(),
			fmt.Sprintf("DNS lookup of route host %s for %s failed, will retry", s.Host, d)), err)
	}
	if len(ans.IPs) == 0 {
		return nil, smtp.E(smtp.CodeLocalError, smtp.EnhNoRoute.Temp(),
			fmt.Sprintf("no route to host: route host %s for %s has no address", s.Host, d))
	}
	hop.Addrs = orderAddrs(ans.IPs)
	hop.Authentic = ans.Authentic
	return []Hop{hop}, nil
}
