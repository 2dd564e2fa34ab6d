// Package smtp is the protocol vocabulary shared by the server, the client
// and the tools: replies and their codes (RFC 5321 §4.2, enhanced status
// codes of RFC 3463/RFC 2034), the Error type that carries a reply, address
// and path parsing (RFC 5321 §4.1.2), ESMTP parameters, the strict dot
// reader and writer (RFC 5321 §4.5.2) and reply parsing. It imports no other
// smtpkit package.
package smtp

import (
	"bufio"
	"strconv"
	"strings"
)

// Enhanced is an enhanced mail system status code, "class.subject.detail"
// (RFC 3463 §2), for example "5.1.1". The zero value means none.
type Enhanced string

// Reply is one SMTP reply as it goes on the wire (RFC 5321 §4.2): a three
// digit code, an optional enhanced status code (RFC 2034 §3) and one or more
// lines of text. A reply with several lines is sent as a multi-line reply.
type Reply struct {
	Code     int
	Enhanced Enhanced
	Lines    []string
}

// R builds a reply with a single line of text.
func R(code int, enhanced Enhanced, text string) Reply {
	return Reply{Code: code, Enhanced: enhanced, Lines: []string{text}}
}

// Text is the reply's lines joined with spaces, for logs and errors.
func (r Reply) Text() string { return strings.Join(r.Lines, " ") }

// Positive reports whether the reply is 2xx or 3xx.
func (r Reply) Positive() bool { return r.Code >= 200 && r.Code < 400 }

// Temporary reports a 4xx (transient negative completion) reply.
func (r Reply) Temporary() bool { return r.Code >= 400 && r.Code < 500 }

// Permanent reports a 5xx (permanent negative completion) reply.
func (r Reply) Permanent() bool { return r.Code >= 500 && r.Code < 600 }

// OneLine is the reply on one line, as logs, reports and DSN diagnostics
// show it: code, enhanced code (when there is one) and the text lines
// joined with spaces.
func (r Reply) OneLine() string {
	s := strconv.Itoa(r.Code)
	if r.Enhanced != "" {
		s += " " + string(r.Enhanced)
	}
	if t := r.Text(); t != "" {
		s += " " + t
	}
	return s
}

// String formats the reply as it is sent, with CRLF line endings and the
// enhanced code on every line (RFC 2034 §3).
func (r Reply) String() string {
	var b strings.Builder
	r.appendTo(&b, true)
	return b.String()
}

// Write writes the reply to w. When enhanced is false (the client has not
// said EHLO, RFC 2034 §3 ties the codes to the extension) the enhanced code is
// left out. It writes straight into w's buffer: this is on every reply.
func (r Reply) Write(w *bufio.Writer, enhanced bool) error {
	r.appendTo(w, enhanced)
	_, err := w.Write(nil) // a bufio.Writer's error is sticky: this reports it
	return err
}

// textWriter is what appendTo needs: strings.Builder and bufio.Writer.
type textWriter interface {
	WriteString(string) (int, error)
	WriteByte(byte) error
}

func (r Reply) appendTo(b textWriter, enhanced bool) {
	lines := r.Lines
	if len(lines) == 0 {
		lines = []string{""}
	}
	var code [3]byte
	threeDigit := r.Code >= 100 && r.Code <= 999 // every real code (RFC 5321 §4.2)
	if threeDigit {
		code = [3]byte{byte('0' + r.Code/100), byte('0' + r.Code/10%10), byte('0' + r.Code%10)}
	}
	for i, l := range lines {
		if threeDigit {
			b.WriteByte(code[0])
			b.WriteByte(code[1])
			b.WriteByte(code[2])
		} else {
			b.WriteString(strconv.Itoa(r.Code))
		}
		if i == len(lines)-1 {
			b.WriteByte(' ')
		} else {
			b.WriteByte('-')
		}
		if enhanced && r.Enhanced != "" {
			b.WriteString(string(r.Enhanced))
			if l != "" {
				b.WriteByte(' ')
			}
		}
		b.WriteString(sanitizeLine(l))
		b.WriteString("\r\n")
	}
}

// sanitizeLine removes CR and LF from reply text so that text taken from a
// peer or an error can never break reply framing (RFC 5321 §4.2.1).
func sanitizeLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}

// Error is an error that carries the SMTP reply to give for it, plus the
// underlying cause for logs. Layers below the session return *Error when they
// know the right reply; any other error is treated as temporary (451 4.3.0).
type Error struct {
	Reply Reply
	Err   error
}

// Errorf-style constructor: E builds an *Error with a one-line reply.
func E(code int, enhanced Enhanced, text string) *Error {
	return &Error{Reply: R(code, enhanced, text)}
}

// Wrap returns an *Error with the given reply that wraps cause.
func Wrap(r Reply, cause error) *Error { return &Error{Reply: r, Err: cause} }

func (e *Error) Error() string {
	s := strconv.Itoa(e.Reply.Code)
	if e.Reply.Enhanced != "" {
		s += " " + string(e.Reply.Enhanced)
	}
	s += " " + e.Reply.Text()
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether the reply is 4xx.
func (e *Error) Temporary() bool { return e.Reply.Temporary() }

// Permanent reports whether the reply is 5xx.
func (e *Error) Permanent() bool { return e.Reply.Permanent() }
