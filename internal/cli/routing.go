package cli

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"smtpkit/internal/config"
	"smtpkit/internal/dns"
	"smtpkit/internal/mtasts"
	"smtpkit/internal/route"
	"smtpkit/internal/tlspolicy"
)

// routing is how outbound mail finds its next hops and decides TLS: the
// resolver, the static routes and MX rules (route.Router) with DANE
// (outbound.dane) and the MTA-STS cache (outbound.mta_sts), the default
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
	sts      *mtasts.Cache // nil: outbound.mta_sts is off
}

// newRouting builds the routing from the configuration. stsDir is where
// MTA-STS policies are cached: <data_dir>/mta-sts for the daemon, "" (in
// memory only) for a one-off command such as the probe.
func newRouting(cfg config.Config, stsDir string, log *slog.Logger) (routing, error) {
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
	rt := routing{policy: policy, roots: roots, resolver: res}
	opts := route.Options{DefaultPort: port, AllowLoopback: cfg.Outbound.AllowLoopback, DANE: cfg.Outbound.DANE,
		Hosts: route.SystemHosts}
	if cfg.Outbound.MTASTS {
		// The policy host's certificate is checked against the WebPKI
		// (system roots, SSL_CERT_FILE), not outbound.ca_file: that file
		// is for relays with a private CA.
		rt.sts, err = mtasts.New(mtasts.Options{Dir: stsDir, Resolver: res, Logger: log,
			AllowLoopback: cfg.Outbound.AllowLoopback})
		if err != nil {
			return routing{}, fmt.Errorf("mta-sts cache: %w", err)
		}
		opts.STS = rt.sts
	}
	rt.router = route.New(res, statics, opts)
	return rt, nil
}
