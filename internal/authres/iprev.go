package authres

import (
	"context"
	"errors"
	"net/netip"

	"smtpkit/internal/dns"
)

// maxPTRNames bounds the reverse names forward-confirmed for iprev, as
// RFC 7208 §4.6.4 bounds them for SPF's ptr.
const maxPTRNames = 10

// iprevOutcome is the result of the iprev check.
type iprevOutcome struct {
	result string // pass fail temperror permerror
	name   string // the confirmed name on pass
	reason string
}

// checkIPRev is forward-confirmed reverse DNS (RFC 8601 §3; RFC 8601
// §2.7.3 for the result names): the PTR names of ip, each looked up
// forward, pass when one of them maps back to ip. A missing PTR record or
// no name that maps back is fail; a DNS failure that leaves it open is
// temperror.
func (v *Verifier) checkIPRev(ctx context.Context, ip netip.Addr) iprevOutcome {
	a, err := v.ptr.LookupAddr(ctx, ip)
	switch {
	case errors.Is(err, dns.ErrInvalidName):
		return iprevOutcome{result: "permerror", reason: err.Error()}
	case err != nil:
		return iprevOutcome{result: "temperror", reason: "PTR lookup failed"}
	case len(a.Names) == 0:
		return iprevOutcome{result: "fail", reason: "no PTR record"}
	}
	names := a.Names
	if len(names) > maxPTRNames {
		names = names[:maxPTRNames]
	}
	temp := false
	for _, name := range names {
		fa, err := v.res.LookupIP(ctx, name)
		if err != nil {
			temp = temp || !errors.Is(err, dns.ErrInvalidName)
			continue
		}
		for _, fip := range fa.IPs {
			if fip.Unmap() == ip {
				return iprevOutcome{result: "pass", name: name}
			}
		}
	}
	if temp {
		return iprevOutcome{result: "temperror", reason: "forward lookup failed"}
	}
	return iprevOutcome{result: "fail", reason: "no PTR name maps back to the address"}
}
