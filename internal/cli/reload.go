package cli

import (
	"log/slog"
	"reflect"

	"smtpkit/internal/certs"
	"smtpkit/internal/config"
	"smtpkit/internal/server"
)

// reload is SIGHUP: read the config again and apply what can change while
// running — limits, local domains, certificates — without dropping
// sessions. A config that does not load or validate is refused with a log
// line and the old one keeps running. Changes that need new sockets or a
// new spool (listeners, hostname, data_dir, outbound) are logged as needing
// a restart. The account store reloads itself whenever its file changes.
func (d *daemon) reload(path string, log *slog.Logger) {
	cfg, source, err := config.Resolve(path)
	if err != nil {
		log.Error("config reload refused, keeping the running configuration", "source", path, "err", err)
		return
	}
	old := d.cfg
	if err := d.reloadCerts(cfg); err != nil {
		log.Error("config reload refused: certificates", "err", err)
		return
	}
	d.srv.SetLimits(serverLimits(cfg.Limits))
	d.backend.SetDomains(domainNames(cfg))
	for _, f := range []struct {
		name string
		a, b any
	}{
		{"listener", old.Listeners, cfg.Listeners},
		{"hostname", old.Hostname, cfg.Hostname},
		{"data_dir", old.DataDir, cfg.DataDir},
		{"maildir", old.Maildir, cfg.Maildir},
		{"outbound", old.Outbound, cfg.Outbound},
		{"route", old.Routes, cfg.Routes},
		{"log", old.Log, cfg.Log},
		{"metrics", old.Metrics, cfg.Metrics},
	} {
		if !reflect.DeepEqual(f.a, f.b) {
			log.Warn("config change needs a restart to take effect", "section", f.name)
		}
	}
	// Keep what is actually running for the sections a reload cannot change.
	cfg.Listeners, cfg.Hostname, cfg.DataDir, cfg.Maildir = old.Listeners, old.Hostname, old.DataDir, old.Maildir
	cfg.Outbound, cfg.Routes, cfg.Log, cfg.Metrics = old.Outbound, old.Routes, old.Log, old.Metrics
	d.cfg = cfg
	log.Info("configuration reloaded", "source", source, "domains", domainList(cfg))
}

// reloadCerts re-reads the certificate files, switching to a new list when
// the config changed it; the self-signed development certificate is only
// re-read.
func (d *daemon) reloadCerts(cfg config.Config) error {
	if d.certs == nil {
		return nil
	}
	if d.selfSign || len(cfg.TLS.Certificates) == 0 {
		return d.certs.Reload()
	}
	pairs := make([]certs.Pair, len(cfg.TLS.Certificates))
	for i, c := range cfg.TLS.Certificates {
		pairs[i] = certs.Pair{Cert: c.Cert, Key: c.Key}
	}
	return d.certs.ReloadPairs(pairs)
}

// serverLimits maps the config's limits to the server's.
func serverLimits(l config.Limits) server.Limits {
	return server.Limits{
		MessageSize:      int64(l.MessageSize),
		Recipients:       l.Recipients,
		Errors:           l.Errors,
		Connections:      l.Connections,
		ConnectionsPerIP: l.ConnectionsPerIP,
		CommandTimeout:   l.CommandTimeout.D(),
		DataTimeout:      l.DataTimeout.D(),
		SessionTimeout:   l.SessionTimeout.D(),
		ConnectionRate:   l.ConnectionRate,
		SessionRcpts:     l.SessionRcpts,
		HeaderSize:       int64(l.HeaderSize),
	}
}

func domainNames(cfg config.Config) []string {
	names := make([]string, len(cfg.Domains))
	for i, d := range cfg.Domains {
		names[i] = d.Name
	}
	return names
}
