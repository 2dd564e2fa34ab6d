package cli

import (
	"log/slog"
	"strings"

	"smtpkit/internal/config"
	"smtpkit/internal/delivery"
)

// lmtpRoutes is the LMTP table of [[domain]]'s lmtp and lmtp_accounts:
// the domains handed to an LMTP server, and the mailboxes with a server
// of their own (or "maildir": "" in the table, kept in their Maildir).
func lmtpRoutes(cfg config.Config) (domains, mailboxes map[string]string) {
	domains, mailboxes = map[string]string{}, map[string]string{}
	for _, d := range cfg.Domains {
		if d.LMTP != "" {
			domains[strings.ToLower(d.Name)] = d.LMTP
		}
		for local, dest := range d.LMTPAccounts {
			if dest == config.LMTPMaildir {
				dest = ""
			}
			mailboxes[strings.ToLower(local+"@"+d.Name)] = dest
		}
	}
	return domains, mailboxes
}

// newLMTP is the LMTP courier of cfg, its routes set from [[domain]].
func newLMTP(cfg config.Config, log *slog.Logger) *delivery.LMTP {
	routes := delivery.NewLMTPRoutes()
	domains, mailboxes := lmtpRoutes(cfg)
	routes.Set(domains, mailboxes)
	if len(domains)+len(mailboxes) > 0 {
		log.Info("lmtp: final delivery by LMTP", "domains", len(domains), "mailboxes", len(mailboxes))
	}
	return delivery.NewLMTP(delivery.LMTPOptions{Routes: routes, LocalName: cfg.Hostname, Logger: log})
}
