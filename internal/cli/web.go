package cli

// web.go: the status page (internal/web) and the certificate-expiry
// gauge, wired from the daemon.

import (
	"log/slog"
	"net/http"
	"slices"

	"smtpkit/internal/certs"
	"smtpkit/internal/config"
	"smtpkit/internal/metrics"
	"smtpkit/internal/web"
)

// statusPage is the status page over d's queue, accounts, metrics,
// TLS-RPT counters, listeners and certificates.
func (d *daemon) statusPage(cfg config.Config, log *slog.Logger) http.Handler {
	opts := web.Options{
		Queue:        d.out.queue,
		Accounts:     d.accounts,
		Deliveries:   d.metrics,
		Listeners:    d.webListeners(cfg.Listeners),
		Certificates: d.certificates,
		Hostname:     cfg.Hostname,
		SessionTTL:   cfg.HTTP.SessionTTL.D(),
		SecureCookie: cfg.HTTP.SecureCookie,
		Logger:       log,
	}
	if d.reports != nil {
		opts.TLSReports = d.reports.store
	}
	return web.New(opts)
}

// webListeners describes the SMTP listeners as they are bound (a reload
// does not change them: listeners need a restart).
func (d *daemon) webListeners(listeners []config.Listener) func() []web.Listener {
	listeners = slices.Clone(listeners)
	return func() []web.Listener { return d.describeListeners(listeners) }
}

func (d *daemon) describeListeners(listeners []config.Listener) []web.Listener {
	var out []web.Listener
	addrs := d.srv.Addrs()
	for i, l := range listeners {
		addr := l.Address
		if i < len(addrs) && addrs[i] != nil {
			addr = addrs[i].String()
		}
		out = append(out, web.Listener{Address: addr, Role: l.Role, TLS: l.TLS, Auth: authWord(l)}) // as serve prints them
	}
	return out
}

// certificates are the ones the listeners serve now (after a reload, the
// new ones); none without TLS.
func (d *daemon) certificates() []certs.Info {
	if d.certs == nil {
		return nil
	}
	return d.certs.Certificates()
}

// watchCertificates exports the certificates' expiry as a gauge.
func (d *daemon) watchCertificates() {
	d.metrics.WatchCertificates(func() []metrics.Certificate {
		var out []metrics.Certificate
		for _, c := range d.certificates() {
			name := ""
			if len(c.Names) > 0 {
				name = c.Names[0]
			}
			out = append(out, metrics.Certificate{File: c.Source, Name: name, NotAfter: c.NotAfter})
		}
		return out
	})
}
