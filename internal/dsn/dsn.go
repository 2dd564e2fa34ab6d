// Package dsn builds delivery status notifications: the bounces and delay
// warnings an MTA sends back to a message's envelope sender when it cannot
// deliver (RFC 3464 "An Extensible Message Format for Delivery Status
// Notifications", RFC 3461 §6 on when and how they are generated, RFC 6522
// multipart/report, RFC 3834 Auto-Submitted, RFC 6533 for internationalized
// messages).
//
// Build only formats; who receives the result and how it is sent is the
// caller's business. A DSN is always sent with the null reverse-path "<>"
// (RFC 5321 §4.5.5, RFC 3461 §6.2) so that it can never cause another one.
package dsn

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"smtpkit/internal/smtp"
)

// MaxHeaders bounds the copy of the original message's header block
// included in the third part of the report (RFC 3462 §3 allows headers
// only; we also cap their size so a bounce never grows without limit).
const MaxHeaders = 64 << 10

// Action is a per-recipient Action field value (RFC 3464 §2.3.3).
type Action string

// Actions smtpkit reports. "delivered" and "relayed" are only sent on
// request (RFC 3461 §4.1 NOTIFY=SUCCESS).
const (
	Failed    Action = "failed"
	Delayed   Action = "delayed"
	Delivered Action = "delivered" // final delivery into a mailbox of ours
	Relayed   Action = "relayed"   // handed to a next hop without DSN (RFC 3461 §6.2.1.2)
)

// Recipient is one per-recipient block of the message/delivery-status part
// (RFC 3464 §2.3).
type Recipient struct {
	Addr string // the recipient as given in RCPT TO, without angle brackets
	// ORCPT is RCPT's ORCPT parameter, reported as Original-Recipient
	// (RFC 3464 §2.3.1, RFC 3461 §4.2); zero leaves the field out.
	ORCPT  smtp.ORCPT
	Action Action
	// Status is an RFC 3463 enhanced status code, e.g. "5.1.1". Empty means
	// "5.0.0" for failed and "4.0.0" for delayed.
	Status string
	// RemoteMTA is the host name of the server that said Reply (RFC 3464
	// §2.3.5). It is reported only together with a Reply: a server that
	// said nothing is never named as the one that did.
	RemoteMTA string
	// Reply is the server's reply, when a server gave the outcome (for
	// example 550 5.1.1 no such user): Diagnostic-Code of type "smtp"
	// (RFC 3464 §2.3.6), formatted here. Zero when no server said it.
	Reply smtp.Reply
	// Diagnostic describes the problem when no server replied (Reply is
	// zero): smtpkit's own decision or a connection that failed. Empty
	// leaves Diagnostic-Code out (RFC 3464 §2.3.6).
	Diagnostic string
	// DiagnosticType is the diagnostic-type of Diagnostic; smtpkit's own
	// reports use "X-smtpkit" (RFC 3464 §2.3.6 allows extension types
	// starting "X-"). Empty means "smtp", the type of a server's reply
	// text kept by an older queue record.
	DiagnosticType string
	LastAttempt    time.Time // zero leaves Last-Attempt-Date out
	// WillRetryUntil is reported for delayed recipients (RFC 3464 §2.3.9).
	WillRetryUntil time.Time
}

