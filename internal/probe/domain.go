package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"smtpkit/internal/route"
	"smtpkit/internal/smtp"
	"smtpkit/internal/tlspolicy"
)

// Router finds the next hops of a mail domain: internal/route's Router,
// built from the same configuration as the queue's, so that the probe of a
// domain follows exactly the static routes and MX records delivery would.
type Router interface {
	Hops(ctx context.Context, domain string) ([]route.Hop, error)
}

// ParseDestination parses a command-line target: a name without a port is
// a mail domain, probed where its mail would go (Target.Domain); anything
// else (HOST:PORT, an IP address, [IPv6]) is a host, as ParseTarget reads it.
func ParseDestination(s string) (Target, error) {
	if s == "" || strings.ContainsAny(s, ":[") || net.ParseIP(s) != nil {
		return ParseTarget(s)
	}
	d := strings.ToLower(strings.TrimSuffix(s, "."))
	if net.ParseIP(d) != nil {
		// "192.0.2.1." is neither: a top-level label is never all-numeric
		// (RFC 3696 §2), and an address is given without the dot.
		return Target{}, fmt.Errorf("probe: %q: an IP address with a trailing dot is not a domain; give the address without it", s)
	}
	if err := checkHost(d); err != nil {
		return Target{}, fmt.Errorf("probe: domain %q: %w", s, err)
	}
	return Target{Domain: d}, nil
}

// HopPlan is the plan the queue's courier would follow to hop: the same
// tlspolicy.Input delivery builds (outbound default, the static route's
// own policy and AUTH, the hop's host and port), with the probe's forced
// mode and --servername.
func HopPlan(hop route.Hop, opts Options) tlspolicy.Plan {
	return tlspolicy.Decide(hopInput(hop, opts))
}

// requireTLSPlan is HopPlan for a message sent with REQUIRETLS (RFC 8689
// §4.1), as delivery decides it for such a message.
func requireTLSPlan(hop route.Hop, opts Options) tlspolicy.Plan {
	in := hopInput(hop, opts)
	in.RequireTLS = true
	return tlspolicy.Decide(in)
}

func hopInput(hop route.Hop, opts Options) tlspolicy.Input {
	in := hop.TLSInput(opts.Outbound, "outbound default") // delivery's input, DANE and MTA-STS included
	in.Host = verifyName(hop.Host, opts)
	in.Mode, in.ModeSource = opts.Mode, modeFlag[opts.Mode]
	return in
}

// job is one address to probe with its plan, and what the Result says
// about where it came from.
type job struct {
	at   Result // Host, Port, Address and, for a domain, Domain, Route, Pref, IP
	plan tlspolicy.Plan
	err  string // routing failed: no probe, this error
	hop  int    // for a domain: the index of its hop in Domain.Hops
	// guessTLS: a host target's port in auto mode, not 25 and not 465:
	// when no plaintext greeting comes within Options.GreetingWait, the
	// port is probed again with implicit TLS (probeJob).
	guessTLS bool
}

// domainJobs routes d and returns what is known of the domain before any
// probe (its hops with their plans, and, with a Resolver, its DNS
// records) and one job per hop and address, in the order delivery tries
// them (RFC 5321 §5.1), or one failed job when the domain has no route.
func domainJobs(ctx context.Context, d string, opts Options) (*Domain, []job) {
	dom := &Domain{Domain: d, Hops: []HopInfo{}}
	fail := func(why string) (*Domain, []job) {
		dom.Error = why
		return dom, []job{{at: Result{Domain: d, Host: d}, err: why}}
	}
	if opts.Router == nil {
		return fail("route: no router to follow the domain with")
	}
	hops, err := opts.Router.Hops(ctx, d)
	if err != nil {
		if opts.Resolver != nil {
			lookupDomain(ctx, dom, nil, opts.Resolver, opts)
		}
		return fail("route: " + routeError(err))
	}
	var jobs []job
	for i, hop := range hops {
		plan := HopPlan(hop, opts)
		info := HopInfo{Host: hop.Host, Port: hop.Port, Pref: int(hop.Pref), Addresses: []string{},
			Authentic: hop.Authentic, Plan: plan.String(), Mechanism: string(plan.Mechanism),
			Authenticated: plan.Authenticated(), TLSA: tlsaInfo(hop.DANE), requireTLS: requireTLSPlan(hop, opts)}
		if st := hop.STS; st != nil && st.Policy != nil {
			m := st.Policy.Matches(hop.Host)
			info.MTASTSMatch = &m
		}
		if hop.Route != nil {
			dom.Route = hop.Route.Domain
		}
		for _, ip := range hop.Addrs {
			info.Addresses = append(info.Addresses, ip.String())
			at := Result{Domain: d, Host: hop.Host, Port: hop.Port, IP: ip.String(), HopAuthentic: hop.Authentic,
				Address: net.JoinHostPort(ip.String(), strconv.Itoa(hop.Port))}
			if hop.Route != nil {
				at.Route = hop.Route.Domain
			} else {
				at.Pref = int(hop.Pref)
			}
			jobs = append(jobs, job{at: at, plan: plan, hop: i})
		}
		dom.Hops = append(dom.Hops, info)
	}
	if opts.Resolver != nil {
		lookupDomain(ctx, dom, hops, opts.Resolver, opts)
	}
	return dom, jobs
}

// routeError words a routing failure with its reply, as the queue would
// record it.
func routeError(err error) string {
	var se *smtp.Error
	if errors.As(err, &se) {
		return se.Reply.OneLine()
	}
	return err.Error()
}
