package config

import "time"

// SRS configures the Sender Rewriting Scheme for forwarded mail
// (internal/srs): the envelope sender of a message an alias forwards to
// another domain becomes an SRS address in Domain, so that SPF (RFC 7208)
// passes at the destination, and bounces to such addresses are verified
// and sent back to the original sender.
type SRS struct {
	// Enabled rewrites forwarded senders and decodes SRS bounces, default
	// true.
	Enabled bool `toml:"enabled"`
	// Domain is the domain of the SRS addresses; "" = hostname (see
	// SRSDomain). Its MX must lead here so that bounces arrive.
	Domain string `toml:"domain"`
	// MaxAge is how long an SRS address is honoured for a bounce; default
	// 21 days, whole days between 1 and 1023 (the timestamp counts days
	// modulo 1024).
	MaxAge Duration `toml:"max_age"`
}

const day = 24 * time.Hour

// defaultSRS is the [srs] of Default.
func defaultSRS() SRS { return SRS{Enabled: true, MaxAge: Duration(21 * day)} }

// SRSDomain is srs.domain, or the hostname when empty.
func (c Config) SRSDomain() string {
	if c.SRS.Domain != "" {
		return c.SRS.Domain
	}
	return c.Hostname
}

func (v *validator) srs(s SRS) {
	if d := s.MaxAge.D(); d < day || d >= 1024*day || d%day != 0 {
		v.add("srs.max_age", "%s: want whole days between 1 and 1023 (e.g. \"21d\")", d)
	}
	if s.Domain != "" && !validDomain(s.Domain) {
		v.add("srs.domain", "%q is not a domain name", s.Domain)
	}
}
