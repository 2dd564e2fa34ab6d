package server

import (
	"bytes"
	"errors"
	"strconv"
	"strings"

	"smtpkit/internal/smtp"
)

// command is one row of the command table: a verb, the states it runs in,
// and the checks before its handler. handle runs them in this order, the
// first that fails answers:
//
//  1. syntax: an argument that must be refused before anything else
//     (DATA takes none; BDAT's size frames the chunk, RFC 3030 §2);
//  2. gate, when gateFirst: whether the command exists here at all (AUTH:
//     502 without credentials, 538 outside TLS, RFC 4954 §4, §6);
//  3. states: in any other state, refuse answers (503, RFC 5321 §4.1.4);
//  4. gate, otherwise: the listener's TLS and AUTH predicate (MAIL:
//     RFC 3207 §4, RFC 6409 §4.3; STARTTLS: offered and not in TLS yet);
//  5. run, which replies itself and moves the session's state on.
//
// HELP's list and the verbs the session knows come from this table.
type command struct {
	verb      string
	unlisted  bool // not named by HELP (EXPN: RFC 5321 §3.5.2 lets it be disabled)
	syntax    func(s *session, arg string) (smtp.Reply, bool)
	gateFirst bool
	gate      func(s *session) (smtp.Reply, bool)
	states    stateSet
	refuse    func(s *session, arg string) smtp.Reply
	run       func(s *session, arg string)
}

// commands is the command table. Its order is HELP's.
var commands = [...]command{
	{verb: "EHLO", syntax: helloSyntax, states: anyState, run: func(s *session, arg string) { s.reply(s.cmdHello(arg, true)) }},
	{verb: "HELO", syntax: helloSyntax, states: anyState, run: func(s *session, arg string) { s.reply(s.cmdHello(arg, false)) }},
	{verb: "MAIL", states: in(stateReady), refuse: refuseMail, gate: (*session).mailGate,
		run: func(s *session, arg string) { s.reply(s.cmdMail(arg)) }},
	{verb: "RCPT", states: in(stateMail, stateRcpt), refuse: refuseRcpt,
		run: func(s *session, arg string) { s.reply(s.cmdRcpt(arg)) }},
	{verb: "DATA", syntax: noArgs, states: in(stateRcpt), refuse: refuseData, run: (*session).cmdData},
	{verb: "BDAT", syntax: bdatSyntax, states: in(stateRcpt, stateBdat), refuse: refuseBdat, run: (*session).cmdBdat},
	{verb: "RSET", syntax: noArgs, states: anyState, run: func(s *session, _ string) { s.abortTxn(); s.reply(replyOK) }},
	// RFC 5321 §4.1.1.9: the argument, if any, is ignored.
	{verb: "NOOP", states: anyState, run: func(s *session, _ string) { s.reply(replyOK) }},
	{verb: "QUIT", states: anyState, run: (*session).cmdQuit},
	{verb: "VRFY", states: anyState, run: func(s *session, arg string) { s.reply(cmdVrfy(arg)) }},
	// RFC 5321 §3.5.2: EXPN may be disabled; lists are not disclosed.
	{verb: "EXPN", unlisted: true, states: anyState, run: func(s *session, _ string) {
		s.reply(replyNoEXPN)
	}},
	{verb: "HELP", states: anyState, run: func(s *session, _ string) { s.reply(s.srv.help) }},
	{verb: "STARTTLS", syntax: noArgs, gate: (*session).startTLSGate, states: anyState, run: (*session).cmdStartTLS},
	{verb: "AUTH", gateFirst: true, gate: (*session).authGate, states: in(stateReady), refuse: refuseAuth, run: (*session).cmdAuth},
	// Postfix's XCLIENT_README and XFORWARD_README: for xclient_from peers
	// only, outside a mail transaction.
	{verb: "XCLIENT", unlisted: true, gateFirst: true, gate: (*session).xclientGate,
		states: in(stateGreeted, stateReady), refuse: refuseInTxn, run: (*session).cmdXClient},
	{verb: "XFORWARD", unlisted: true, gateFirst: true, gate: (*session).xclientGate,
		states: in(stateGreeted, stateReady), refuse: refuseInTxn, run: (*session).cmdXForward},
}

// lookup is the table's row for verb (upper case), nil for a verb the
// session does not know.
func lookup(verb string) *command {
	for i := range commands {
		if commands[i].verb == verb {
			return &commands[i]
		}
	}
	return nil
}

// verbNames are the table's verbs, the ones the session knows.
func verbNames() []string {
	var verbs []string
	for _, c := range commands {
		verbs = append(verbs, c.verb)
	}
	return verbs
}

// helpReply is HELP's answer: the verbs of the table (RFC 5321 §4.1.1.8).
func helpReply() smtp.Reply {
	var verbs []string
	for _, c := range commands {
		if !c.unlisted {
			verbs = append(verbs, c.verb)
		}
	}
	return replyHelp(verbs)
}

