package route

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"smtpkit/internal/dns"
	"smtpkit/internal/smtp"
)

// mxHops implements RFC 5321 §5.1 and RFC 7505 for domain d:
//   - NXDOMAIN: the domain does not exist, 550 5.1.2;
//   - only "." targets: a null MX, 556 5.1.10 (RFC 7505 §3, §4.1);
//   - no MX records: the implicit MX, d itself with preference 0;
//   - otherwise the MX hosts, lowest preference first, hosts of equal
//     preference in random order ("MUST randomize", §5.1); "." targets
//     mixed with real ones are dropped;
//   - each host is resolved (AAAA and A) and dropped when it has no usable
//     address; if none is left the error is temporary (4.4.3 when a lookup
//     failed, 4.4.4 otherwise) except when every address found was refused
//     as loopback (550 5.4.4).
func (r *Router) mxHops(ctx context.Context, d string) ([]Hop, error) {
	ans, err := r.res.LookupMX(ctx, d)
	if err != nil {
		return nil, dnsError(d, "MX", err)
	}
	if ans.NXDomain {
		return nil, smtp.E(smtp.CodeMailboxUnavail, smtp.EnhBadSystem,
			fmt.Sprintf("domain %s does not exist (NXDOMAIN)", d))
	}
	if isNullMX(ans.Records) {
		return nil, smtp.Wrap(smtp.R(smtp.CodeNoMail, smtp.EnhNullMX,
			fmt.Sprintf("domain %s does not accept mail (null MX, RFC 7505)", d)), ErrNullMX)
	}
	var mxs []dns.MX
	for _, mx := range ans.Records {
		if mx.Host != "." {
			mxs = append(mxs, mx)
		}
	}
	if len(mxs) == 0 {
		// RFC 5321 §5.1: no MX records, the domain itself is the implicit MX.
		mxs = []dns.MX{{Host: d, Pref: 0}}
	}
	r.order(mxs)
	if len(mxs) > MaxMXHosts {
		mxs = mxs[:MaxMXHosts]
	}
	hops, err := r.resolveHosts(ctx, d, mxs, ans.Authentic)
	if err != nil {
		return nil, err
	}
	r.secure(ctx, d, hops)
	return hops, nil
}

// isNullMX reports a null MX (RFC 7505 §3): MX records whose targets are all
// the root. RFC 7505 asks for a single record with preference 0; any "."-only
// set is treated the same, since "." can never be connected to and the
// domain's intent is plain.
func isNullMX(records []dns.MX) bool {
	for _, mx := range records {
		if mx.Host != "." {
			return false
		}
	}
	return len(records) > 0
}

// order sorts mxs by preference, with hosts of equal preference shuffled
// (RFC 5321 §5.1): shuffle everything, then sort stably.
func (r *Router) order(mxs []dns.MX) {
	swap := func(i, j int) { mxs[i], mxs[j] = mxs[j], mxs[i] }
	if r.rand != nil {
		r.mu.Lock()
		r.rand.Shuffle(len(mxs), swap)
		r.mu.Unlock()
	} else {
		rand.Shuffle(len(mxs), swap)
	}
	slices.SortStableFunc(mxs, func(a, b dns.MX) int { return cmp.Compare(a.Pref, b.Pref) })
}

// resolveHosts turns the ordered MX hosts into hops with addresses.
func (r *Router) resolveHosts(ctx context.Context, d string, mxs []dns.MX, mxAuthentic bool) ([]Hop, error) {
	var (
		hops     []Hop
		lookErr  error // last failed address lookup
		loopback bool  // some host had only refused addresses
	)
	for _, mx := range mxs {
		if ctx.Err() != nil {
			return nil, dnsError(d, "address", fmt.Errorf("%w: %w", dns.ErrTemporary, ctx.Err()))
		}
		ans, err := r.res.LookupIP(ctx, mx.Host)
		if errors.Is(err, dns.ErrInvalidName) {
			continue // a malformed target never resolves
		}
		if err != nil {
			lookErr = fmt.Errorf("%s: %w", mx.Host, err)
			continue
		}
		addrs := ans.IPs
		if !r.allowLoopback {
			addrs = slices.DeleteFunc(slices.Clone(addrs), refused)
			loopback = loopback || (len(addrs) == 0 && len(ans.IPs) > 0)
		}
		if len(addrs) == 0 {
			continue // RFC 5321 §5.1: try the other hosts
		}
		hops = append(hops, Hop{
			Host:      mx.Host,
			Port:      r.port,
			Pref:      mx.Pref,
			Addrs:     orderAddrs(addrs),
			Authentic: mxAuthentic && ans.Authentic,
		})
	}
	switch {
	case len(hops) > 0:
		return hops, nil
	case lookErr != nil:
		return nil, dnsError(d, "address", lookErr)
	case loopback:
		return nil, loopbackError(d)
	}
	return nil, smtp.E(smtp.CodeLocalError, smtp.EnhNoRoute.Temp(),
		fmt.Sprintf("no route to host: no mail exchanger of %s has an address", d))
}

// dnsError maps a resolver error to a reply: an invalid name is permanent
// (5.1.2), anything else is a temporary directory failure (4.4.3).
func dnsError(d, what string, err error) *smtp.Error {
	if errors.Is(err, dns.ErrInvalidName) {
		return smtp.Wrap(smtp.R(smtp.CodeMailboxUnavail, smtp.EnhBadSystem,
			fmt.Sprintf("%s is not a valid domain name", d)), err)
	}
	return smtp.Wrap(smtp.R(smtp.CodeLocalError, smtp.EnhDirectory.Temp(),
		fmt.Sprintf("DNS %s lookup for %s failed, will retry", what, d)), err)
}
