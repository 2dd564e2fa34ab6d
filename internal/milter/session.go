package milter

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	gomilter "github.com/emersion/go-milter"
)

// Client is what the milter is told about the SMTP client at the connect
// stage.
type Client struct {
	// Addr is the client's address and port (the zero value when not
	// known: the milter is told "unknown").
	Addr netip.AddrPort
	// Name is the client's host name; "" sends "[address]", as Postfix
	// does for a client without a verified name.
	Name string
	// Listener names the listener, the {daemon_name} macro.
	Listener string
}

// Session is one milter connection, for one SMTP session: Open at the
// connect stage, then Helo, Mail, Rcpt, Message (or Abort) for each
// transaction, Close at the end. It is not safe for concurrent use (the
// stages of one SMTP session come one after the other).
type Session struct {
	f  *Filter
	cs *gomilter.ClientSession // nil once closed
	// done: no more questions to this milter in this session (it
	// accepted at connect or HELO, or it is down under accept).
	done bool
	// failed is the session-wide answer after a tempfail at the connect
	// stage or a failure under tempfail: every later stage gets it.
	failed *Verdict
	// txn: MAIL was sent and the message not finished or aborted.
	txn bool
	// settled: the milter accepted or discarded the current message at
	// MAIL or RCPT; it is asked nothing more about it.
	settled bool
}

// Open connects to the milter, negotiates and sends the connect stage
// (SMFIC_CONNECT with the macros j, {daemon_name}, v, {client_addr},
// {client_port}, {client_name}). The Session is returned in every case;
// when the milter is down its Verdict is the default action and the
// Session answers every later stage the same way.
//
// A Reject is meant for the greeting (the caller sends it instead of the
// 220); a Tempfail at this stage is remembered and given at every MAIL.
func (f *Filter) Open(c Client) (*Session, Verdict) {
	s := &Session{f: f}
	cs, err := f.dial()
	if err != nil {
		return s, s.fail(err)
	}
	s.cs = cs
	name := c.Name
	if name == "" {
		name = "unknown"
		if c.Addr.IsValid() {
			name = "[" + c.Addr.Addr().String() + "]"
		}
	}
	family, addr := gomilter.FamilyUnknown, ""
	if ip := c.Addr.Addr(); ip.Is4() {
		family, addr = gomilter.FamilyInet, ip.String()
	} else if ip.Is6() {
		family, addr = gomilter.FamilyInet6, ip.String()
	}
	err = cs.Macros(gomilter.CodeConn, "j", f.opts.Hostname, "{daemon_name}", c.Listener, "v", "smtpkit",
		"{client_addr}", addr, "{client_port}", strconv.Itoa(int(c.Addr.Port())), "{client_name}", name)
	if err != nil {
		return s, s.fail(err)
	}
	v := s.answer(cs.Conn(name, family, c.Addr.Port(), addr))
	switch v.Action {
	case Accept, Discard:
		s.finish()
	case Tempfail:
		s.failed = &v
	}
	return s, v
}

// Helo sends HELO/EHLO's name (SMFIC_HELO) with the TLS macros
// ({tls_version}, {cipher}, {cipher_bits}) once TLS is up. A Reject or
// Tempfail is the reply to that HELO/EHLO.
//
// A tempfail remembered from the connect stage (or a failure under
// tempfail) is not given to HELO: it waits for MAIL, so that the client
// hears it where it can act on it.
func (s *Session) Helo(name string, cs *tls.ConnectionState) Verdict {
	if _, asked := s.idle(); !asked {
		return Verdict{Action: Accept, Cached: true}
	}
	if cs != nil {
		suite := tls.CipherSuiteName(cs.CipherSuite)
		if err := s.cs.Macros(gomilter.CodeHelo, "{tls_version}", tlsVersion(cs.Version), "{cipher}", suite,
			"{cipher_bits}", strconv.Itoa(cipherBits(cs.CipherSuite))); err != nil {
			return s.fail(err)
		}
	}
	v := s.answer(s.cs.Helo(name))
	if v.Action == Accept || v.Action == Discard {
		s.finish()
	}
	return v
}

