package cli

// accountlimits.go: per-account sending limits ([account_limits]).

import (
	"log/slog"
	"path/filepath"

	"smtpkit/internal/config"
	"smtpkit/internal/inbound"
	"smtpkit/internal/sendlimit"
)

// sendLimits is [account_limits] as sendlimit takes it.
func sendLimits(l config.AccountLimits) sendlimit.Limits {
	return sendlimit.Limits{MessagesPerHour: l.MessagesPerHour, MessagesPerDay: l.MessagesPerDay,
		RecipientsPerHour: l.RecipientsPerHour, RecipientsPerDay: l.RecipientsPerDay}
}

// openAccountLimits opens the counts in <data_dir>/account-limits and
// hands them to the inbound backend. The store is opened even with every
// limit at 0 (it then counts nothing), so that a reload can set limits.
func openAccountLimits(cfg config.Config, in *inbound.Options, log *slog.Logger) (*sendlimit.Store, error) {
	s, err := sendlimit.Open(sendlimit.Options{
		Limits: sendLimits(cfg.AccountLimits),
		Dir:    filepath.Join(cfg.DataDir, "account-limits"),
		Logger: log,
	})
	if err != nil {
		return nil, err
	}
	in.AccountLimits = s
	return s, nil
}

// closeAccountLimits writes the counts a last time.
func closeAccountLimits(s *sendlimit.Store, log *slog.Logger) {
	if err := s.Close(); err != nil {
		log.Error("account limits: writing the counts at shutdown failed", "err", err)
	}
}
