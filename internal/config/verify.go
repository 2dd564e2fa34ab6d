package config

// Verify configures the verification of mail arriving on mx listeners
// (internal/authres, wired in internal/inbound): SPF (RFC 7208), DKIM
// (RFC 6376), DMARC (RFC 7489) and iprev (RFC 8601 §3), with the results
// in one Authentication-Results header field (RFC 8601). Submission mail
// is ours and not verified.
type Verify struct {
	// Enabled turns verification on, default false: with it off, mail
	// is stored exactly as before and no DNS lookups are made for it.
	Enabled bool `toml:"enabled"`
	// SPF checks the MAIL FROM and HELO identities, default true.
	SPF bool `toml:"spf"`
	// DKIM verifies the DKIM-Signature fields, default true.
	DKIM bool `toml:"dkim"`
	// DMARC is "off", "header" (the default: the result is recorded in
	// the header only) or "enforce" (p=reject failures get 550 5.7.1 at
	// the end of DATA, p=quarantine failures go to the mailbox's .Junk
	// folder, as far as pct samples them).
	DMARC string `toml:"dmarc"`
	// IPRev checks the client's forward-confirmed reverse DNS, default
	// true.
	IPRev bool `toml:"iprev"`
	// AuthServID is the authserv-id of our Authentication-Results fields
	// (RFC 8601 §2.5); "" = hostname (see AuthServID).
	AuthServID string `toml:"authserv_id"`
}

// The values of verify.dmarc.
const (
	DMARCOff     = "off"
	DMARCHeader  = "header"
	DMARCEnforce = "enforce"
)

// defaultVerify is the [verify] of Default.
func defaultVerify() Verify {
	return Verify{SPF: true, DKIM: true, DMARC: DMARCHeader, IPRev: true}
}

// AuthServID is verify.authserv_id, or the hostname when empty.
func (c Config) AuthServID() string {
	if c.Verify.AuthServID != "" {
		return c.Verify.AuthServID
	}
	return c.Hostname
}

func (v *validator) verify(c Verify) {
	switch c.DMARC {
	case DMARCOff, DMARCHeader, DMARCEnforce:
	default:
		v.add("verify.dmarc", "%q: want \"off\", \"header\" or \"enforce\"", c.DMARC)
	}
	// RFC 8601 §2.5: the authserv-id is a domain name in practice (a
	// "value" token is allowed, but a name others can recognise is
	// what receivers use to tell their own fields).
	if c.AuthServID != "" && !validDomain(c.AuthServID) {
		v.add("verify.authserv_id", "%q is not a domain name", c.AuthServID)
	}
	if c.DMARC == DMARCEnforce && !c.SPF && !c.DKIM {
		v.add("verify.dmarc", "\"enforce\" with spf and dkim both off would fail every message")
	}
}
