package server

import (
	"bytes"
	"errors"
	"strconv"
	"strings"

	"smtpkit/internal/smtp"
)

// Replies shared by several commands.
var (
	replyOK          = smtp.R(smtp.CodeOK, smtp.EnhOK, "OK")
	replyNeedHelo    = smtp.R(smtp.CodeBadSequence, smtp.EnhInvalidCommand, "Send EHLO or HELO first")
	replyNoParams    = smtp.R(smtp.CodeSyntaxParams, smtp.EnhBadParams, "Syntax error, no parameters allowed")
	replyUnknownVerb = smtp.R(smtp.CodeSyntax, smtp.EnhSyntax, "Command unrecognized")
	// RFC 3030 §3: BODY=BINARYMIME only where BINARYMIME is advertised.
	replyNoBinaryMIME = smtp.R(smtp.CodeParamsPerm, smtp.EnhBadParams, "BODY=BINARYMIME not supported here (RFC 3030 §3)")
	// The replies of every message, built once.
	replySenderOK = smtp.R(smtp.CodeOK, smtp.EnhSenderOK, "Sender OK")
	replyRcptOK   = smtp.R(smtp.CodeOK, smtp.EnhRecipientOK, "Recipient OK")
	replyDataGo   = smtp.R(smtp.CodeStartData, "", "End data with <CR><LF>.<CR><LF>")
)

// handle parses and runs one command line. The command table is the switch
// below: each case checks sequencing and then runs the command.
func (s *session) handle(line []byte) {
	if s.isHTTP(line) {
		s.log.Warn("HTTP request on SMTP port, closing", "line", printable(line))
		s.quit = true
		return
	}
	cmd, err := smtp.ParseCommand(line)
	if err != nil {
		s.replyErr(err)
		return
	}
	switch cmd.Verb {
	case "EHLO":
		s.reply(s.cmdHello(cmd.Arg, true))
	case "HELO":
		s.reply(s.cmdHello(cmd.Arg, false))
	case "MAIL":
		s.reply(s.cmdMail(cmd.Arg))
	case "RCPT":
		s.reply(s.cmdRcpt(cmd.Arg))
	case "DATA":
		s.cmdData(cmd.Arg)
	case "BDAT":
		s.cmdBdat(cmd.Arg)
	case "RSET":
		s.reply(s.cmdRset(cmd.Arg))
	case "NOOP":
		// RFC 5321 §4.1.1.9: the argument, if any, is ignored.
		s.reply(replyOK)
	case "QUIT":
		s.reply(smtp.R(smtp.CodeClosing, smtp.EnhOK, s.srv.opts.Hostname+" closing connection"))
		s.quit = true
	case "VRFY":
		s.reply(s.cmdVrfy(cmd.Arg))
	case "EXPN":
		// RFC 5321 §3.5.2: EXPN may be disabled; lists are not disclosed.
		s.reply(smtp.R(smtp.CodeNotImplemented, smtp.EnhInvalidCommand, "EXPN not available"))
	case "HELP":
		s.reply(s.cmdHelp())
	case "STARTTLS":
		s.cmdStartTLS(cmd.Arg)
	case "AUTH":
		s.cmdAuth(cmd.Arg)
	default:
		s.reply(replyUnknownVerb)
	}
}

// replyErr answers err: an *smtp.Error with its own reply, anything else
// with 451 4.3.0 (unknown errors are temporary).
func (s *session) replyErr(err error) {
	var se *smtp.Error
	if !errors.As(err, &se) {
		s.log.Error("internal error", "err", err)
	}
	s.reply(errReply(err))
}

// isHTTP spots an HTTP request line or header sent to the SMTP port (a
// browser or a cross-protocol attack); such sessions are closed at once.
func (s *session) isHTTP(line []byte) bool {
	if s.helo {
		return false
	}
	if bytes.HasSuffix(line, []byte(" HTTP/1.1")) || bytes.HasSuffix(line, []byte(" HTTP/1.0")) {
		return true
	}
	verb, _, _ := bytes.Cut(line, []byte(" "))
	return bytes.HasSuffix(verb, []byte(":")) // "Host:", "User-Agent:" …
}

// cmdHello handles EHLO and HELO (RFC 5321 §4.1.1.1). Both reset the
// transaction; EHLO lists the extensions this listener offers now.
func (s *session) cmdHello(arg string, ehlo bool) smtp.Reply {
	name := strings.TrimSpace(arg)
	if name == "" || strings.ContainsAny(name, " \t") {
		return smtp.R(smtp.CodeSyntaxParams, smtp.EnhBadParams, "Syntax: EHLO hostname")
	}
	s.abortTxn()
	s.helo, s.esmtp = true, ehlo
	s.info.Helo = name
	if !ehlo {
		return smtp.R(smtp.CodeOK, "", s.srv.opts.Hostname)
	}
	lines := []string{s.srv.opts.Hostname + " greets " + name}
	lines = append(lines, s.extensions()...)
	return smtp.Reply{Code: smtp.CodeOK, Lines: lines}
}

// extensions are the EHLO keywords (RFC 5321 §4.1.1.1) offered in the
// session's current state.
func (s *session) extensions() []string {
	ext := []string{
		"PIPELINING", // RFC 2920
		"SIZE " + strconv.FormatInt(s.limits.MessageSize, 10), // RFC 1870
		"8BITMIME",            // RFC 6152
		"ENHANCEDSTATUSCODES", // RFC 2034
		"SMTPUTF8",            // RFC 6531
		"CHUNKING",            // RFC 3030
	}
	if s.canStartTLS() {
		ext = append(ext, "STARTTLS") // RFC 3207; never offered again inside TLS
	}
	if s.authOffered() {
		ext = append(ext, "AUTH "+strings.Join(s.mechanisms(), " ")) // RFC 4954
	}
	ext = append(ext, "HELP")
	return ext
}

func (s *session) cmdRset(arg string) smtp.Reply {
	if arg != "" {
		return replyNoParams
	}
	s.abortTxn()
	return replyOK
}

// cmdVrfy never tells whether a user exists (RFC 5321 §3.5.3: 252 is the
// answer for "will accept but cannot verify").
func (s *session) cmdVrfy(arg string) smtp.Reply {
	if strings.TrimSpace(arg) == "" {
		return smtp.R(smtp.CodeSyntaxParams, smtp.EnhBadParams, "Syntax: VRFY address")
	}
	return smtp.R(smtp.CodeCannotVRFY, smtp.EnhProtocolOK, "Cannot VRFY user, but will accept message and attempt delivery")
}

func (s *session) cmdHelp() smtp.Reply {
	return smtp.Reply{Code: smtp.CodeHelp, Enhanced: smtp.EnhOK, Lines: []string{
		"smtpkit: commands are",
		"EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH",
		"See RFC 5321",
	}}
}

// printable makes a peer's line safe for a log: at most 100 bytes, control
// bytes shown as '?'.
func printable(b []byte) string {
	if len(b) > 100 {
		b = b[:100]
	}
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			c = '?'
		}
		out[i] = c
	}
	return string(out)
}
