package config

import (
	"net/mail"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// ACME is [acme]: the server's certificate obtained and renewed from an
// ACME certificate authority (RFC 8555) by internal/acmecert, kept in
// <data_dir>/acme. It is on when Directory is set.
type ACME struct {
	// Directory is the CA's directory URL (https); "" is off.
	Directory string `toml:"directory"`
	// Email is the account's contact address (optional).
	Email string `toml:"email"`
	// Names are the DNS names of the certificate, the first its subject;
	// default the hostname (see ACMENames).
	Names []string `toml:"names,omitempty"`
	// Challenge is how the CA checks that we hold the names:
	// "tls-alpn-01" (RFC 8737, the CA connects to port 443 of each name;
	// the default) or "http-01" (RFC 8555 §8.3, port 80).
	Challenge string `toml:"challenge"`
	// ChallengeAddress is where the challenge listener binds while an
	// order is validated (and only then); "" = ":443" for tls-alpn-01,
	// ":80" for http-01 (see ACMEChallengeAddress). A port other than the
	// CA's is for a forwarded port or a test CA.
	ChallengeAddress string `toml:"challenge_address"`
	// CA is a PEM bundle of the roots trusted for the directory's HTTPS;
	// "" = the system roots. For a private or test CA.
	CA string `toml:"ca"`
	// RetryMin and RetryMax bound the backoff after a failed order: the
	// first retry after RetryMin (default "2m"), doubling up to RetryMax
	// (default "2h"), while the current certificate keeps serving.
	RetryMin Duration `toml:"retry_min"`
	RetryMax Duration `toml:"retry_max"`
}

// ACME challenge types.
const (
	ACMETLSALPN01 = "tls-alpn-01"
	ACMEHTTP01    = "http-01"
)

// defaultACME is the [acme] of Default: off.
func defaultACME() ACME {
	return ACME{Challenge: ACMETLSALPN01, RetryMin: Duration(2 * time.Minute), RetryMax: Duration(2 * time.Hour)}
}

// Enabled reports whether [acme] is on.
func (a ACME) Enabled() bool { return a.Directory != "" }

// ACMENames is acme.names, or the hostname when empty.
func (c Config) ACMENames() []string {
	if len(c.ACME.Names) > 0 {
		return c.ACME.Names
	}
	return []string{c.Hostname}
}

// ACMEChallengeAddress is acme.challenge_address, or the port the CA
// validates the challenge on, on every address.
func (c Config) ACMEChallengeAddress() string {
	switch {
	case c.ACME.ChallengeAddress != "":
		return c.ACME.ChallengeAddress
	case c.ACME.Challenge == ACMEHTTP01:
		return ":80"
	}
	return ":443"
}

func isIP(s string) bool { _, err := netip.ParseAddr(s); return err == nil }

func (v *validator) acme(c Config) {
	a := c.ACME
	if !a.Enabled() {
		return
	}
	if u, err := url.Parse(a.Directory); err != nil || u.Scheme != "https" || u.Host == "" {
		v.add("acme.directory", "%q: want an https URL (RFC 8555 §6.1)", a.Directory)
	}
	if a.Email != "" {
		if addr, err := mail.ParseAddress(a.Email); err != nil || addr.Address != a.Email {
			v.add("acme.email", "%q is not a plain address (user@example.com)", a.Email)
		}
	}
	seen := map[string]bool{}
	for _, n := range c.ACMENames() {
		key := "acme.names"
		if len(a.Names) == 0 {
			key = "hostname"
		}
		switch l := strings.ToLower(n); {
		case strings.HasPrefix(n, "*."):
			v.add(key, "%q: a wildcard needs the dns-01 challenge, which smtpkit does not do", n)
		case !validDomain(n) || !strings.Contains(n, ".") || isIP(n):
			v.add(key, "%q is not a fully qualified domain name a CA can issue for", n)
		case seen[l]:
			v.add(key, "%q listed twice", n)
		default:
			seen[l] = true
		}
	}
	if !oneOf(a.Challenge, ACMETLSALPN01, ACMEHTTP01) {
		v.add("acme.challenge", "%q: want tls-alpn-01 or http-01", a.Challenge)
	}
	if a.ChallengeAddress != "" {
		if _, _, err := splitAddress(a.ChallengeAddress); err != nil {
			v.add("acme.challenge_address", "%q: %v", a.ChallengeAddress, err)
		}
	}
	if a.RetryMin <= 0 {
		v.add("acme.retry_min", "must be positive")
	}
	if a.RetryMax < a.RetryMin {
		v.add("acme.retry_max", "%s must not be shorter than acme.retry_min (%s)", a.RetryMax, a.RetryMin)
	}
}
