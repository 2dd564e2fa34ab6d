package queue

// result.go: what a Courier reports for one recipient, as values. The
// queue formats them once, at its edge: its log lines, `queue show` and the
// DSN (internal/dsn) each read the same fields.

import (
	"crypto/tls"
	"errors"
	"net/netip"
	"strconv"

	"smtpkit/internal/smtp"
)

// Result is the outcome of an attempt for one recipient.
type Result struct {
	Rcpt string
	// Err is nil when the next hop accepted the recipient; an *smtp.Error
	// whose Permanent() is true fails it now (bounce); anything else is
	// temporary and retried (house rule 3: unknown errors are temporary).
	// Its reply gives the DSN's Status.
	Err error
	// Remote is the next hop the attempt talked to (when every hop failed,
	// the one whose failure is reported); zero when none was tried.
	Remote Remote
	// Reply is what Remote said about this recipient: its reply to RCPT,
	// to DATA, after the final "." (the 250 of a delivery too), or to the
	// greeting, EHLO, AUTH or MAIL when that ended the attempt. Zero when
	// no server said anything about it: the connection failed, or smtpkit
	// decided itself (a TLS policy, a route, a message the client refused
	// before MAIL because the server cannot take it). Then Err carries
	// smtpkit's own reply, and the DSN names no Remote-MTA.
	Reply smtp.Reply
	// TLS is how the attempt's connection was protected.
	TLS TLS
	// PossibleDuplicate marks a failed attempt whose next hop may have
	// taken the message all the same: the connection was lost after the
	// end of the data and before the final reply (RFC 1047). The retry is
	// logged with possible_duplicate=true.
	PossibleDuplicate bool
	// Relayed marks a recipient the next hop accepted without offering
	// DSN: it could not be told NOTIFY, so a NOTIFY=SUCCESS recipient gets
	// a "relayed" notice from us (RFC 3461 §6.2.1.2).
	Relayed bool
}

// Remote is a next hop: the name it was reached by and the address.
type Remote struct {
	Host string     // MX or route host name, or the address of a literal
	Addr netip.Addr // the address connected to; invalid when unknown
}

// String is "host[address]", or "" for the zero Remote.
func (r Remote) String() string {
	switch {
	case r.Host == "" && !r.Addr.IsValid():
		return ""
	case !r.Addr.IsValid():
		return r.Host
	}
	return r.Host + "[" + r.Addr.String() + "]"
}

// TLS are the facts about an attempt's connection, for metrics and logs.
type TLS struct {
	// Policy is the outbound TLS policy the attempt ran under ("none",
	// "opportunistic", "required", "verify"); "" when no connection was
	// tried.
	Policy string
	// Mechanism is what decided the plan: "dane", "mta-sts", "route" or
	// "default" (tlspolicy.Mechanism); "" when no connection was tried.
	Mechanism string
	// Version is the TLS version negotiated (tls.VersionTLS13, ...); 0
	// when the connection was not encrypted.
	Version uint16
}

// String is the version's name ("TLS 1.3"), or "no TLS".
func (t TLS) String() string {
	if t.Version == 0 {
		return "no TLS"
	}
	return tls.VersionName(t.Version)
}

// Said reports whether a server gave the reply of r (Reply is set).
func (r Result) Said() bool { return r.Reply.Code != 0 }

// Detail is r in one line for logs and `queue show`: who said what
// ("mx.example.net[192.0.2.1] said: 550 5.1.1 no such user"), or, when no
// server said anything, the next hop and smtpkit's own reason.
func (r Result) Detail() string {
	where := r.Remote.String()
	if r.Said() {
		s := where + " said: " + formatReply(r.Reply)
		if r.Err == nil {
			s += " (" + r.TLS.String() + ")"
		}
		return s
	}
	var reason string
	switch {
	case r.Err != nil:
		_, reason, _ = describe(r.Err)
	default:
		reason = "delivered"
	}
	if where == "" {
		return reason
	}
	return where + ": " + reason
}

// formatReply is a reply in one line: code, enhanced code, text.
func formatReply(rep smtp.Reply) string {
	s := strconv.Itoa(rep.Code)
	if rep.Enhanced != "" {
		s += " " + string(rep.Enhanced)
	}
	if t := rep.Text(); t != "" {
		s += " " + t
	}
	return oneLine(s)
}

// describe turns an attempt's error into DSN terms: status, diagnostic and
// diagnostic type (RFC 3464 §2.3.4, §2.3.6). It is smtpkit's own account
// (the type is "X-smtpkit"); a server's reply is kept as the reply itself
// (Result.Reply), for the DSN to report as "smtp".
func describe(err error) (status, diag, typ string) {
	var se *smtp.Error
	if errors.As(err, &se) {
		rep := se.Reply
		status = string(rep.Enhanced)
		if status == "" {
			status = strconv.Itoa(rep.Code/100) + ".0.0"
		}
		return status, formatReply(rep), diagOurs
	}
	return string(smtp.EnhOther.Temp()), oneLine(err.Error()), diagOurs
}

// diagOurs is the diagnostic type of smtpkit's own reports (RFC 3464
// §2.3.6 allows extension types starting "X-").
const diagOurs = "X-smtpkit"
