package metrics

import "github.com/prometheus/client_golang/prometheus"

// accountlimits.go: MAIL and RCPT of authenticated accounts refused over
// their [account_limits] (internal/inbound's Events).

func newAccountLimited(counter func(name, help string, labels ...string) *prometheus.CounterVec) *prometheus.CounterVec {
	return counter("account_limited_total", "MAIL (messages_per_*) and RCPT (recipients_per_*) commands of authenticated accounts refused (a temporary failure) for going over a sending limit, by limit.", "limit")
}

// AccountLimited counts a command refused for going over limit (one of
// the four [account_limits] names, so a bounded label).
func (m *Metrics) AccountLimited(limit string) { m.accountLimited.WithLabelValues(limit).Inc() }
