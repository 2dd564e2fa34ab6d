package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Validate checks c and reports every problem at once: the result is nil
// or errors.Join of *Problem values (see Problems). It does not touch the
// file system: certificate files are read later by internal/certs.
func (c Config) Validate() error {
	v := &validator{}
	v.top(c)
	v.domains(c.Domains)
	v.listeners(c)
	v.tls(c.TLS)
	v.limits(c.Limits)
	v.outbound(c.Outbound)
	v.routes(c.Routes)
	v.http(c)
	v.tlsrpt(c.TLSRPT)
	v.srs(c.SRS)
	v.dkim(c.DKIM)
	v.verify(c.Verify)
	v.greylist(c.Greylist)
	v.dmarcReports(c.DMARCReports)
	v.trusted(c)
	v.frontEnds(c.Listeners)
	v.accountLimits(c.AccountLimits)
	v.dnsbl(c)
	v.milters(c)
	v.cluster(c.Cluster)
	v.acme(c)
	v.auth(c.Auth)
	return errors.Join(v.problems...)
}

type validator struct{ problems []error }

func (v *validator) add(key, format string, args ...any) {
	v.problems = append(v.problems, &Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) top(c Config) {
	if !validDomain(c.Hostname) {
		v.add("hostname", "%q is not a valid host name (RFC 5321 §4.1.1.1 wants the server's FQDN)", c.Hostname)
	}
	if c.DataDir == "" {
		v.add("data_dir", "must not be empty")
	}
	if !oneOf(c.Log.Format, "text", "json") {
		v.add("log.format", "%q: want text or json", c.Log.Format)
	}
	if !oneOf(c.Log.Level, "debug", "info", "warn", "error") {
		v.add("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	if !oneOf(c.Maildir.Sync, "journal", "filesystem", "file") {
		v.add("maildir.sync", "%q: want journal, filesystem or file", c.Maildir.Sync)
	}
	if c.Maildir.Checkpoint <= 0 {
		v.add("maildir.checkpoint", "must be positive")
	}
}

func (v *validator) domains(ds []Domain) {
	if len(ds) == 0 {
		v.add("domain", "no [[domain]]: at least one local domain is needed")
	}
	seen := map[string]bool{}
	for i, d := range ds {
		key := fmt.Sprintf("domain[%d].name", i)
		name := strings.ToLower(d.Name)
		switch {
		case !validDomain(d.Name):
			v.add(key, "%q is not a valid domain name", d.Name)
		case seen[name]:
			v.add(key, "domain %q listed twice", d.Name)
		}
		seen[name] = true
		if d.LMTP != "" {
			if err := CheckLMTP(d.LMTP); err != nil {
				v.add(fmt.Sprintf("domain[%d].lmtp", i), "%v", err)
			}
		}
		for local, dest := range d.LMTPAccounts {
			key := fmt.Sprintf("domain[%d].lmtp_accounts.%s", i, local)
			switch {
			case local == "" || strings.ContainsAny(local, "@ \t"):
				v.add(key, "%q is not a local part", local)
			case dest == LMTPMaildir:
			default:
				if err := CheckLMTP(dest); err != nil {
					v.add(key, "%v", err)
				}
			}
		}
	}
}

func (v *validator) listeners(c Config) {
	if len(c.Listeners) == 0 {
		v.add("listener", "no [[listener]]: at least one is needed")
	}
	seen := map[string]bool{}
	haveCert := len(c.TLS.Certificates) > 0 || c.TLS.SelfSigned || c.ACME.Enabled()
	for i, l := range c.Listeners {
		key := fmt.Sprintf("listener[%d]", i)
		host, port, err := splitAddress(l.Address)
		if err != nil {
			v.add(key+".address", "%q: %v", l.Address, err)
		} else if norm := net.JoinHostPort(host, port); port != "0" && seen[norm] {
			v.add(key+".address", "%q is used by another listener", l.Address)
		} else {
			seen[norm] = true
		}
		if !oneOf(l.Role, RoleMX, RoleSubmission, RoleSubmissions, RoleSink) {
			v.add(key+".role", "%q: want mx, submission, submissions (or sink, for benchmarks)", l.Role)
		}
		if l.Role == RoleSink && err == nil && !isLoopback(host) {
			v.add(key+".role", "a sink listener discards mail: allowed only on loopback addresses")
		}
		switch {
		case l.TLS == "" && !oneOf(l.Role, RoleMX, RoleSubmission, RoleSubmissions, RoleSink):
			// The role is wrong and gave no default; one problem is enough.
		case !oneOf(l.TLS, TLSOpportunistic, TLSRequired, TLSImplicit, TLSNone):
			v.add(key+".tls", "%q: want opportunistic, required, implicit or none", l.TLS)
		case l.Role == RoleSubmissions && l.TLS != TLSImplicit:
			v.add(key+".tls", "role submissions is implicit TLS (RFC 8314 §3.3): tls must be \"implicit\", not %q", l.TLS)
		case l.TLS == TLSImplicit && l.Role != RoleSubmissions:
			v.add(key+".tls", "implicit TLS is only for role submissions, not %q (use opportunistic or required)", l.Role)
		case l.TLS != TLSNone && !haveCert:
			v.add(key+".tls", "tls %q needs a certificate: add [[tls.certificate]], set up [acme] or set tls.self_signed = true", l.TLS)
		}
		if l.Auth != nil && *l.Auth && l.TLS == TLSNone {
			v.add(key+".auth", "auth = true with tls = \"none\": AUTH is offered only inside TLS (RFC 4954 §4), also on loopback; use tls = \"required\" or leave auth out")
		}
	}
}

func (v *validator) tls(t TLS) {
	for i, c := range t.Certificates {
		key := fmt.Sprintf("tls.certificate[%d]", i)
		if c.Cert == "" {
			v.add(key+".cert", "missing: the PEM certificate chain file")
		}
		if c.Key == "" {
			v.add(key+".key", "missing: the PEM private key file")
		}
	}
}

func (v *validator) limits(l Limits) {
	if l.MessageSize <= 0 {
		v.add("limits.message_size", "must be positive, got %s", l.MessageSize)
	}
	if l.Recipients < 100 {
		v.add("limits.recipients", "%d is below the minimum of 100 (RFC 5321 §4.5.3.1.8)", l.Recipients)
	}
	positive := []struct {
		key string
		n   int
	}{{"limits.errors", l.Errors}, {"limits.connections", l.Connections}, {"limits.connections_per_ip", l.ConnectionsPerIP}}
	for _, p := range positive {
		if p.n < 1 {
			v.add(p.key, "must be at least 1, got %d", p.n)
		}
	}
	if l.ConnectionsPerIP > l.Connections && l.Connections >= 1 {
		v.add("limits.connections_per_ip", "%d is more than limits.connections (%d)", l.ConnectionsPerIP, l.Connections)
	}
	for _, d := range []struct {
		key string
		d   Duration
	}{{"limits.command_timeout", l.CommandTimeout}, {"limits.data_timeout", l.DataTimeout}, {"limits.session_timeout", l.SessionTimeout}} {
		if d.d <= 0 {
			v.add(d.key, "must be positive, got %s", d.d)
		}
	}
	if l.ShutdownGrace < 0 {
		v.add("limits.shutdown_grace", "must not be negative, got %s", l.ShutdownGrace)
	}
	if l.ConnectionRate < 0 {
		v.add("limits.connection_rate", "must not be negative, got %d", l.ConnectionRate)
	}
	if l.SessionRcpts != 0 && l.SessionRcpts < l.Recipients {
		v.add("limits.session_recipients", "%d is less than limits.recipients (%d)", l.SessionRcpts, l.Recipients)
	}
	if l.SessionTxns < 0 {
		v.add("limits.session_transactions", "must not be negative, got %d", l.SessionTxns)
	}
	if l.HeaderSize < 0 || (l.HeaderSize > 0 && l.HeaderSize < 1000) {
		v.add("limits.header_size", "%s: want at least 1000 octets", l.HeaderSize)
	}
	v.stress(l)
}

// stress checks the minimum data rate and the stress-mode keys.
func (v *validator) stress(l Limits) {
	if l.MinDataRate < 1 {
		v.add("limits.min_data_rate", "must be at least 1 (octets per second), got %d", l.MinDataRate)
	}
	if l.StressThreshold < 1 || l.StressThreshold > 100 {
		v.add("limits.stress_threshold", "%d: want a percentage of limits.connections, 1 to 100", l.StressThreshold)
	}
	for _, d := range []struct {
		key string
		d   Duration
	}{{"limits.stress_command_timeout", l.StressCommandTimeout}, {"limits.stress_data_timeout", l.StressDataTimeout}} {
		if d.d <= 0 {
			v.add(d.key, "must be positive, got %s", d.d)
		}
	}
}

func (v *validator) outbound(o Outbound) {
	if !validOutTLS(o.TLS) {
		v.add("outbound.tls", "%q: want none, opportunistic, required or verify", o.TLS)
	}
	if o.MaxAge <= 0 {
		v.add("outbound.max_age", "must be positive, got %s", o.MaxAge)
	}
	if o.RetryMin <= 0 {
		v.add("outbound.retry_min", "must be positive, got %s", o.RetryMin)
	}
	if o.RetryMax < o.RetryMin {
		v.add("outbound.retry_max", "%s is less than retry_min (%s)", o.RetryMax, o.RetryMin)
	}
	if o.DelayWarning < 0 || (o.DelayWarning > 0 && o.DelayWarning >= o.MaxAge) {
		v.add("outbound.delay_warning", "%s: want 0 (off) or a duration shorter than max_age (%s)", o.DelayWarning, o.MaxAge)
	}
	if o.Concurrency < 1 {
		v.add("outbound.concurrency", "must be at least 1, got %d", o.Concurrency)
	}
	if o.MaxDeliveries < 1 {
		v.add("outbound.max_deliveries", "must be at least 1, got %d", o.MaxDeliveries)
	} else if o.Concurrency > o.MaxDeliveries {
		v.add("outbound.concurrency", "%d is more than max_deliveries (%d)", o.Concurrency, o.MaxDeliveries)
	}
	if o.ActiveLimit < 100 {
		v.add("outbound.active_limit", "must be at least 100, got %d", o.ActiveLimit)
	}
	if o.JournalMax < 4<<10 || o.JournalMax > 1<<20 {
		v.add("outbound.journal_max", "must be from 4KiB to 1MiB (a journal record), got %s", o.JournalMax)
	}
	if o.JournalMemory < 1<<20 {
		v.add("outbound.journal_memory", "must be at least 1MiB, got %s", o.JournalMemory)
	}
	if o.Port < 0 || o.Port > 65535 {
		v.add("outbound.port", "must be a port number, got %d", o.Port)
	}
	if o.Resolver != "" {
		if _, _, err := splitAddress(o.Resolver); err != nil {
			v.add("outbound.resolver", "%q: %v", o.Resolver, err)
		}
	}
}

func (v *validator) routes(rs []Route) {
	seen := map[string]bool{}
	for i, r := range rs {
		key := fmt.Sprintf("route[%d]", i)
		d := strings.ToLower(r.Domain)
		switch {
		case r.Domain == "":
			v.add(key+".domain", "missing: the recipient domain this route is for (or \"*\")")
		case r.Domain != "*" && !validDomain(r.Domain):
			v.add(key+".domain", "%q is not a valid domain name", r.Domain)
		case seen[d]:
			v.add(key+".domain", "another route is already for %q", r.Domain)
		}
		seen[d] = true
		if r.Host == "" {
			v.add(key+".host", "missing: the host to send to")
		} else if h, _, err := splitAddress(withDefaultPort(r.Host, "25")); err != nil || h == "" {
			v.add(key+".host", "%q is not a host or host:port", r.Host)
		}
		if r.TLS != "" && !validOutTLS(r.TLS) {
			v.add(key+".tls", "%q: want none, opportunistic, required or verify", r.TLS)
		}
		if (r.AuthUser == "") != (r.AuthPasswordFile == "") {
			v.add(key, "auth_user and auth_password_file go together")
		}
		if t := strings.ToLower(r.TLS); r.AuthUser != "" && (t == OutTLSNone || t == OutTLSOpportunistic) {
			v.add(key+".tls", "AUTH needs tls = \"required\" or \"verify\" (or leave tls empty to inherit), not %q", r.TLS)
		}
	}
}

// splitAddress checks a host:port address: the host is empty (all
// addresses), an IP or a host name; the port is 0–65535.
func splitAddress(addr string) (host, port string, err error) {
	host, port, err = net.SplitHostPort(addr)
	if err != nil {
		return "", "", errors.New("want host:port, e.g. \":25\" or \"127.0.0.1:10025\"")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", "", fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil && !validDomain(host) {
			return "", "", fmt.Errorf("host %q is neither an IP address nor a host name", host)
		}
	}
	return host, port, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// validDomain reports whether s is a syntactically valid DNS name:
// letters, digits and hyphens in labels of 1–63 characters, at most 253 in
// all, an optional trailing dot not allowed (RFC 1035 §2.3.1, RFC 5321 §4.1.2).
func validDomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// validOutTLS accepts an outbound TLS policy name, case-insensitive as
// tlspolicy.ParsePolicy reads it (cli parses the names; config stays free of
// smtpkit imports).
func validOutTLS(s string) bool {
	return oneOf(strings.ToLower(s), OutTLSNone, OutTLSOpportunistic, OutTLSRequired, OutTLSVerify)
}

func oneOf(s string, options ...string) bool {
	for _, o := range options {
		if s == o {
			return true
		}
	}
	return false
}

// CheckLMTP checks an LMTP server address: "unix:" and an absolute socket
// path, or host:port with a port from 1 to 65535.
func CheckLMTP(dest string) error {
	if path, ok := strings.CutPrefix(dest, "unix:"); ok {
		if !strings.HasPrefix(path, "/") {
			return fmt.Errorf("%q: the socket path after unix: must be absolute", dest)
		}
		return nil
	}
	host, port, err := net.SplitHostPort(dest)
	if err != nil {
		return fmt.Errorf("%q is neither unix:/path nor host:port: %v", dest, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not 1-65535", dest, port)
	}
	if _, err := netip.ParseAddr(host); err != nil && !validDomain(host) {
		return fmt.Errorf("%q: %q is not an address or host name", dest, host)
	}
	return nil
}
