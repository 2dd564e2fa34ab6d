package probe

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"strings"
	"time"
)

// TextOptions adjust the readable rendering.
type TextOptions struct {
	// Color adds ANSI colors (the command sets it only for a terminal).
	Color bool
	// RequireTLS and RequireValidCert add the unmet requirements to the
	// summary, as Report.Exit counts them.
	RequireTLS       bool
	RequireValidCert bool
}

const (
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiReset  = "\x1b[0m"
)

// textWriter renders into a buffered writer, coloring when asked.
type textWriter struct {
	w     *bufio.Writer
	color bool
}

func (t textWriter) paint(code, s string) string {
	if !t.color {
		return s
	}
	return code + s + ansiReset
}

// row writes one table row: a label and one or more values, each value
// on its own line under the first.
func (t textWriter) row(label string, values ...string) {
	if len(values) == 0 {
		values = []string{"none"}
	}
	for i, v := range values {
		if i > 0 {
			label = ""
		}
		fmt.Fprintf(t.w, "  %-16s %s\n", label, v)
	}
}

// WriteText writes the report for people: a table per port, the
// transcript when one was kept, and a summary line.
func (rep Report) WriteText(w io.Writer, opts TextOptions) error {
	t := textWriter{w: bufio.NewWriter(w), color: opts.Color}
	for i, r := range rep.Results {
		if i > 0 {
			t.w.WriteString("\n")
		}
		t.result(r)
	}
	for _, d := range rep.Domains {
		t.w.WriteString("\n")
		t.domain(d)
	}
	t.summary(rep, opts)
	return t.w.Flush()
}

func (t textWriter) result(r Result) {
	status := t.paint(ansiGreen, "OK")
	switch {
	case !r.OK():
		status = t.paint(ansiRed, "FAILED")
	case len(r.Warnings) > 0:
		status = t.paint(ansiYellow, fmt.Sprintf("OK with %d warning(s)", len(r.Warnings)))
	}
	fmt.Fprintf(t.w, "%s  %s\n", t.paint(ansiBold, cmp.Or(r.Address, r.Domain)), status)
	if r.Domain != "" {
		t.row("domain", r.Domain)
		if r.Address != "" {
			t.row("next hop", nextHop(r))
			if r.Route == "" {
				t.row("DNSSEC", hopDNSSEC(r.HopAuthentic))
			}
		}
	}
	if r.Plan != "" {
		t.row("plan", r.Plan)
	}
	switch {
	case r.Address == "": // the domain has no route: nothing was dialled
	case !r.Connected:
		t.row("connect", t.paint(ansiRed, "failed")+fmt.Sprintf(" (%d ms)", r.ConnectMS))
	default:
		t.row("connect", fmt.Sprintf("ok (%d ms)", r.ConnectMS))
	}
	if r.Banner != "" {
		t.row("banner", r.Banner)
	}
	if r.EHLOBeforeTLS != nil {
		t.row("EHLO before TLS", r.EHLOBeforeTLS...)
		auth := strings.Join(r.AuthBeforeTLS, " ")
		if auth != "" && r.Mode != "implicit" {
			auth = t.paint(ansiYellow, auth)
		}
		t.row("AUTH before TLS", nonEmpty(auth))
		if r.StartTLSOffered {
			t.row("STARTTLS", "offered")
		} else {
			t.row("STARTTLS", "not offered")
		}
	}
	if r.TLS != nil {
		t.tls(r.TLS)
	}
	if r.EHLOAfterTLS != nil {
		t.row("EHLO after TLS", r.EHLOAfterTLS...)
		t.row("AUTH after TLS", nonEmpty(strings.Join(r.AuthAfterTLS, " ")))
		t.row("REQUIRETLS", offered(r.RequireTLSOffered))
	}
	if r.NoSNI != nil {
		t.row("without SNI", t.noSNI(r.NoSNI))
	}
	if x := r.TLSA; x != nil {
		if x.Matches {
			t.row("TLSA", t.paint(ansiGreen, "certificate matches a TLSA record"))
		} else {
			t.row("TLSA", t.paint(ansiRed, "matches no TLSA record")+" ("+x.Result+"): "+x.Error)
		}
	}
	if r.STSTesting != "" {
		t.row("MTA-STS testing", t.paint(ansiYellow, "would report "+r.STSTesting))
	}
	for _, w := range r.Warnings {
		t.row(t.paint(ansiYellow, "WARNING"), w)
	}
	if r.Error != "" {
		t.row(t.paint(ansiRed, "ERROR"), r.Error)
	}
	if len(r.Transcript) > 0 {
		t.w.WriteString("  transcript:\n")
		for _, l := range r.Transcript {
			fmt.Fprintf(t.w, "    %s\n", l)
		}
	}
}

