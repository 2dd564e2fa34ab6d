package config

// AccountLimits is [account_limits]: the most one authenticated account
// may send, in sliding windows (internal/sendlimit). Over a limit MAIL
// (messages) or RCPT (recipients) gets 451 4.7.1 and a warning is
// logged, so that a compromised account is slowed before it sends spam
// in volume. 0 turns a limit off.
type AccountLimits struct {
	MessagesPerHour int `toml:"messages_per_hour"` // default 500
	MessagesPerDay  int `toml:"messages_per_day"`  // default 2000
	// RecipientsPerHour and RecipientsPerDay count distinct recipient
	// addresses (local ones too).
	RecipientsPerHour int `toml:"recipients_per_hour"` // default 1000
	RecipientsPerDay  int `toml:"recipients_per_day"`  // default 3000
}

// defaultAccountLimits is the [account_limits] of Default: generous
// enough for a person or a small office's mailings, far below what a
// spammer needs (the figures of large mail services' per-user quotas).
func defaultAccountLimits() AccountLimits {
	return AccountLimits{MessagesPerHour: 500, MessagesPerDay: 2000, RecipientsPerHour: 1000, RecipientsPerDay: 3000}
}

func (v *validator) accountLimits(l AccountLimits) {
	for _, f := range []struct {
		key string
		n   int
	}{
		{"account_limits.messages_per_hour", l.MessagesPerHour}, {"account_limits.messages_per_day", l.MessagesPerDay},
		{"account_limits.recipients_per_hour", l.RecipientsPerHour}, {"account_limits.recipients_per_day", l.RecipientsPerDay},
	} {
		if f.n < 0 {
			v.add(f.key, "must not be negative (0 is no limit), got %d", f.n)
		}
	}
	if l.MessagesPerDay > 0 && l.MessagesPerHour > l.MessagesPerDay {
		v.add("account_limits.messages_per_hour", "%d is more than messages_per_day (%d): it could never be reached", l.MessagesPerHour, l.MessagesPerDay)
	}
	if l.RecipientsPerDay > 0 && l.RecipientsPerHour > l.RecipientsPerDay {
		v.add("account_limits.recipients_per_hour", "%d is more than recipients_per_day (%d): it could never be reached", l.RecipientsPerHour, l.RecipientsPerDay)
	}
}
