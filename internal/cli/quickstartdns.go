package cli

// quickstartdns.go: what quickstart writes and prints — the config file's
// text, the DNS records to publish (MX, SPF, DKIM, DMARC, MTA-STS with its
// policy file, TLS-RPT, submission SRV, TLSA) and the checks to run.

import (
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"smtpkit/internal/dane"
)

// configText is the config file quickstart writes.
func (p quickstartPlan) configText() string {
	f := p.f
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# smtpkit configuration for %s, written by `smtpkit quickstart` on %s.\n", f.domain, time.Now().UTC().Format("2006-01-02"))
	w("# Check it with: smtpkit config check -certs %s\n", p.configPath)
	w("# Every key is described in docs/config.md; keys left out keep their defaults\n# (`smtpkit config default` prints them all).\n\n")
	w("# The name in the greeting and EHLO; the MX record of %s names it, and its\n# A/AAAA and PTR records must match.\n", f.domain)
	w("hostname = %q\n\n", f.hostname)
	w("# Mailboxes, the queue and the accounts; owned by the user serve runs as.\n")
	w("data_dir = %q\n\n", f.dataDir)
	w("[log]\nformat = \"json\"\nlevel  = \"info\"\n\n")
	w("[[domain]]\nname = %q\n\n", f.domain)
	w("# Port 25: mail from other servers (RFC 5321); STARTTLS offered.\n")
	w("[[listener]]\naddress = \":25\"\nrole    = \"mx\"\ntls     = \"opportunistic\"\n\n")
	w("# Port 587: submission from mail clients (RFC 6409); STARTTLS and AUTH before MAIL.\n")
	w("[[listener]]\naddress = \":587\"\nrole    = \"submission\"\ntls     = \"required\"\n\n")
	w("# Port 465: submission over implicit TLS (RFC 8314 §3.3).\n")
	w("[[listener]]\naddress = \":465\"\nrole    = \"submissions\"\ntls     = \"implicit\"\n\n")
	w("# Port 2525: submission again, for networks that block 587.\n")
	w("[[listener]]\naddress = \":2525\"\nrole    = \"submission\"\ntls     = \"required\"\n\n")
	acme := fmt.Sprintf("[acme]\ndirectory = %q\nemail     = %q\nnames     = [%q]\nchallenge = \"tls-alpn-01\"   # the CA connects to port 443 of %s while an order is validated\n",
		f.acmeDirectory, p.acmeEmail(), f.hostname, f.hostname)
	if f.cert != "" {
		w("# The certificate of %s, chosen by SNI; the files are read again on reload\n# (systemctl reload smtpkit after a renewal).\n", f.hostname)
		w("[[tls.certificate]]\ncert = %q\nkey  = %q\n\n", abs(f.cert), abs(f.key))
		w("# Or obtain and renew the certificate by ACME (RFC 8555) instead of the files:\n")
		for _, line := range strings.Split(strings.TrimSuffix(acme, "\n"), "\n") {
			w("# %s\n", line)
		}
		w("\n")
	} else {
		w("# The certificate of %s, obtained at start and renewed by ACME (RFC 8555),\n# kept in <data_dir>/acme. Port 443 must be reachable for tls-alpn-01.\n", f.hostname)
		w("%s\n", acme)
	}
	w("# Outgoing mail is signed with both keys (RFC 6376; Ed25519 by RFC 8463 beside RSA\n# for receivers that verify only RSA). Publish both records quickstart printed.\n")
	for _, k := range p.keys {
		w("[[dkim]]\ndomain   = %q\nselector = %q\nkey      = %q\n\n", f.domain, k.selector, k.path)
	}
	return b.String()
}

func (p quickstartPlan) acmeEmail() string {
	if p.f.acmeEmail != "" {
		return p.f.acmeEmail
	}
	return p.account
}

func abs(path string) string {
	if a, err := filepath.Abs(path); err == nil {
		return a
	}
	return path
}

// stsID is the MTA-STS policy id (RFC 8461 §3.1: 1-32 alphanumerics),
// new for every quickstart.
func stsID(now time.Time) string { return now.UTC().Format("20060102150405") }

