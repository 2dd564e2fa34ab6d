package dns

import (
	"context"
	"net/netip"

	mdns "github.com/miekg/dns"
)

// AddrAnswer is the result of a reverse (PTR) lookup: the names the address
// maps to, lower case, without the trailing dot.
type AddrAnswer struct {
	Names     []string
	Authentic bool
	NXDomain  bool
}

// PTRResolver answers reverse lookups (RFC 1035 §3.5), for iprev (RFC 8601
// §3) and SPF's ptr mechanism (RFC 7208 §5.5). It is separate from Resolver
// so that Resolver's other implementations stay valid; Client and Cache
// implement both.
type PTRResolver interface {
	LookupAddr(ctx context.Context, ip netip.Addr) (AddrAnswer, error)
}

var _ PTRResolver = (*Client)(nil)

// LookupAddr implements PTRResolver: the PTR records of ip's name under
// in-addr.arpa or ip6.arpa, following CNAMEs (RFC 2317 delegation).
func (c *Client) LookupAddr(ctx context.Context, ip netip.Addr) (AddrAnswer, error) {
	name, err := mdns.ReverseAddr(ip.Unmap().String())
	if err != nil {
		return AddrAnswer{}, err
	}
	r, err := c.resolve(ctx, name, mdns.TypePTR)
	if err != nil {
		return AddrAnswer{}, err
	}
	a := AddrAnswer{Authentic: r.authentic, NXDomain: r.nx}
	for _, rr := range r.rrs {
		if h := hostName(rr.(*mdns.PTR).Ptr); h != "." {
			a.Names = append(a.Names, h)
		}
	}
	return a, nil
}
