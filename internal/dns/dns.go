// Package dns answers the DNS lookups outbound delivery needs: MX records
// (RFC 5321 §5.1), host addresses (A and AAAA), TXT records (MTA-STS,
// TLS-RPT) and TLSA records (DANE, RFC 7672). Answers carry the DNSSEC
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
	// LookupTXT returns the TXT records of name, following CNAMEs.
	LookupTXT(ctx context.Context, name string) (TXTAnswer, error)
	// LookupTLSA returns the TLSA records of name, following CNAMEs
	// (RFC 7672 §2.2.3 allows a CNAME at the TLSA name).
	LookupTLSA(ctx context.Context, name string) (TLSAAnswer, error)
}

// AResolver is implemented by resolvers that can ask for A records alone
// (Client and Cache): DNS block lists answer in A records (RFC 5782
// §2.1), and the AAAA query of LookupIP would be a wasted one.
type AResolver interface {
	LookupA(ctx context.Context, host string) (IPAnswer, error)
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

// TXTAnswer is the result of a TXT lookup. Each element of Records is one
// TXT record with its character-strings concatenated without separators,
// as SPF (RFC 7208 §3.3), MTA-STS (RFC 8461 §3.1) and TLS-RPT (RFC 8460
// §3) read them.
type TXTAnswer struct {
	Records   []string
	Authentic bool
	NXDomain  bool
}

// TLSA is one TLSA record (RFC 6698 §2.1): certificate usage, selector,
// matching type and the certificate association data.
type TLSA struct {
	Usage        uint8
	Selector     uint8
	MatchingType uint8
	Data         []byte
}

// TLSAAnswer is the result of a TLSA lookup, e.g. of "_25._tcp.mx.example."
// (RFC 7672 §2.2). Only an Authentic answer may be used for DANE.
type TLSAAnswer struct {
	Records   []TLSA
	Authentic bool
	NXDomain  bool
}
