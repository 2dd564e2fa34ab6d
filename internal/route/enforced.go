package route

import (
	"context"
	"fmt"
	"strconv"

	"smtpkit/internal/mtasts"
	"smtpkit/internal/tlspolicy"
)

// STSLookup finds the MTA-STS policy in force for a domain (RFC 8461);
// *mtasts.Cache implements it. A nil policy means none; an error is what
// TLS-RPT should hear about (a failed fetch, an invalid policy), also when
// a cached policy still applies.
type STSLookup interface {
	Lookup(ctx context.Context, domain string) (*mtasts.Policy, error)
}

// STSState is the recipient domain's MTA-STS lookup, shared by all of its
// MX hops.
type STSState struct {
	Policy *mtasts.Policy // nil: no policy (or mode none)
	Err    error          // the lookup's problem, for TLS-RPT; may come with a cached Policy
}

// secure adds what DANE and MTA-STS say to the MX hops of domain d:
//   - with DANE on, each hop whose MX and address answers were secure gets
//     its TLSA RRset at _port._tcp.host (RFC 7672 §2.2, §3); an insecure
//     TLSA answer (an unsigned zone) leaves DANE out, a failed lookup is
//     kept as the hop's DANE.Err (the hop is then deferred, §2.2);
//   - with an STSLookup, the domain's policy (mode none counts as none).
//
// Static routes and address literals get neither: neither mechanism speaks
// of them.
func (r *Router) secure(ctx context.Context, d string, hops []Hop) {
	if r.dane {
		for i := range hops {
			h := &hops[i]
			if !h.Authentic {
				continue
			}
			name := "_" + strconv.Itoa(h.Port) + "._tcp." + h.Host
			ans, err := r.res.LookupTLSA(ctx, name)
			switch {
			case err != nil:
				h.DANE = &tlspolicy.DANE{Err: fmt.Errorf("TLSA %s: %w", name, err), Names: []string{h.Host}}
			case ans.Authentic && len(ans.Records) > 0:
				h.DANE = &tlspolicy.DANE{Records: ans.Records, Names: []string{h.Host}}
			}
		}
	}
	if r.sts == nil {
		return
	}
	p, err := r.sts.Lookup(ctx, d)
	if p != nil && p.Mode == mtasts.None {
		p = nil
	}
	if p == nil && err == nil {
		return
	}
	st := &STSState{Policy: p, Err: err}
	for i := range hops {
		hops[i].STS = st
	}
}

// TLSInput is the tlspolicy.Input for a connection to this hop: the
// default policy and where it comes from, what the static route says, and
// the hop's DANE and MTA-STS state. Delivery adds the message's REQUIRETLS
// and TLS-Required, the probe its forced mode; both decide the plan from
// this, so that they cannot differ.
func (h Hop) TLSInput(policy tlspolicy.Policy, source string) tlspolicy.Input {
	in := tlspolicy.Input{Policy: policy, Source: source, Route: h.Route.TLSRoute(),
		Host: h.Host, Port: h.Port, DANE: h.DANE}
	if h.STS != nil && h.STS.Policy != nil {
		p := h.STS.Policy
		in.STS = &tlspolicy.STS{Domain: p.Domain, Enforce: p.Mode == mtasts.Enforce,
			MatchesMX: p.Matches(h.Host), Strings: p.Text}
	}
	return in
}
