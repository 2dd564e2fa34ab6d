package server

// observer.go: what sessions tell the outside world — the Observer events
// that feed metrics, their bounded reason labels, and the log fields of
// the per-message log line.

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"smtpkit/internal/smtp"
)

// Observer receives session events, typically to count them (internal/
// metrics implements it). Methods are called from session goroutines
// while the client waits: they must be fast, never block, and be safe for
// concurrent use. Every string argument comes from a small fixed set
// (listener names, the Reason constants, SASL mechanism names the server
// implements), so it can be used as a metric label.
type Observer interface {
	// ConnectionAccepted: a connection got a session slot.
	ConnectionAccepted(listener string)
	// ConnectionRefused: a connection was answered 421 and closed
	// (ReasonTooManyConnections, ReasonTooManyFromIP, ReasonShuttingDown).
	ConnectionRefused(listener, reason string)
	// TLSEstablished: a TLS handshake (implicit or STARTTLS) completed;
	// version is the crypto/tls version number.
	TLSEstablished(listener string, version uint16)
	// TLSFailed: a TLS handshake failed (bad client, expired certificate…).
	TLSFailed(listener string)
	// AuthResult: an AUTH exchange ended with valid (ok) or invalid or
	// throttled (!ok) credentials. Malformed exchanges are not reported.
	AuthResult(listener, mechanism string, ok bool)
	// MessageAccepted: 250 was sent after DATA or BDAT LAST. size is the
	// message size in octets, d the time from DATA (or the first BDAT) to
	// the 250, i.e. including the durable commit.
	MessageAccepted(listener string, size int64, tls bool, d time.Duration)
	// MessageRefused: a message's data was refused or lost (ReasonSize,
	// ReasonSmuggling, ReasonLineTooLong, ReasonStorage, ReasonPolicy,
	// ReasonAborted).
	MessageRefused(listener, reason string)
	// RecipientRefused: RCPT was answered with an error (ReasonRelay,
	// ReasonUnknownUser, ReasonTooManyRecipients, ReasonTemporary,
	// ReasonPolicy).
	RecipientRefused(listener, reason string)
	// EarlyTalker: a client sent something before the greeting during
	// the listener's pregreet wait, was answered 554 and dropped.
	EarlyTalker(listener string)
}

// Reasons passed to the Observer. They are metric label values: keep them
// stable, lower case, and few.
const (
	ReasonTooManyConnections = "too_many_connections" // the server-wide limit
	ReasonTooManyFromIP      = "too_many_from_ip"     // the per-IP limit
	ReasonRateFromIP         = "rate_from_ip"         // the per-IP connection rate
	ReasonShuttingDown       = "shutting_down"
	// ReasonProxyHeader: a PROXY protocol header was missing or broken
	// from a proxy_from peer, or sent by a peer that may not (proxy.go).
	ReasonProxyHeader = "proxy_header"

	ReasonSize        = "size"          // over limits.message_size (RFC 1870)
	ReasonSmuggling   = "smuggling"     // bare CR or LF in the data (RFC 5321 §2.3.8)
	ReasonLineTooLong = "line_too_long" // a text line over RFC 5321 §4.5.3.1.6
	ReasonStorage     = "storage"       // the backend failed: a temporary error
	ReasonPolicy      = "policy"        // the backend refused for good
	ReasonAborted     = "aborted"       // the connection broke or timed out mid-message

	ReasonRelay             = "relay"        // not a local domain, no AUTH (5.7.1)
	ReasonUnknownUser       = "unknown_user" // no such mailbox (5.1.1)
	ReasonTooManyRecipients = "too_many_recipients"
	ReasonTemporary         = "temporary" // any 4xx from the backend

	ReasonOther = "other"
)

// nopObserver is the Observer when Options.Observer is nil.
type nopObserver struct{}

func (nopObserver) ConnectionAccepted(string)                          {}
func (nopObserver) ConnectionRefused(string, string)                   {}
func (nopObserver) TLSEstablished(string, uint16)                      {}
func (nopObserver) TLSFailed(string)                                   {}
func (nopObserver) AuthResult(string, string, bool)                    {}
func (nopObserver) MessageAccepted(string, int64, bool, time.Duration) {}
func (nopObserver) MessageRefused(string, string)                      {}
func (nopObserver) RecipientRefused(string, string)                    {}
func (nopObserver) EarlyTalker(string)                                 {}