func (t textWriter) tls(v *TLSInfo) {
	t.row("TLS", fmt.Sprintf("%s, %s (%d ms)", v.Version, v.Cipher, v.HandshakeMS))
	t.row("SNI", nonEmpty(v.ServerName))
	if c := v.Certificate; c != nil {
		t.row("subject", nonEmpty(c.Subject))
		t.row("SANs", c.SANs...)
		t.row("issuer", nonEmpty(c.Issuer))
		t.row("valid from", c.NotBefore.Format(time.RFC3339))
		left := days(c.DaysLeft) + " left"
		switch {
		case c.DaysLeft < 0:
			left = t.paint(ansiRed, "expired "+days(-c.DaysLeft)+" ago")
		case c.DaysLeft < expiryWarnDays:
			left = t.paint(ansiYellow, left)
		}
		t.row("valid until", c.NotAfter.Format(time.RFC3339)+" ("+left+")")
		t.row("serial", c.Serial)
		t.row("SHA-256", c.SHA256)
	}
	if v.ChainVerified {
		t.row("chain", t.paint(ansiGreen, "verified"))
	} else {
		t.row("chain", t.paint(ansiRed, "not verified")+": "+v.ChainError)
	}
	if v.NameMatches {
		t.row("name", t.paint(ansiGreen, "matches "+v.VerifyName))
	} else {
		t.row("name", t.paint(ansiRed, "does not match "+v.VerifyName)+": "+v.NameError)
	}
}

// noSNI words the second handshake's outcome.
func (t textWriter) noSNI(n *NoSNIInfo) string {
	switch {
	case n.Error != "":
		return t.paint(ansiRed, "failed") + ": " + n.Error
	case !n.Presented:
		return t.paint(ansiRed, "no certificate")
	case n.SameCertificate:
		return "the same certificate"
	case n.NameMatches:
		return "a different certificate, also valid for the name (SHA-256 " + n.SHA256 + ")"
	}
	return t.paint(ansiYellow, "a different certificate, not valid for the name") + " (SHA-256 " + n.SHA256 + ")"
}

func offered(b bool) string {
	if b {
		return "offered"
	}
	return "not offered"
}

// hopDNSSEC words route.Hop.Authentic for an MX hop.
func hopDNSSEC(authentic bool) string {
	if authentic {
		return "MX and address answers validated (AD): DANE applies"
	}
	return "not validated (no AD on the MX or address answer): DANE does not apply"
}

// nextHop words where a domain's result was dialled: the MX host and its
// preference, or the static route.
func nextHop(r Result) string {
	if r.Route != "" {
		return fmt.Sprintf("%s, address %s (static route %s)", r.Host, r.IP, r.Route)
	}
	return fmt.Sprintf("%s, address %s (MX preference %d)", r.Host, r.IP, r.Pref)
}

func nonEmpty(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func (t textWriter) summary(rep Report, opts TextOptions) {
	ok := 0
	for _, r := range rep.Results {
		if r.OK() {
			ok++
		}
	}
	fmt.Fprintf(t.w, "\n%d port(s) probed: %d ok, %d failed\n", len(rep.Results), ok, len(rep.Results)-ok)
	for _, u := range rep.Unmet(opts.RequireTLS, opts.RequireValidCert) {
		fmt.Fprintf(t.w, "%s %s\n", t.paint(ansiRed, "NOT MET:"), u)
	}
	for _, d := range rep.Domains {
		for _, h := range d.Hops {
			if h.EnforcedTLSFails {
				fmt.Fprintf(t.w, "%s %s: %s (%s): %s\n", t.paint(ansiRed, "ENFORCED TLS FAILS:"), d.Domain, h.Host, h.Mechanism, h.Verdict)
			}
		}
	}
}

// Unmet lists, in words, each reachable port that fails a requirement.
func (rep Report) Unmet(requireTLS, requireValidCert bool) []string {
	var out []string
	for _, r := range rep.Results {
		if !r.Connected {
			continue
		}
		if requireTLS && r.TLS == nil {
			out = append(out, "--require-tls: "+r.Address+" did not do TLS")
		}
		if requireValidCert {
			switch {
			case r.TLS == nil:
				out = append(out, "--require-valid-cert: "+r.Address+" presented no certificate (no TLS)")
			case !r.TLS.Valid:
				out = append(out, "--require-valid-cert: "+r.Address+" certificate not valid for "+r.TLS.VerifyName)
			}
		}
	}
	return out
}

// days words a count of days.
func days(n int) string {
	if n == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}