// handle parses one command line and runs it through its row of the
// command table.
func (s *session) handle(line []byte) {
	s.current = nil
	if s.isProxyHeader(line) {
		s.refuseProxyHeader()
		return
	}
	if s.isHTTP(line) {
		s.log.Warn("HTTP request on SMTP port, closing", "line", printable(line))
		s.quit = true
		return
	}
	cmd, err := smtp.ParseCommand(line, s.srv.verbs)
	if err != nil {
		s.replyErr(err)
		return
	}
	c := lookup(cmd.Verb)
	if c == nil {
		s.reply(replyUnknownVerb)
		return
	}
	s.current, s.arrivedIn = c, s.state
	if c.syntax != nil {
		if r, ok := c.syntax(s, cmd.Arg); !ok {
			s.reply(r)
			return
		}
	}
	if c.gateFirst && !s.passes(c.gate) {
		return
	}
	if !c.states.has(s.state) {
		s.reply(c.refuse(s, cmd.Arg))
		return
	}
	if !c.gateFirst && !s.passes(c.gate) {
		return
	}
	c.run(s, cmd.Arg)
}

// passes runs a command's gate (if it has one) and answers its refusal.
func (s *session) passes(gate func(*session) (smtp.Reply, bool)) bool {
	if gate == nil {
		return true
	}
	r, ok := gate(s)
	if !ok {
		s.reply(r)
	}
	return ok
}

// noArgs refuses an argument to a command that takes none.
func noArgs(_ *session, arg string) (smtp.Reply, bool) {
	if arg != "" {
		return replyNoParams, false
	}
	return smtp.Reply{}, true
}

// helloSyntax checks EHLO's and HELO's domain (RFC 5321 §4.1.1.1).
func helloSyntax(_ *session, arg string) (smtp.Reply, bool) {
	if name := strings.TrimSpace(arg); name == "" || strings.ContainsAny(name, " \t") {
		return replyEHLOSyntax, false
	}
	return smtp.Reply{}, true
}

func refuseMail(s *session, _ string) smtp.Reply {
	if s.state == stateGreeted {
		return replyNeedHelo
	}
	return replyNestedMail
}

func refuseRcpt(s *session, _ string) smtp.Reply {
	if s.state == stateBdat {
		return replyRcptDuringBDAT
	}
	return replyNeedMail
}

func refuseData(s *session, _ string) smtp.Reply {
	switch s.state {
	case stateBdat:
		return replyDataAfterBDAT
	case stateMail:
		return replyNeedRcpt
	}
	return replyNeedMail
}

// refuseBdat reads and drops the chunk first, so that the session stays
// in step (RFC 3030 §2: the chunk follows whatever the answer).
func refuseBdat(s *session, arg string) smtp.Reply {
	n, _, _ := parseBdatArg(arg) // bdatSyntax passed
	s.discardChunk(n)
	if s.state == stateMail {
		return replyNeedRcpt
	}
	return replyNeedMail
}

func refuseAuth(s *session, _ string) smtp.Reply {
	if !s.state.inTxn() {
		return replyNeedEHLO
	}
	// RFC 4954 §4: AUTH is not permitted during a mail transaction.
	return replyAuthInTransaction
}

func (s *session) cmdQuit(string) {
	s.reply(replyClosing(s.srv.opts.Hostname))
	s.quit = true
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
	if s.state != stateGreeted {
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
	name := strings.TrimSpace(arg) // helloSyntax checked it
	s.abortTxn()
	s.info.Helo = name
	if err := s.helloHook(); err != nil {
		s.log.Info("hello refused", "helo", name, "err", err)
		s.state, s.esmtp = stateGreeted, ehlo
		return errReply(err)
	}
	s.state, s.esmtp = stateReady, ehlo
	if !ehlo {
		return replyHelo(s.srv.opts.Hostname)
	}
	return replyEHLO(s.srv.opts.Hostname, name, s.extensions())
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
		"BINARYMIME",          // RFC 3030 §3: BDAT data stored octet for octet
		// RFC 9422 §4: the limits this session enforces (mail.go).
		"LIMITS " + smtp.FormatLimits(smtp.Limits{RcptMax: s.limits.Recipients, MailMax: s.limits.SessionTxns}),
	}
	if s.srv.opts.DSN {
		ext = append(ext, "DSN") // RFC 3461 §4
	}
	if s.canStartTLS() {
		ext = append(ext, "STARTTLS") // RFC 3207; never offered again inside TLS
	}
	if s.authOffered() {
		ext = append(ext, "AUTH "+strings.Join(s.mechanisms(), " ")) // RFC 4954
	}
	if s.xclientOK {
		ext = append(ext, "XCLIENT "+strings.Join(xclientAttrs, " "), "XFORWARD "+strings.Join(xforwardAttrs, " "))
	}
	if s.info.TLS != nil {
		// RFC 8689 §2, §4.2: REQUIRETLS is for TLS-protected sessions
		// only: offered after STARTTLS or on implicit TLS, never before.
		ext = append(ext, "REQUIRETLS")
	}
	ext = append(ext, "HELP")
	return ext
}

// cmdVrfy never tells whether a user exists (RFC 5321 §3.5.3: 252 is the
// answer for "will accept but cannot verify").
func cmdVrfy(arg string) smtp.Reply {
	if strings.TrimSpace(arg) == "" {
		return replyVRFYSyntax
	}
	return replyCannotVRFY
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
