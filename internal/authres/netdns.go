package authres

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"smtpkit/internal/dns"
)

// netResolver presents a dns.Resolver in the shape of *net.Resolver, which
// is what blitiri.com.ar/go/spf (spf.DNSResolver) and go-msgauth's lookup
// hooks expect: a missing name is a *net.DNSError with IsNotFound, a
// temporary failure one with IsTemporary (both libraries map them to
// none/permerror and temperror as RFC 7208 §4.3-§5 and RFC 6376 §6.1.2
// say), an empty answer is no records and no error.
type netResolver struct {
	res dns.Resolver
	ptr dns.PTRResolver // nil: every reverse name is missing
}

// dnsError converts an internal/dns error. A malformed name counts as a
// missing one (RFC 7208 §4.3: a malformed domain gives "none"); anything
// else is temporary (unknown errors are temporary).
func dnsError(name string, err error) error {
	if errors.Is(err, dns.ErrInvalidName) {
		return notFound(name)
	}
	return &net.DNSError{Err: err.Error(), Name: name, IsTemporary: true}
}

func notFound(name string) error {
	return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (n netResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	a, err := n.res.LookupTXT(ctx, name)
	switch {
	case err != nil:
		return nil, dnsError(name, err)
	case a.NXDomain:
		return nil, notFound(name)
	}
	return a.Records, nil
}

func (n netResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	a, err := n.res.LookupMX(ctx, name)
	switch {
	case err != nil:
		return nil, dnsError(name, err)
	case a.NXDomain:
		return nil, notFound(name)
	}
	mxs := make([]*net.MX, 0, len(a.Records))
	for _, r := range a.Records {
		mxs = append(mxs, &net.MX{Host: r.Host, Pref: r.Pref})
	}
	return mxs, nil
}

func (n netResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	a, err := n.res.LookupIP(ctx, host)
	switch {
	case err != nil:
		return nil, dnsError(host, err)
	case a.NXDomain:
		return nil, notFound(host)
	}
	ips := make([]net.IPAddr, 0, len(a.IPs))
	for _, ip := range a.IPs {
		ips = append(ips, net.IPAddr{IP: net.IP(ip.AsSlice())})
	}
	return ips, nil
}

func (n netResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ip, err := netip.ParseAddr(addr)
	if err != nil || n.ptr == nil {
		return nil, notFound(addr)
	}
	a, err := n.ptr.LookupAddr(ctx, ip)
	switch {
	case err != nil:
		return nil, dnsError(addr, err)
	case a.NXDomain:
		return nil, notFound(addr)
	}
	names := make([]string, 0, len(a.Names))
	for _, name := range a.Names {
		names = append(names, name+".")
	}
	return names, nil
}

// txtFunc is the LookupTXT hook go-msgauth's dkim and dmarc packages take
// (they have no context parameter).
func (n netResolver) txtFunc(ctx context.Context) func(string) ([]string, error) {
	return func(name string) ([]string, error) { return n.LookupTXT(ctx, name) }
}
