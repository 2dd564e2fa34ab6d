package delivery

import (
	"crypto/tls"
	"net"
	"net/netip"

	"smtpkit/internal/client"
	"smtpkit/internal/route"
	"smtpkit/internal/tlspolicy"
	"smtpkit/internal/tlsrpt"
)

// TLS-RPT counting (RFC 8460 §4): every session that reached the TLS
// step is counted once, under the policy of its plan, as a success or with
// the result type of its failure. Sessions a plan refused before
// connecting (a failed TLSA lookup, an MX outside an enforced MTA-STS
// policy) are counted as failures too: they are what the domain's owner
// needs to hear about. A reused connection is not counted again.

// countRefused counts a hop the plan ruled out, when the plan names a
// result type for it (a REQUIRETLS refusal is the sender's, not the
// domain's, and is not reported).
func (r *Remote) countRefused(domain string, hop route.Hop, plan tlspolicy.Plan) {
	if plan.Report.Failure == "" {
		return
	}
	r.record(domain, hop, plan, netip.Addr{}, netip.Addr{}, plan.Report.Failure, plan.Report.Detail)
}

// count records the outcome of one TLS negotiation on addr (c may be nil
// when the connection is gone).
func (r *Remote) count(domain string, hop route.Hop, addr string, c *client.Conn, plan tlspolicy.Plan, result tlsrpt.ResultType, detail string) {
	var local netip.Addr
	if c != nil {
		local = addrOf(c.LocalAddr())
	}
	r.record(domain, hop, plan, remoteOf(addr), local, result, detail)
}

// countTLS records a session whose handshake succeeded: a success, unless
// an MTA-STS testing policy would have refused it (Plan.Audit) or its MX
// is not in that policy.
func (r *Remote) countTLS(domain string, hop route.Hop, addr string, c *client.Conn, plan tlspolicy.Plan, st tls.ConnectionState) {
	var result tlsrpt.ResultType
	var detail string
	if err := plan.Audit(st, r.opts.Roots, r.opts.Now()); err != nil {
		result, detail = tlspolicy.ResultOf(err), err.Error()
		r.log.Info("MTA-STS testing policy would refuse this host", "host", hop.Host, "addr", addr, "err", err)
	} else if plan.Report.Failure != "" {
		result, detail = plan.Report.Failure, plan.Report.Detail
	}
	r.count(domain, hop, addr, c, plan, result, detail)
}

// record hands one session to the recorder. A domain whose MTA-STS policy
// could not be fetched (and no cached one applies) is counted under "sts"
// with the fetch's result type, whatever the session did.
func (r *Remote) record(domain string, hop route.Hop, plan tlspolicy.Plan, remote, local netip.Addr, result tlsrpt.ResultType, detail string) {
	if r.opts.Reports == nil {
		return
	}
	s := tlsrpt.Session{Domain: domain, Policy: plan.Report.Type, Strings: plan.Report.Strings,
		MXHost: hop.Host, ReceivingIP: remote, SendingIP: local, Result: result, Detail: detail}
	if s.Policy == "" {
		s.Policy = tlsrpt.PolicyNone
	}
	if st := hop.STS; st != nil && st.Policy == nil && st.Err != nil && plan.Mechanism != tlspolicy.MechDANE {
		s.Policy, s.Strings, s.Result, s.Detail = tlsrpt.PolicySTS, nil, tlspolicy.ResultOf(st.Err), st.Err.Error()
	}
	r.opts.Reports.Record(s)
}

func remoteOf(addr string) netip.Addr {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}
