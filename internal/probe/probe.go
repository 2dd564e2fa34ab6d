// Package probe is the STARTTLS/port tester behind `smtpkit probe`: for
// each port of a host it connects, reads the banner, says EHLO, upgrades
// with STARTTLS (RFC 3207) or speaks implicit TLS (RFC 8314 §3.3), inspects
// the certificate and says EHLO again, then quits. It sends no mail and no
// credentials.
//
// The TLS plan for each port comes from tlspolicy (house rule 7: TLS
// decisions live in one place; delivery obeys them, the probe prints them).
// Unlike delivery, the probe does not refuse a certificate that fails to
// verify: it completes the handshake, then reports whether the chain
// verifies and whether the name matches, so that one run shows everything.
//
// The probe makes no decisions of its own beyond the exit status; a Report
// is data, rendered as text (Text) or JSON (encoding/json, field names
// documented in docs/probe.md).
package probe

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"smtpkit/internal/dns"
	"smtpkit/internal/tlspolicy"
)

// DefaultPorts returns the ports probed when a target names none: SMTP
// relay (RFC 5321), submission (RFC 6409), submissions with implicit TLS
// (RFC 8314 §3.3) and the common alternative submission port.
func DefaultPorts() []int { return []int{25, 587, 465, 2525} }

// Options configure a probe run.
type Options struct {
	// Mode forces how TLS starts on every port (--starttls, --implicit-tls,
	// --no-tls); tlspolicy.ModeAuto, the zero value, is implicit TLS on 465
	// and STARTTLS elsewhere, as delivery does.
	Mode tlspolicy.Mode
	// ServerName is the name the certificate must be valid for and the SNI
	// sent; empty means the target's host.
	ServerName string
	// Roots verify the certificate chain; nil means the system roots.
	Roots *x509.CertPool
	// Timeout bounds each port's whole conversation; zero means 10s.
	Timeout time.Duration
	// GreetingWait is how long a host target's port (other than 25 and
	// 465, in auto mode) waits for a plaintext greeting before it is
	// probed again with implicit TLS; zero means DefaultGreetingWait.
	GreetingWait time.Duration
	// EHLOName is said in EHLO; empty means "smtpkit-probe".
	EHLOName string
	// RequireTLS and RequireValidCert only change the policy printed with
	// each port's plan and the exit status (see Report.Exit).
	RequireTLS       bool
	RequireValidCert bool
	// Transcript keeps each port's conversation in Result.Transcript.
	Transcript bool
	// Dialer connects; nil means a zero net.Dialer (the system resolver).
	Dialer *net.Dialer
	// Now is the clock for certificate validity; nil means time.Now.
	Now func() time.Time
	// Parallel bounds how many ports are probed at once; zero means 8.
	Parallel int
	// Router follows domain targets (static routes, then MX) as the queue
	// does; nil: a domain target fails. Outbound is the default policy for
	// them (outbound.tls): a static route's own policy overrides it, as in
	// delivery. Host targets use neither.
	Router   Router
	Outbound tlspolicy.Policy
	// Resolver, when set, shows a domain's DNS side (Report.Domains): the
	// MX and address answers' DNSSEC status, the MTA-STS and TLS-RPT
	// records. The cli passes the queue's resolver.
	Resolver dns.Resolver
}

// DefaultGreetingWait is Options.GreetingWait's default: a server that
// speaks implicit TLS says nothing until the client's handshake, and a
// submission server greets at once (greeting delays are a port 25 habit).
const DefaultGreetingWait = 3 * time.Second

