package cli

import (
	"crypto/x509"
	"fmt"
	"os"

	"smtpkit/internal/config"
	"smtpkit/internal/dns"
	"smtpkit/internal/route"
	"smtpkit/internal/tlspolicy"
)

// routing is how outbound mail finds its next hops and decides TLS: the
// resolver, the static routes and MX rules (route.Router), the default
// policy (outbound.tls) and the roots the verify policy checks against.
// The queue's remote courier and `smtpkit probe DOMAIN` are both built from
// it, so that the probe shows the plans delivery would follow.
type routing struct {
	router *route.Router
	policy tlspolicy.Policy
	roots  *x509.CertPool // nil: the system roots
	// resolver is the router's: the probe shows the DNS side of a domain
	// (DNSSEC status, MTA-STS and TLS-RPT records) through it.
	resolver dns.Resolver
}

// newRouting builds the routing from the configuration.
func newRouting(cfg config.Config) (routing, error) {
	var servers []string
	if cfg.Outbound.Resolver != "" {
		servers = []string{cfg.Outbound.Resolver}
	}
	res, err := dns.New(dns.Options{Servers: servers})
	if err != nil {
		return routing{}, fmt.Errorf("resolver: %w", err)
	}
	var statics []route.Static
	for _, r := range cfg.Routes {
		st, err := route.ParseStatic(r.Domain, r.Host, r.TLS, r.AuthUser, r.AuthPasswordFile)
		if err != nil {
			return routing{}, fmt.Errorf("route %s: %w", r.Domain, err)
		}
		statics = append(statics, st)
	}
	port := cfg.Outbound.Port
	if port == 0 {
		port = 25
	}
	router := route.New(res, statics, route.Options{DefaultPort: port, AllowLoopback: cfg.Outbound.AllowLoopback})
	policy, err := tlspolicy.ParsePolicy(cfg.Outbound.TLS)
	if err != nil {
		return routing{}, err
	}
	var roots *x509.CertPool
	if cfg.Outbound.CAFile != "" {
		pemBytes, err := os.ReadFile(cfg.Outbound.CAFile)
		if err != nil {
			return routing{}, fmt.Errorf("outbound.ca_file: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pemBytes) {
			return routing{}, fmt.Errorf("outbound.ca_file %s: no PEM certificate in it", cfg.Outbound.CAFile)
		}
	}
	return routing{router: router, policy: policy, roots: roots, resolver: res}, nil
}