func observerOrNop(o Observer) Observer {
	if o == nil {
		return nopObserver{}
	}
	return o
}

// connRefusal maps admit's explanation to a reason label.
func connRefusal(why string) string {
	switch why {
	case whyShuttingDown:
		return ReasonShuttingDown
	case whyTooMany:
		return ReasonTooManyConnections
	case whyTooManyFromIP:
		return ReasonTooManyFromIP
	case whyRateFromIP:
		return ReasonRateFromIP
	}
	return ReasonOther
}

// The explanations admit gives; connRefusal maps them to labels.
const (
	whyShuttingDown  = "shutting down"
	whyTooMany       = "too many connections"
	whyTooManyFromIP = "too many connections from your address"
	whyRateFromIP    = "connecting too fast from your address"
)

// dataRefusal is the reason label for a message whose data was refused:
// err is the read error when there is one, else the write/commit error.
func dataRefusal(readErr, writeErr error) string {
	switch {
	case errors.Is(readErr, smtp.ErrBareLF) || errors.Is(readErr, smtp.ErrBareCR):
		return ReasonSmuggling
	case errors.Is(readErr, smtp.ErrLineTooLong):
		return ReasonLineTooLong
	case errors.Is(readErr, smtp.ErrTooLarge):
		return ReasonSize
	case readErr != nil:
		var se *smtp.Error
		if errors.As(readErr, &se) && se.Reply.Enhanced == smtp.EnhTooBig {
			return ReasonSize
		}
		return ReasonAborted
	}
	return backendRefusal(writeErr, ReasonStorage)
}

// rcptRefusal is the reason label for a refused RCPT.
func rcptRefusal(err error) string {
	var se *smtp.Error
	if errors.As(err, &se) {
		switch se.Reply.Enhanced {
		case smtp.EnhNotAuthorized:
			if se.Reply.Code == smtp.CodeTransactionFailed {
				return ReasonPolicy // 554 5.7.1: a block list, not relaying
			}
			return ReasonRelay
		case smtp.EnhBadMailbox:
			return ReasonUnknownUser
		case smtp.EnhTooManyRcpt.Temp(), smtp.EnhTooManyRcpt:
			return ReasonTooManyRecipients
		}
	}
	return backendRefusal(err, ReasonTemporary)
}

// backendRefusal is ReasonPolicy for a deliberate permanent refusal and
// temporary otherwise (unknown errors are temporary).
func backendRefusal(err error, temporary string) string {
	var se *smtp.Error
	if errors.As(err, &se) && se.Permanent() {
		if se.Reply.Enhanced == smtp.EnhTooBig {
			return ReasonSize
		}
		return ReasonPolicy
	}
	return temporary
}

// maxLoggedRcpts bounds the recipients listed on a "message accepted" line.
const maxLoggedRcpts = 10

// logRcpts is the recipient list for the log: the first maxLoggedRcpts
// addresses, then "+N more".
func logRcpts(rcpts []smtp.Address) []string {
	n := min(len(rcpts), maxLoggedRcpts)
	out := make([]string, 0, n+1)
	for _, r := range rcpts[:n] {
		out = append(out, r.String())
	}
	if more := len(rcpts) - n; more > 0 {
		out = append(out, "+"+strconv.Itoa(more)+" more")
	}
	return out
}

// rcptLog is the rcpt field of the "message accepted" line: logRcpts,
// formatted without reflection. The text form is what fmt prints for the
// []string ("[a@x b@y +3 more]"), the JSON form its JSON array.
type rcptLog []smtp.Address

func (r rcptLog) MarshalText() ([]byte, error) {
	n := min(len(r), maxLoggedRcpts)
	b := make([]byte, 0, 2+n*24)
	b = append(b, '[')
	for i, a := range r[:n] {
		if i > 0 {
			b = append(b, ' ')
		}
		b = a.AppendTo(b)
	}
	if more := len(r) - n; more > 0 {
		b = append(b, " +"...)
		b = strconv.AppendInt(b, int64(more), 10)
		b = append(b, " more"...)
	}
	return append(b, ']'), nil
}

func (r rcptLog) MarshalJSON() ([]byte, error) { return json.Marshal(logRcpts(r)) }

// tlsVersion is the tls_version log field: "none" without TLS.
func tlsVersion(st *tls.ConnectionState) string {
	if st == nil {
		return "none"
	}
	return tls.VersionName(st.Version)
}
