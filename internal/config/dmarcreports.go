package config

import (
	"strings"
	"time"
)

// DMARCReports configures DMARC aggregate reports (RFC 7489 §7.2): the
// messages [verify] evaluated, counted per reporting domain and day, and
// the reports sent to the rua=mailto: addresses of their DMARC records.
type DMARCReports struct {
	// Enabled counts messages and sends reports, default true (nothing
	// is counted while [verify] dmarc = "off").
	Enabled bool `toml:"enabled"`
	// Interval is how often reports are sent, at multiples of it since
	// midnight UTC; default 24h (§7.2: at least daily), 1m to 24h.
	Interval Duration `toml:"interval"`
	// From is the reverse-path, From and report email; "" =
	// noreply-dmarc@<hostname> (see DMARCReportsFrom).
	From string `toml:"from"`
	// Submitter is the report's org_name (and the Subject's Submitter,
	// the file name's receiver); "" = hostname.
	Submitter string `toml:"submitter"`
	// Contact is the report's extra_contact_info (an address or URL).
	Contact string `toml:"contact"`
}

func defaultDMARCReports() DMARCReports {
	return DMARCReports{Enabled: true, Interval: Duration(24 * time.Hour)}
}

// DMARCReportsFrom is dmarc_reports.from, or noreply-dmarc@<hostname>.
func (c Config) DMARCReportsFrom() string {
	if c.DMARCReports.From != "" {
		return c.DMARCReports.From
	}
	return "noreply-dmarc@" + c.Hostname
}

// DMARCReportsSubmitter is dmarc_reports.submitter, or the hostname.
func (c Config) DMARCReportsSubmitter() string {
	if c.DMARCReports.Submitter != "" {
		return c.DMARCReports.Submitter
	}
	return c.Hostname
}

func (v *validator) dmarcReports(d DMARCReports) {
	if i := d.Interval.D(); i < time.Minute || i > 24*time.Hour {
		v.add("dmarc_reports.interval", "%s: want between 1m and 24h", i)
	}
	v.reportFrom("dmarc_reports.from", d.From, "noreply-dmarc@mx.example.com")
	if d.Submitter != "" && !validDomain(d.Submitter) {
		v.add("dmarc_reports.submitter", "%q is not a domain name", d.Submitter)
	}
	if strings.ContainsAny(d.Contact, "\r\n") {
		v.add("dmarc_reports.contact", "must be one line")
	}
}
