package milter

import (
	"strconv"
	"strings"

	gomilter "github.com/emersion/go-milter"

	"smtpkit/internal/smtp"
)

// Action is what a milter decided at a stage.
type Action int

const (
	// Continue: go on, and ask the milter at the next stage.
	Continue Action = iota
	// Accept: accepted without further questions to this milter — for
	// the rest of the session at the connect and HELO stages, for the
	// rest of the message at the others (SMFIR_ACCEPT), or the milter is
	// down and its default action is accept.
	Accept
	// Reject: refused with Verdict.Reply, a 5xx (SMFIR_REJECT, or
	// SMFIR_REPLYCODE with a 5xx code). At RCPT only that recipient.
	Reject
	// Tempfail: refused with Verdict.Reply, a 4xx (SMFIR_TEMPFAIL,
	// SMFIR_REPLYCODE with a 4xx code, or the milter is down and its
	// default action is tempfail).
	Tempfail
	// Discard: the message is accepted (250) and thrown away
	// (SMFIR_DISCARD), also when said at RCPT.
	Discard
)

// String is the action as the metrics and logs name it.
func (a Action) String() string {
	switch a {
	case Continue:
		return "continue"
	case Accept:
		return "accept"
	case Reject:
		return "reject"
	case Tempfail:
		return "tempfail"
	case Discard:
		return "discard"
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// Verdict is a milter's answer at one stage.
type Verdict struct {
	Action Action
	// Reply is what the client gets for Reject and Tempfail.
	Reply smtp.Reply
	// Err is set when the milter failed (unreachable, timed out, broke
	// the protocol) at this stage: Action is then its default action.
	Err error
	// Cached marks the remembered answer of an earlier stage (a tempfail
	// at connect, a failure under tempfail, an accept for the session):
	// the milter was not asked. Count and log only answers not cached.
	Cached bool
}

// Refused reports whether the verdict refuses the command.
func (v Verdict) Refused() bool { return v.Action == Reject || v.Action == Tempfail }

// Error is the verdict's reply as an error for the server, nil unless
// Refused.
func (v Verdict) Error() error {
	if !v.Refused() {
		return nil
	}
	return &smtp.Error{Reply: v.Reply, Err: v.Err}
}

// verdict maps a milter's action to a Verdict: SMFIR_REJECT → 550 5.7.1,
// SMFIR_TEMPFAIL → 451 4.7.1 (Postfix's replies), SMFIR_REPLYCODE → the
// milter's own code, enhanced code and text (a 4xx tempfails, a 5xx
// rejects; any other code is a protocol error).
func verdict(a *gomilter.Action) (Verdict, bool) {
	switch a.Code {
	case gomilter.ActContinue, gomilter.ActSkip:
		return Verdict{Action: Continue}, true
	case gomilter.ActAccept:
		return Verdict{Action: Accept}, true
	case gomilter.ActDiscard:
		return Verdict{Action: Discard}, true
	case gomilter.ActReject:
		return Verdict{Action: Reject, Reply: replyReject}, true
	case gomilter.ActTempFail:
		return Verdict{Action: Tempfail, Reply: replyTempfail}, true
	case gomilter.ActReplyCode:
		r, ok := ParseReply(a.SMTPCode, a.SMTPText)
		if !ok {
			return Verdict{}, false
		}
		if r.Temporary() {
			return Verdict{Action: Tempfail, Reply: r}, true
		}
		return Verdict{Action: Reject, Reply: r}, true
	}
	return Verdict{}, false
}

// ParseReply makes the SMTP reply of an SMFIR_REPLYCODE: code is 4xx or
// 5xx, text may start with an enhanced code of the same class ("5.7.1
// Gtube pattern"; RFC 3463 §2) and may hold several lines as libmilter's
// smfi_setmlreply sends them ("550-5.7.1 first\r\n550 5.7.1 last"). The
// enhanced code defaults to 5.7.1 (4.7.1), the text to Postfix's; a 421
// becomes 451.
func ParseReply(code int, text string) (smtp.Reply, bool) {
	if code < 400 || code > 599 {
		return smtp.Reply{}, false
	}
	if code == smtp.CodeUnavailable {
		// 421 means the server closes the connection (RFC 5321 §3.8),
		// which a milter's answer does not make us do: a plain 451.
		code = smtp.CodeLocalError
	}
	r := smtp.Reply{Code: code}
	for i, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		if i > 0 {
			line = cutReplyPrefix(line, code)
		}
		enh, rest := cutEnhanced(line)
		if enh != "" && enh[0] == byte('0'+code/100) {
			if r.Enhanced == "" {
				r.Enhanced = enh
			}
			line = rest
		}
		if line = strings.TrimSpace(line); line != "" {
			r.Lines = append(r.Lines, line)
		}
	}
	if r.Enhanced == "" {
		r.Enhanced = smtp.EnhNotAuthorized
		if r.Temporary() {
			r.Enhanced = r.Enhanced.Temp()
		}
	}
	if len(r.Lines) == 0 {
		r.Lines = replyReject.Lines
		if r.Temporary() {
			r.Lines = replyTempfail.Lines
		}
	}
	if len(r.Lines) > maxReplyLines {
		r.Lines = r.Lines[:maxReplyLines]
	}
	return r, true
}

// maxReplyLines bounds a milter's multi-line reply (libmilter allows 32).
const maxReplyLines = 32

// cutReplyPrefix removes "550-" or "550 " from a continuation line.
func cutReplyPrefix(line string, code int) string {
	p := strconv.Itoa(code)
	if len(line) >= 4 && line[:3] == p && (line[3] == '-' || line[3] == ' ') {
		return line[4:]
	}
	return line
}

// cutEnhanced splits "5.7.1 text" into the enhanced code and the text
// (RFC 3463 §2: class "." subject "." detail, subject up to 3 digits,
// detail up to 3).
func cutEnhanced(s string) (smtp.Enhanced, string) {
	code, rest, _ := strings.Cut(s, " ")
	parts := strings.Split(code, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || (parts[0] != "2" && parts[0] != "4" && parts[0] != "5") {
		return "", s
	}
	for _, p := range parts[1:] {
		if len(p) < 1 || len(p) > 3 {
			return "", s
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return "", s
			}
		}
	}
	return smtp.Enhanced(code), rest
}
