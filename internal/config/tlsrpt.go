package config

import (
	"strings"
	"time"
)

// TLSRPT configures SMTP TLS Reporting (RFC 8460): counting the outcome
// of every outbound session per policy domain and day, and sending the
// reports to the addresses domains publish in their _smtp._tls record.
type TLSRPT struct {
	// Enabled counts sessions and sends reports, default true.
	Enabled bool `toml:"enabled"`
	// Interval is how often reports are sent, at multiples of it since
	// midnight UTC; default 24h (one report per finished UTC day, as
	// RFC 8460 §4.1 asks). Between 1m and 24h.
	Interval Duration `toml:"interval"`
	// From is the reverse-path and From of report mails; "" =
	// noreply-tlsrpt@<hostname> (see TLSRPTFrom).
	From string `toml:"from"`
	// Submitter is the reporting domain (TLS-Report-Submitter,
	// organization-name); "" = hostname (see TLSRPTSubmitter).
	Submitter string `toml:"submitter"`
	// Contact is the reports' contact-info (an address or URL); "" = From.
	Contact string `toml:"contact"`
}

// defaultTLSRPT is the [tlsrpt] of Default.
func defaultTLSRPT() TLSRPT { return TLSRPT{Enabled: true, Interval: Duration(24 * time.Hour)} }

// TLSRPTFrom is tlsrpt.from, or noreply-tlsrpt@<hostname> when empty.
func (c Config) TLSRPTFrom() string {
	if c.TLSRPT.From != "" {
		return c.TLSRPT.From
	}
	return "noreply-tlsrpt@" + c.Hostname
}

// TLSRPTSubmitter is tlsrpt.submitter, or the hostname when empty.
func (c Config) TLSRPTSubmitter() string {
	if c.TLSRPT.Submitter != "" {
		return c.TLSRPT.Submitter
	}
	return c.Hostname
}

func (v *validator) tlsrpt(t TLSRPT) {
	if d := t.Interval.D(); d < time.Minute || d > 24*time.Hour {
		v.add("tlsrpt.interval", "%s: want between 1m and 24h", d)
	}
	v.reportFrom("tlsrpt.from", t.From, "noreply-tlsrpt@mx.example.com")
	if t.Submitter != "" && !validDomain(t.Submitter) {
		v.add("tlsrpt.submitter", "%q is not a domain name", t.Submitter)
	}
	if strings.ContainsAny(t.Contact, "\r\n") {
		v.add("tlsrpt.contact", "must be one line")
	}
}

// reportFrom checks the from address of report mails ([tlsrpt],
// [dmarc_reports]): empty (the default) or local@domain.
func (v *validator) reportFrom(key, from, example string) {
	if from == "" {
		return
	}
	local, domain, ok := strings.Cut(from, "@")
	if !ok || local == "" || strings.ContainsAny(local, " <>\t\"") || !validDomain(domain) {
		v.add(key, "%q is not an address like %s", from, example)
	}
}