// printDNS prints the records to publish, as zone-file lines.
func (p quickstartPlan) printDNS(w io.Writer, dkimRecords []string) {
	d, h := p.f.domain, p.f.hostname
	fmt.Fprintf(w, "DNS records to publish (zone-file lines; names end with a dot):\n\n")
	fmt.Fprintf(w, "; this server: its address records, and the PTR record of each address naming %s\n", h)
	fmt.Fprintf(w, "%s. A    <this server's IPv4 address>\n%s. AAAA <this server's IPv6 address, if it has one>\n\n", h, h)
	fmt.Fprintf(w, "; MX: mail for %s goes to %s (RFC 5321 §5.1)\n%s. MX 10 %s.\n\n", d, h, d, h)
	fmt.Fprintf(w, "; SPF (RFC 7208): only the MX host sends for %s; and for the HELO name\n", d)
	fmt.Fprintf(w, "%s. TXT \"v=spf1 mx -all\"\n%s. TXT \"v=spf1 a -all\"\n\n", d, h)
	fmt.Fprintf(w, "; DKIM (RFC 6376, RFC 8463): the public keys of %s\n", strings.Join(p.selectors(), " and "))
	for _, r := range dkimRecords {
		fmt.Fprintln(w, r)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "; DMARC (RFC 7489): refuse mail that fails SPF and DKIM alignment; aggregate reports\n")
	fmt.Fprintf(w, "; to %s (use p=none for a start if other services send as @%s)\n", p.account, d)
	fmt.Fprintf(w, "_dmarc.%s. TXT \"v=DMARC1; p=reject; rua=mailto:%s\"\n\n", d, p.account)
	fmt.Fprintf(w, "; MTA-STS (RFC 8461): senders are to use TLS with a valid certificate for %s\n", h)
	fmt.Fprintf(w, "; (mode testing: they only report failures; mode enforce: they refuse to send without).\n")
	fmt.Fprintf(w, "; Change the id whenever the policy changes.\n")
	fmt.Fprintf(w, "_mta-sts.%s. TXT \"v=STSv1; id=%s\"\n", d, stsID(time.Now()))
	fmt.Fprintf(w, "; and serve this policy at https://mta-sts.%s/.well-known/mta-sts.txt (a web server\n", d)
	fmt.Fprintf(w, "; with a valid certificate for mta-sts.%s; smtpkit does not serve it). Start with\n", d)
	fmt.Fprintf(w, "; mode testing; switch to enforce once the TLS-RPT reports show no failures:\n")
	for _, line := range strings.Split(p.stsPolicy(), "\n") {
		if line != "" {
			fmt.Fprintf(w, ";   %s\n", line)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "; TLS-RPT (RFC 8460): daily reports of senders' TLS failures to %s\n", p.account)
	fmt.Fprintf(w, "_smtp._tls.%s. TXT \"v=TLSRPTv1; rua=mailto:%s\"\n\n", d, p.account)
	fmt.Fprintf(w, "; Mail clients find the submission ports (RFC 6186, RFC 8314)\n")
	fmt.Fprintf(w, "_submissions._tcp.%s. SRV 0 1 465 %s.\n_submission._tcp.%s. SRV 0 1 587 %s.\n\n", d, h, d, h)
	fmt.Fprintf(w, "; DANE (RFC 7672), only in a DNSSEC-signed zone: the TLSA record of the certificate\n")
	fmt.Fprintln(w, p.tlsaLine())
	fmt.Fprintln(w)
}

func (p quickstartPlan) selectors() []string {
	out := make([]string, len(p.keys))
	for i, k := range p.keys {
		out[i] = k.selector
	}
	return out
}

// stsPolicy is the MTA-STS policy file (RFC 8461 §3.2), CRLF-free here.
func (p quickstartPlan) stsPolicy() string {
	return "version: STSv1\nmode: testing\nmx: " + p.f.hostname + "\nmax_age: 604800\n"
}

// tlsaLine is the TLSA record of the certificate files (3 1 1: the
// server's own key, SHA-256, RFC 7671 §5.1), or how to get it once [acme]
// has the certificate.
func (p quickstartPlan) tlsaLine() string {
	owner := "_25._tcp." + p.f.hostname + "."
	if p.f.cert == "" {
		return fmt.Sprintf("; (%s TLSA 3 1 1 ...) the certificate does not exist yet: [acme] obtains it when\n"+
			"; serve starts; then print the record with: smtpkit tlsa -config %s\n"+
			"; ([acme] keeps its key across renewals, so a 3 1 1 record stays valid)", owner, p.configPath)
	}
	chain, err := readChain(p.f.cert)
	if err != nil {
		return fmt.Sprintf("; (%s TLSA 3 1 1 ...) %s cannot be read (%v): smtpkit tlsa -config %s", owner, p.f.cert, err, p.configPath)
	}
	r := dane.Record(dane.UsageDANEEE, dane.SelectorSPKI, dane.MatchSHA256, chain[0])
	return owner + " IN TLSA " + dane.Format(r) + "\n; (a new key needs a new record, published before the certificate changes)"
}

// printChecks prints what to run once the records are published.
func (p quickstartPlan) printChecks(w io.Writer) {
	c := p.configPath
	fmt.Fprintf(w, "Then:\n")
	fmt.Fprintf(w, "  smtpkit config check -certs %s\n", c)
	fmt.Fprintf(w, "  systemctl enable --now smtpkit          # or: smtpkit serve -config %s\n", c)
	for _, k := range p.keys {
		fmt.Fprintf(w, "  smtpkit dkim check -config %s -domain %s -selector %s\n", c, p.f.domain, k.selector)
	}
	fmt.Fprintf(w, "  smtpkit probe -config %s %s          # the MX, its TLS, MTA-STS and TLS-RPT, as senders see them\n", c, p.f.domain)
	fmt.Fprintf(w, "  smtpkit probe --require-valid-cert %s   # ports 25, 587, 465 and 2525 with the certificate\n", p.f.hostname)
	fmt.Fprintf(w, "  smtpkit send --server %s:%s --auth-user %s --from %s --to %s --subject test --body hello\n",
		p.f.hostname, strconv.Itoa(465), p.account, p.account, p.account)
}
