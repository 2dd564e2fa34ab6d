// Package dns answers the DNS lookups outbound delivery needs: MX records
// (RFC 5321 §5.1) and host addresses (A and AAAA). Answers carry the DNSSEC
// "authentic data" flag (AD, RFC 4035 §3.2.3 and RFC 6840 §5.7) as the
// resolver reported it, so that later policy (DANE, for example) can tell a
// validated answer from an unvalidated one. The flag is only as trustworthy
// as the path to the resolver: use a validating resolver on loopback.
//
// Client is the one real implementation: a stub resolver that asks the
// configured recursive servers over UDP, retries over TCP when an answer is
// truncated (RFC 7766 §5) and follows CNAME chains a bounded number of times.
package dns

import (
	"context"
	"errors"
	"net/netip"
)

// Resolver answers the lookups delivery needs. It is defined here rather than
// by each consumer because route and delivery share it and tests substitute
// a loopback server (package dnstest), not a fake.
type Resolver interface {
	// LookupMX returns the MX records of domain, following a CNAME at the
	// domain (RFC 5321 §5.1). A domain that exists but has no MX records
	// gives an answer with no records and NXDomain false.
	LookupMX(ctx context.Context, domain string) (MXAnswer, error)
	// LookupIP returns the IPv6 (AAAA) then IPv4 (A) addresses of host,
	// following CNAMEs.
	LookupIP(ctx context.Context, host string) (IPAnswer, error)
}

// MX is one mail exchanger record (RFC 1035 §3.3.9). Host is lower case,
// without the trailing dot, except the root "." of a null MX (RFC 7505).
type MX struct {
	Host string
	Pref uint16
}

// MXAnswer is the result of an MX lookup.
type MXAnswer struct {
	Records []MX
	// Authentic reports that every response on the way (including the
	// CNAMEs followed) had the AD bit set.
	Authentic bool
	// NXDomain reports that the name (or the end of its CNAME chain) does
	// not exist (RCODE 3, RFC 1035 §4.1.1; RFC 6604 for CNAMEs).
	NXDomain bool
}

// IPAnswer is the result of an address lookup: AAAA addresses first, then A.
type IPAnswer struct {
	IPs       []netip.Addr
	Authentic bool
	NXDomain  bool
}

// ErrTemporary is wrapped by every error that may go away when the lookup is
// retried later: SERVFAIL, REFUSED and other failure codes, timeouts,
// network errors, CNAME chains that are too long or loop.
var ErrTemporary = errors.New("dns: temporary failure")

// ErrInvalidName is wrapped by the error for a name that is not a valid
// domain name (RFC 1035 §2.3.4 length limits); asking again will not help.
var ErrInvalidName = errors.New("dns: invalid domain name")