// Report is everything Build needs.
type Report struct {
	ReportingMTA string // our host name: Reporting-MTA and the From: domain
	// EnvID is MAIL's ENVID (RFC 3461 §4.4), reported as
	// Original-Envelope-Id (RFC 3464 §2.2.1); empty leaves it out.
	EnvID   string
	To      string    // the original envelope sender; must not be empty
	Arrival time.Time // when we accepted the original message (RFC 3464 §2.2.5)
	Date    time.Time // the report's Date: header
	// MessageID is the report's Message-ID without angle brackets; empty
	// generates one at ReportingMTA.
	MessageID string
	// Boundary is the MIME boundary; empty generates a random one. Tests
	// set it to get stable output.
	Boundary   string
	Recipients []Recipient
	// Headers is the original message's header block (or the start of the
	// message: Build stops at the first empty line and at MaxHeaders).
	Headers []byte
	// Redacted leaves the original message out entirely, header block
	// included (Headers is ignored): the report for a message received
	// with REQUIRETLS. RFC 8689 §5: a non-delivery report carries the
	// original's metadata, so it must travel as protected as the original
	// (REQUIRETLS) unless redacted; a bounce goes to the null reverse-path,
	// which no REQUIRETLS check guards (§4.2.1, §5: it should not be
	// discarded for want of REQUIRETLS on the way back). Redacting it keeps
	// the original's content out of clear text on any return path.
	Redacted bool
	// Full is the whole original message, returned as a message/rfc822
	// part instead of the header block when the sender asked RET=FULL
	// (RFC 3461 §4.3) in a failure report; nil returns Headers. The
	// caller bounds it (MaxFull). Ignored when Redacted.
	Full []byte
}

// MaxFull bounds the original message a RET=FULL failure report returns;
// a larger one is returned as its header block only.
const MaxFull = 10 << 20

// EightBit reports whether the report carries 8-bit octets in the
// returned message, so that it needs 8BITMIME on its way back.
func (r Report) EightBit() bool { return !r.Redacted && r.Full != nil && !isASCII(string(r.Full)) }

// ErrNullSender is returned when asked to report to the null sender: a
// bounce about a bounce is never sent (RFC 3461 §6.2, RFC 5321 §4.5.5).
var ErrNullSender = errors.New("dsn: the original sender is the null sender; no DSN is sent")

// Delayed reports whether r is a delay warning: every recipient is delayed.
func (r Report) Delayed() bool {
	for _, rc := range r.Recipients {
		if rc.Action != Delayed {
			return false
		}
	}
	return len(r.Recipients) > 0
}

// Success reports whether r is a success notice (RFC 3461 §6.2.1): every
// recipient was delivered or relayed.
func (r Report) Success() bool {
	for _, rc := range r.Recipients {
		if rc.Action != Delivered && rc.Action != Relayed {
			return false
		}
	}
	return len(r.Recipients) > 0
}

// International reports whether the report must be sent as an
// internationalized message (RFC 6533): the sender, a recipient or the
// original headers are not ASCII. The sender of such a report needs the
// SMTPUTF8 extension (RFC 6531) to send it.
func (r Report) International() bool {
	if !isASCII(r.To) || !isASCII(string(r.headers())) {
		return true
	}
	for _, rc := range r.Recipients {
		if !isASCII(rc.Addr) {
			return true
		}
	}
	return false
}

// headers is the original header block the report carries: none when
// Redacted.
func (r Report) headers() []byte {
	if r.Redacted {
		return nil
	}
	return headerBlock(r.Headers)
}

