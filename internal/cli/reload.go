package cli

import (
	"log/slog"
	"strings"

	"smtpkit/internal/certs"
	"smtpkit/internal/config"
	"smtpkit/internal/server"
)

// reload is SIGHUP: read the config again and apply what can change while
// running — the limits (shutdown_grace included), the local domains with
// the postmaster domain, the certificates — without dropping sessions. A
// config that does not load or validate is refused with a log line and
// the old one keeps running. Every other key that changed (listeners,
// hostname, data_dir, maildir, outbound, routes, log, metrics, …) needs
// new sockets, a new spool or a new logger: it keeps its running value
// and is named in one warning as needing a restart. The account store
// reloads itself whenever its file changes; here it is re-read once more,
// so that a file it cannot load is logged again (at error level, by the
// store).
func (d *daemon) reload(path string, log *slog.Logger) {
	if d.accounts != nil {
		d.accounts.Reload()
	}
	cfg, source, err := resolveConfig(path, nil)
	if err != nil {
		log.Error("config reload refused, keeping the running configuration", "source", path, "err", err)
		return
	}
	old := d.cfg
	if err := d.reloadCerts(cfg); err != nil {
		log.Error("config reload refused: certificates", "err", err)
		return
	}
	var restart []string
	for _, key := range config.Diff(old, cfg) {
		if !d.appliesLive(key, cfg) {
			restart = append(restart, key)
		}
	}
	// What runs from now on: the old config with the live keys replaced.
	applied := old
	applied.Limits = cfg.Limits
	applied.Domains = cfg.Domains
	applied.AccountLimits = cfg.AccountLimits
	if d.sendLimits != nil {
		d.sendLimits.SetLimits(sendLimits(applied.AccountLimits))
	}
	if d.appliesLive("tls.certificate", cfg) {
		applied.TLS.Certificates = cfg.TLS.Certificates
	}
	d.srv.SetLimits(serverLimits(applied.Limits))
	d.local.SetDomains(domainNames(applied))
	d.out.lmtp.Routes().Set(lmtpRoutes(applied)) // [[domain]] lmtp, lmtp_accounts
	d.srv.SetPostmasterDomain(postmasterDomain(applied))
	d.cfg = applied
	if len(restart) > 0 {
		log.Warn("config change needs a restart to take effect; the running value stays", "keys", strings.Join(restart, ", "))
	}
	log.Info("configuration reloaded", "source", source, "domains", domainList(applied),
		"postmaster", postmasterDomain(applied), "shutdown_grace", applied.Limits.ShutdownGrace.String())
}

// appliesLive reports whether a reload applies a change of key to cfg;
// the keys are those of docs/config.md, "Reloading". A key not listed
// needs a restart: a new key whose change serve applies while running must
// be added here, or a reload says it needs a restart. New certificate
// files apply unless the running server uses the self-signed development
// certificate or the new list is empty.
func (d *daemon) appliesLive(key string, cfg config.Config) bool {
	switch key {
	case "limits.message_size", "limits.recipients", "limits.errors", "limits.connections",
		"limits.connections_per_ip", "limits.command_timeout", "limits.data_timeout",
		"limits.session_timeout", "limits.shutdown_grace", "limits.connection_rate",
		"limits.session_recipients", "limits.header_size",
		"limits.min_data_rate", "limits.stress_threshold", "limits.stress_command_timeout", "limits.stress_data_timeout":
		return true // serverLimits, and shutdown_grace read at shutdown
	case "domain":
		return true // backend domains, the postmaster domain, the LMTP routes
	case "account_limits.messages_per_hour", "account_limits.messages_per_day",
		"account_limits.recipients_per_hour", "account_limits.recipients_per_day":
		return true // sendlimit.Store.SetLimits; the counts are kept
	case "tls.certificate":
		return d.certs != nil && !d.selfSign && len(cfg.TLS.Certificates) > 0
	}
	return false
}

// postmasterDomain completes "RCPT TO:<Postmaster>" (RFC 5321 §4.1.1.3):
// the first local domain, or the hostname when there is none.
func postmasterDomain(cfg config.Config) string {
	if len(cfg.Domains) > 0 {
		return cfg.Domains[0].Name
	}
	return cfg.Hostname
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
		SessionTxns:      l.SessionTxns,
		HeaderSize:       int64(l.HeaderSize),

		MinDataRate:          int64(l.MinDataRate),
		StressThreshold:      l.StressThreshold,
		StressCommandTimeout: l.StressCommandTimeout.D(),
		StressDataTimeout:    l.StressDataTimeout.D(),
	}
}

func domainNames(cfg config.Config) []string {
	names := make([]string, len(cfg.Domains))
	for i, d := range cfg.Domains {
		names[i] = d.Name
	}
	return names
}
