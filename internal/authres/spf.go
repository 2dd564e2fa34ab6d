package authres

import (
	"context"
	"net"
	"net/netip"
	"strings"

	"blitiri.com.ar/go/spf"
)

// spfOutcome is the result of one SPF check_host() evaluation.
type spfOutcome struct {
	result string // RFC 7208 §2.6 result name
	reason string // why, for the header comment (not for machines)
}

// checkSPF runs check_host() (RFC 7208 §4) for ip and sender (an address,
// local@domain), with helo for the %{h} macro. blitiri's evaluation keeps
// the §4.6.4 limits: 10 mechanisms and modifiers that look up DNS, 2 void
// lookups, 10 MX and 10 PTR names.
func (v *Verifier) checkSPF(ctx context.Context, ip netip.Addr, helo, sender string) spfOutcome {
	r := netResolver{res: v.res, ptr: v.ptr}
	res, err := spf.CheckHostWithSender(net.IP(ip.AsSlice()), helo, sender,
		spf.WithContext(ctx), spf.WithResolver(r))
	o := spfOutcome{result: string(res)}
	// The library's error is also set on a match ("matched all"): only
	// the errors are worth a reason.
	if err != nil && (res == spf.TempError || res == spf.PermError) {
		o.reason = err.Error()
	}
	return o
}

// heloIdentity reports whether helo can be checked as an SPF identity
// (RFC 7208 §2.3): a fully qualified domain name, not an address literal.
func heloIdentity(helo string) bool {
	return helo != "" && !strings.HasPrefix(helo, "[") && strings.Contains(strings.Trim(helo, "."), ".")
}