// Build formats r as a complete RFC 5322 message with CRLF line endings:
// the header, then a multipart/report (RFC 6522) with a human-readable
// text/plain part, a message/delivery-status part (RFC 3464 §2) and the
// original header block as text/rfc822-headers (left out when r is
// Redacted: RFC 6522 §3 makes the third part optional). When r is International
// the last two become message/global-delivery-status and
// message/global-headers (RFC 6533 §6).
func Build(r Report) ([]byte, error) {
	if r.To == "" || r.To == "<>" {
		return nil, ErrNullSender
	}
	if r.ReportingMTA == "" {
		return nil, errors.New("dsn: no reporting MTA")
	}
	if len(r.Recipients) == 0 {
		return nil, errors.New("dsn: no recipients to report")
	}
	for _, s := range []string{r.To, r.ReportingMTA, r.MessageID, r.Boundary} {
		if strings.ContainsAny(s, "\r\n") {
			return nil, errors.New("dsn: line break in a header value")
		}
	}
	boundary := r.Boundary
	if boundary == "" {
		boundary = "=_smtpkit_" + randomHex(12)
	}
	msgID := r.MessageID
	if msgID == "" {
		msgID = randomHex(16) + "@" + r.ReportingMTA
	}
	intl := r.International()
	var b bytes.Buffer
	writeHeader(&b, r, msgID, boundary)
	// The three parts of RFC 3464 §2; with UTF-8 in the report the
	// internationalized types of RFC 6533 §3, 6.
	startPart(&b, boundary, intl, "text/plain; charset=us-ascii", "text/plain; charset=utf-8", "Notification")
	writeHuman(&b, r, intl)
	b.WriteString("\r\n") // the CRLF before a boundary belongs to it (RFC 2046 §5.1.1)
	startPart(&b, boundary, intl, "message/delivery-status", "message/global-delivery-status", "Delivery report")
	writeStatus(&b, r, intl)
	if !r.Redacted && r.Full != nil {
		b.WriteString("\r\n")
		writeFull(&b, r, boundary, intl)
	} else if !r.Redacted {
		b.WriteString("\r\n")
		what := "Undelivered message headers"
		if r.Success() {
			what = "Message headers"
		}
		startPart(&b, boundary, intl, "text/rfc822-headers", "message/global-headers", what)
		b.Write(crlfLines(r.headers()))
	}
	fmt.Fprintf(&b, "\r\n--%s--\r\n", boundary)
	return b.Bytes(), nil
}

// startPart starts a body part: the boundary line, its content type (the
// RFC 6533 international one, 8bit, when intl) and description.
func startPart(b *bytes.Buffer, boundary string, intl bool, asciiType, intlType, description string) {
	fmt.Fprintf(b, "--%s\r\n", boundary)
	if intl {
		fmt.Fprintf(b, "Content-Type: %s\r\nContent-Transfer-Encoding: 8bit\r\n", intlType)
	} else {
		fmt.Fprintf(b, "Content-Type: %s\r\n", asciiType)
	}
	fmt.Fprintf(b, "Content-Description: %s\r\n\r\n", description)
}