// Mail starts a transaction (SMFIC_MAIL, with MAIL's ESMTP parameters
// and the macros {mail_addr}, {auth_authen}, {auth_type}).
func (s *Session) Mail(from string, params []string, authUser string) Verdict {
	s.Abort() // a transaction left open: its message never came
	s.settled = false
	if v, asked := s.idle(); !asked {
		return v
	}
	// An {auth_authen} macro, even empty, is taken for authentication
	// by some milters (rspamd): sent only for an authenticated client.
	macros := []string{"{mail_addr}", from}
	if authUser != "" {
		macros = append(macros, "{auth_authen}", authUser, "{auth_type}", "SMTP AUTH")
	}
	if err := s.cs.Macros(gomilter.CodeMail, macros...); err != nil {
		return s.fail(err)
	}
	v := s.answer(s.cs.Mail(from, params))
	switch v.Action {
	case Continue:
		s.txn = true
	case Accept, Discard:
		s.settled = true
	}
	return v
}

// Rcpt sends one accepted recipient (SMFIC_RCPT, macro {rcpt_addr}). A
// Reject or Tempfail refuses only this recipient; a Discard discards the
// whole message.
func (s *Session) Rcpt(rcpt string) Verdict {
	if v, asked := s.idle(); !asked {
		return v
	}
	if s.settled || !s.txn {
		return Verdict{Action: Accept, Cached: true}
	}
	if err := s.cs.Macros(gomilter.CodeRcpt, "{rcpt_addr}", rcpt); err != nil {
		return s.fail(err)
	}
	v := s.answer(s.cs.Rcpt(rcpt, nil))
	if v.Action == Accept || v.Action == Discard {
		s.settled, s.txn = true, false
	}
	return v
}

// Abort tells the milter the current transaction ended without its
// message (SMFIC_ABORT: RSET, a new MAIL, a refused DATA, the end of the
// session).
func (s *Session) Abort() {
	if !s.txn || s.cs == nil {
		s.txn = false
		return
	}
	s.txn = false
	if err := s.cs.Abort(); err != nil {
		s.fail(err)
	}
}

// Close ends the milter session (SMFIC_QUIT).
func (s *Session) Close() {
	s.finish()
}

// Asked reports whether the milter still takes part in the current
// message: not settled at MAIL or RCPT, not done for the session, not
// failed.
func (s *Session) Asked() bool {
	return s.cs != nil && !s.done && s.failed == nil && !s.settled && s.txn
}

// Failed is the remembered refusal of the session — a tempfail at the
// connect stage, or the milter down under tempfail — that every later
// stage gets; ok is false when there is none.
func (s *Session) Failed() (v Verdict, ok bool) {
	if s.failed == nil {
		return Verdict{}, false
	}
	v = *s.failed
	v.Err, v.Cached = nil, true
	return v, true
}

// idle reports whether the milter is to be asked at a stage: when not,
// v is the answer (the remembered failure, or Accept).
func (s *Session) idle() (v Verdict, asked bool) {
	switch {
	case s.failed != nil:
		v := *s.failed
		v.Err, v.Cached = nil, true
		return v, false
	case s.done || s.cs == nil:
		return Verdict{Action: Accept, Cached: true}, false
	}
	return Verdict{Action: Continue}, true
}

// answer turns one stage's result into a Verdict; an error or an answer
// the protocol does not allow is a failure.
func (s *Session) answer(a *gomilter.Action, err error) Verdict {
	if err != nil {
		return s.fail(err)
	}
	v, ok := verdict(a)
	if !ok {
		return s.fail(fmt.Errorf("milter: unexpected answer %q (code %d)", rune(a.Code), a.SMTPCode))
	}
	return v
}

// errDown is the cause recorded when the milter is not there at all.
var errDown = errors.New("milter: not available")

// fail drops the connection and applies the default action: accept
// goes on without the milter for the rest of the session, tempfail
// answers 451 4.7.1 now and at every later stage.
func (s *Session) fail(err error) Verdict {
	if err == nil {
		err = errDown
	}
	if s.cs != nil {
		s.cs.Close() // best effort: the connection is likely broken
		s.cs = nil
	}
	s.txn = false
	if s.f.opts.Accept {
		s.done = true
		return Verdict{Action: Accept, Err: err}
	}
	v := Verdict{Action: Tempfail, Reply: replyTempfail, Err: err}
	s.failed = &v
	return v
}

// finish closes the connection: the milter has no more say.
func (s *Session) finish() {
	s.done = true
	if s.cs != nil {
		s.cs.Close()
		s.cs = nil
	}
}

func tlsVersion(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return "unknown"
}

// cipherBits is the symmetric key size of a cipher suite.
func cipherBits(id uint16) int {
	switch id {
	case tls.TLS_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA:
		return 128
	}
	return 256
}