// DefaultTimeout is the per-port timeout when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.EHLOName == "" {
		o.EHLOName = "smtpkit-probe"
	}
	if o.Dialer == nil {
		o.Dialer = &net.Dialer{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Parallel <= 0 {
		o.Parallel = 8
	}
	return o
}

// Target is one host and the ports to probe on it, or a mail domain.
type Target struct {
	Host  string // name or IP address, without brackets
	Ports []int
	// Domain, when set, is a mail domain: the probe follows its routes
	// (Options.Router) and probes every address of every next hop on the
	// hop's port, with the plan delivery would use. Host and Ports are
	// then unused.
	Domain string
}

// ParseTarget parses "HOST", "HOST:PORT", "[IPv6]", "[IPv6]:PORT" or a bare
// IPv6 address. Without a port the target gets DefaultPorts.
func ParseTarget(s string) (Target, error) {
	if s == "" {
		return Target{}, errors.New("probe: empty target")
	}
	host, port := s, ""
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return Target{}, fmt.Errorf("probe: %q: missing ']'", s)
		}
		host, port = s[1:end], s[end+1:]
		if port != "" {
			p, ok := strings.CutPrefix(port, ":")
			if !ok {
				return Target{}, fmt.Errorf("probe: %q: junk after ']'", s)
			}
			port = p
			if port == "" {
				return Target{}, fmt.Errorf("probe: %q: empty port", s)
			}
		}
		if net.ParseIP(host) == nil || !strings.Contains(host, ":") {
			return Target{}, fmt.Errorf("probe: %q: not an IPv6 address in brackets", s)
		}
	case strings.Count(s, ":") == 1:
		host, port, _ = strings.Cut(s, ":")
		if port == "" {
			return Target{}, fmt.Errorf("probe: %q: empty port", s)
		}
	case strings.Count(s, ":") > 1:
		if net.ParseIP(s) == nil {
			return Target{}, fmt.Errorf("probe: %q: not an IPv6 address (use [ADDRESS]:PORT)", s)
		}
	}
	if err := checkHost(host); err != nil {
		return Target{}, fmt.Errorf("probe: %q: %w", s, err)
	}
	t := Target{Host: host, Ports: DefaultPorts()}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '+' {
			return Target{}, fmt.Errorf("probe: %q: port must be a number from 1 to 65535", s)
		}
		t.Ports = []int{n}
	}
	return t, nil
}

// checkHost accepts an IP address or something shaped like a host name;
// the resolver decides whether the name exists.
func checkHost(h string) error {
	if h == "" {
		return errors.New("empty host")
	}
	if net.ParseIP(h) != nil {
		return nil
	}
	if len(h) > 253 {
		return errors.New("host name longer than 253 octets")
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c == '-' || c == '.' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return fmt.Errorf("invalid character %q in host name", c)
		}
	}
	return nil
}

// Run probes every port of every host target and every address of every
// next hop of every domain target, several at once, and returns the
// results in the order of targets, then ports or hops and addresses. ctx
// cancels the whole run.
func Run(ctx context.Context, targets []Target, opts Options) Report {
	opts = opts.withDefaults()
	var jobs []job // one address and port each
	var domains []*Domain
	var domainOf []int // for each job, its index in domains, or -1
	for _, t := range targets {
		if t.Domain != "" {
			d, js := domainJobs(ctx, t.Domain, opts)
			for range js {
				domainOf = append(domainOf, len(domains))
			}
			domains = append(domains, d)
			jobs = append(jobs, js...)
			continue
		}
		for _, p := range t.Ports {
			jobs = append(jobs, hostJob(t.Host, p, opts))
			domainOf = append(domainOf, -1)
		}
	}
	results := make([]Result, len(jobs))
	sem := make(chan struct{}, opts.Parallel)
	var wg sync.WaitGroup
	for i, j := range jobs {
		if j.err != "" {
			results[i] = j.at
			results[i].Error, results[i].Warnings = j.err, []string{}
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i] = probeJob(ctx, j, opts)
		}()
	}
	wg.Wait()
	rep := Report{Results: results}
	for _, d := range domains {
		rep.Domains = append(rep.Domains, *d)
	}
	type hopKey struct{ domain, hop int }
	probed := map[hopKey][]Result{}
	plans := map[hopKey]tlspolicy.Plan{}
	for i, j := range jobs {
		if k := domainOf[i]; k >= 0 && j.err == "" {
			key := hopKey{k, j.hop}
			probed[key], plans[key] = append(probed[key], results[i]), j.plan
		}
	}
	for key, rs := range probed {
		rep.Domains[key.domain].Hops[key.hop].judge(rs, plans[key])
	}
	return rep
}