// writeHeader writes the RFC 5322 header of the report.
func writeHeader(b *bytes.Buffer, r Report, msgID, boundary string) {
	subject := "Undelivered Mail Returned to Sender"
	switch {
	case r.Delayed():
		subject = "Delayed Mail (still being retried)"
	case r.Success():
		subject = "Successful Mail Delivery Report"
	}
	fmt.Fprintf(b, "Date: %s\r\n", r.Date.Format(time.RFC1123Z))
	fmt.Fprintf(b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", r.ReportingMTA)
	fmt.Fprintf(b, "To: <%s>\r\n", r.To)
	fmt.Fprintf(b, "Subject: %s\r\n", subject)
	fmt.Fprintf(b, "Message-ID: <%s>\r\n", msgID)
	// RFC 3834 §5: responses generated by a process are auto-replied, so
	// that responders down the line do not answer them.
	b.WriteString("Auto-Submitted: auto-replied\r\n")
	b.WriteString("MIME-Version: 1.0\r\n")
	fmt.Fprintf(b, "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n", boundary)
	b.WriteString("\r\n")
	b.WriteString("This is a MIME-encapsulated message (a delivery status notification).\r\n\r\n")
}

// writeHuman writes the text/plain part: what happened, in words.
func writeHuman(b *bytes.Buffer, r Report, intl bool) {
	fmt.Fprintf(b, "This is the mail system at host %s.\r\n\r\n", r.ReportingMTA)
	switch {
	case r.Delayed():
		b.WriteString("Your message could not be delivered yet to the recipients below.\r\n")
		b.WriteString("Delivery will be retried; you do not need to send it again.\r\n")
	case r.Success():
		b.WriteString("Your message was successfully delivered to the recipients below,\r\n")
		b.WriteString("as you asked (NOTIFY=SUCCESS). \"relayed\" means it was handed to a\r\n")
		b.WriteString("system that does not send delivery notifications itself.\r\n")
	default:
		b.WriteString("Your message could not be delivered to the recipients below.\r\n")
		if r.Redacted {
			b.WriteString("It required TLS on every hop (REQUIRETLS, RFC 8689), so nothing\r\n")
			b.WriteString("of it is returned here, not even its headers.\r\n")
		} else if r.Full != nil {
			b.WriteString("It has been returned; it is attached.\r\n")
		} else {
			b.WriteString("It has been returned; its headers are attached.\r\n")
		}
	}
	b.WriteString("\r\n")
	for _, rc := range r.Recipients {
		// Two values share this line: keep the whole line within the limit.
		line := "<" + oneLine(rc.Addr, intl) + ">: " + oneLine(humanReason(rc), intl)
		fmt.Fprintf(b, "%s\r\n", fit(line, maxLineOctets))
		if rc.Action == Delayed && !rc.WillRetryUntil.IsZero() {
			fmt.Fprintf(b, "    (will be retried until %s)\r\n", rc.WillRetryUntil.Format(time.RFC1123Z))
		}
	}
}

func humanReason(rc Recipient) string {
	switch {
	case rc.Action == Delivered:
		return "delivered to mailbox"
	case rc.Action == Relayed && rc.RemoteMTA != "":
		return "relayed to " + rc.RemoteMTA + ", which does not send delivery notifications"
	case rc.Action == Relayed:
		return "relayed to a system that does not send delivery notifications"
	case rc.said() && rc.RemoteMTA != "":
		return rc.RemoteMTA + " said: " + rc.Reply.OneLine()
	case rc.said():
		return rc.Reply.OneLine()
	case rc.Diagnostic != "":
		return rc.Diagnostic
	}
	return "status " + status(rc)
}

// writeStatus writes the message/delivery-status body (RFC 3464 §2.1):
// the per-message fields, then one block per recipient, blocks separated
// by an empty line.
func writeStatus(b *bytes.Buffer, r Report, intl bool) {
	if r.EnvID != "" {
		fmt.Fprintf(b, "Original-Envelope-Id: %s\r\n", oneLine(r.EnvID, false))
	}
	fmt.Fprintf(b, "Reporting-MTA: dns; %s\r\n", r.ReportingMTA)
	if !r.Arrival.IsZero() {
		fmt.Fprintf(b, "Arrival-Date: %s\r\n", r.Arrival.Format(time.RFC1123Z))
	}
	for _, rc := range r.Recipients {
		b.WriteString("\r\n")
		// RFC 6533 §3: addresses that are not ASCII use the utf-8 type.
		addrType := "rfc822"
		if intl && !isASCII(rc.Addr) {
			addrType = "utf-8"
		}
		if !rc.ORCPT.IsZero() {
			fmt.Fprintf(b, "Original-Recipient: %s\r\n", oneLine(rc.ORCPT.Field(intl), intl))
		}
		fmt.Fprintf(b, "Final-Recipient: %s; %s\r\n", addrType, oneLine(rc.Addr, intl))
		fmt.Fprintf(b, "Action: %s\r\n", rc.Action)
		fmt.Fprintf(b, "Status: %s\r\n", status(rc))
		if rc.said() && rc.RemoteMTA != "" {
			fmt.Fprintf(b, "Remote-MTA: dns; %s\r\n", oneLine(rc.RemoteMTA, intl))
		}
		typ, diag := rc.DiagnosticType, rc.Diagnostic
		if rc.said() {
			typ, diag = "smtp", rc.Reply.OneLine()
		}
		if diag != "" {
			if typ == "" {
				typ = "smtp"
			}
			fmt.Fprintf(b, "Diagnostic-Code: %s; %s\r\n", typ, oneLine(diag, intl))
		}
		if !rc.LastAttempt.IsZero() {
			fmt.Fprintf(b, "Last-Attempt-Date: %s\r\n", rc.LastAttempt.Format(time.RFC1123Z))
		}
		if rc.Action == Delayed && !rc.WillRetryUntil.IsZero() {
			fmt.Fprintf(b, "Will-Retry-Until: %s\r\n", rc.WillRetryUntil.Format(time.RFC1123Z))
		}
	}
}

// said reports whether a server gave the recipient's outcome.
func (rc Recipient) said() bool { return rc.Reply.Code != 0 }

// status is the recipient's Status value: its code when it is a well formed
// enhanced code of the right class, else the class default (RFC 3464
// §2.3.4: failed is 5.x.x, delayed is 4.x.x).
func status(rc Recipient) string {
	class := byte('5')
	switch rc.Action {
	case Delayed:
		class = '4'
	case Delivered, Relayed:
		class = '2'
	}
	s := rc.Status
	if validStatus(s) && s[0] == class {
		return s
	}
	if validStatus(s) {
		return string(class) + s[1:]
	}
	return string(class) + ".0.0"
}

// validStatus checks the RFC 3463 §2 syntax class.subject.detail.
func validStatus(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(s) > 11 {
		return false
	}
	if parts[0] != "2" && parts[0] != "4" && parts[0] != "5" {
		return false
	}
	for _, p := range parts[1:] {
		if p == "" || len(p) > 3 {
			return false
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
	}
	return true
}

// headerBlock returns the header block at the start of msg: everything up
// to and including the line break before the first empty line, cut at the
// last line break within MaxHeaders.
func headerBlock(msg []byte) []byte {
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		msg = msg[:i+2]
	} else if i := bytes.Index(msg, []byte("\n\n")); i >= 0 {
		msg = msg[:i+1]
	}
	if len(msg) > MaxHeaders {
		msg = msg[:MaxHeaders]
		if i := bytes.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i+1]
		}
	}
	return msg
}

