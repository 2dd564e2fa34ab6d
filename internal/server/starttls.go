package server

import (
	"smtpkit/internal/smtp"
)

// canStartTLS reports whether STARTTLS is offered: on listeners with TLS
// and not yet inside TLS (RFC 3207 §4.2: not offered after the handshake).
func (s *session) canStartTLS() bool {
	return (s.listener.TLS == TLSOpportunistic || s.listener.TLS == TLSRequired) && s.info.TLS == nil
}

// startTLSGate is STARTTLS's predicate: once (RFC 3207 §4.2), and only
// where offered.
func (s *session) startTLSGate() (smtp.Reply, bool) {
	switch {
	case s.info.TLS != nil:
		return replyTLSActive, false
	case !s.canStartTLS():
		return replyNoTLS, false
	}
	return smtp.Reply{}, true
}

// cmdStartTLS runs RFC 3207. Anything the client pipelined after STARTTLS
// is discarded unread (the CVE-2011-0411 class of command injection), and
// after the handshake the session starts over: no HELO, no transaction, no
// authentication (RFC 3207 §4.2).
func (s *session) cmdStartTLS(string) {
	// RFC 3207 does not require EHLO before STARTTLS, and some clients
	// (gsasl --starttls) skip it; the session starts over afterwards anyway.
	s.reply(replyTLSReady)
	if err := s.conn.flush(); err != nil {
		s.quit = true
		return
	}
	if n := s.conn.discardBuffered(); n > 0 {
		s.log.Warn("discarding plaintext pipelined after STARTTLS", "bytes", n)
	}
	if err := s.handshake(); err != nil {
		s.log.Info("starttls handshake failed", "err", err)
		s.quit = true
		return
	}
	s.abortTxn()
	s.state, s.esmtp = stateGreeted, false
	s.info.Helo = ""
	s.info.AuthUser = ""
}