// crlfLines normalizes line endings to CRLF, cuts lines longer than 998
// octets (RFC 5322 §2.1.1; a message that came in by BDAT may have them)
// and guarantees the result ends with CRLF (CRLF is law: we never emit a
// bare CR or LF).
func crlfLines(p []byte) []byte {
	var b bytes.Buffer
	for len(p) > 0 {
		i := bytes.IndexAny(p, "\r\n")
		line := p
		if i >= 0 {
			line = p[:i]
		}
		b.Write(line[:min(len(line), maxLineOctets)])
		b.WriteString("\r\n")
		if i < 0 {
			break
		}
		if p[i] == '\r' && i+1 < len(p) && p[i+1] == '\n' {
			i++
		}
		p = p[i+1:]
	}
	return b.Bytes()
}

// maxLineOctets is RFC 5322 §2.1.1's limit, without the CRLF.
const maxLineOctets = 998

// oneLine makes s safe as a header field value: control characters
// (including CR and LF, which a remote reply could smuggle in) become
// spaces, invalid UTF-8 is replaced, non-ASCII becomes '?' unless the
// report is internationalized (message/delivery-status is 7bit, RFC 3464
// §2.1), and the value is cut at 900 octets to stay under the 998-octet
// line limit (RFC 5322 §2.1.1).
func oneLine(s string, utf8OK bool) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		if r >= 0x80 && !utf8OK {
			return '?'
		}
		return r
	}, s)
	return fit(s, 900)
}

// fit cuts s to at most n octets, at a UTF-8 character boundary.
func fit(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func randomHex(n int) string {
	p := make([]byte, n)
	rand.Read(p)
	return hex.EncodeToString(p)
}

// writeFull writes the returned message (RET=FULL, RFC 3461 §4.3) as the
// third part: message/rfc822 (message/global when intl, RFC 6533 §3),
// 8bit when it has 8-bit octets, its lines CRLF and at most 998 octets.
func writeFull(b *bytes.Buffer, r Report, boundary string, intl bool) {
	fmt.Fprintf(b, "--%s\r\n", boundary)
	typ := "message/rfc822"
	if intl {
		typ = "message/global"
	}
	fmt.Fprintf(b, "Content-Type: %s\r\n", typ)
	if r.EightBit() || intl {
		b.WriteString("Content-Transfer-Encoding: 8bit\r\n")
	}
	b.WriteString("Content-Description: Undelivered message\r\n\r\n")
	b.Write(crlfLines(r.Full))
}
