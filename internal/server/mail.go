package server

import (
	"errors"
	"strings"

	"smtpkit/internal/smtp"
)

// mailGate is MAIL's TLS/AUTH predicate: what must hold on this listener
// before a transaction may start: TLS where required (RFC 3207 §4), AUTH
// on submission (RFC 6409 §4.3). The command table checked the sequence
// (EHLO first, no transaction open) before.
func (s *session) mailGate() (smtp.Reply, bool) {
	switch {
	case s.listener.TLS == TLSRequired && s.info.TLS == nil:
		return replyNeedSTARTTLS, false
	case s.listener.Role.IsSubmission() && s.info.AuthUser == "":
		return replyAuthRequired, false
	}
	return smtp.Reply{}, true
}

// cmdMail handles MAIL FROM (RFC 5321 §4.1.1.2) and its parameters: SIZE
// (RFC 1870), BODY (RFC 6152, RFC 3030), SMTPUTF8 (RFC 6531), AUTH
// (RFC 4954 §5) and REQUIRETLS (RFC 8689 §2).
func (s *session) cmdMail(arg string) smtp.Reply {
	if s.sessionTxns >= s.limits.SessionTxns {
		// RFC 9422 §4.1: past MAILMAX transactions the server may close
		// the session; the client goes on in a new one.
		s.log.Info("too many transactions", "transactions", s.sessionTxns)
		s.quit = true
		return replyTooManyTxns(s.srv.opts.Hostname)
	}
	path, params, err := smtp.ParseMail(arg, s.esmtp)
	if err != nil {
		return errReply(err)
	}
	t := txn{from: path.Addr}
	for k, v := range params {
		if !s.esmtp {
			return replyParamsNeedEHLO
		}
		switch k {
		case "SIZE":
			n, _, err := params.Size()
			if err != nil {
				return errReply(err)
			}
			// RFC 1870 §6.2: a declared size over the limit is refused at MAIL.
			if n > s.limits.MessageSize {
				return replyTooBig
			}
			t.size = n
		case "BODY":
			body, err := params.Body()
			if err != nil {
				return errReply(err)
			}
			// RFC 3030 §3: BINARYMIME is advertised (with CHUNKING); its
			// data must come by BDAT, which cmdData enforces.
			t.body = body
		case "SMTPUTF8":
			if v != "" {
				return replySMTPUTF8Value
			}
			t.smtputf8 = true
		case "REQUIRETLS":
			if r, ok := s.requireTLSParam(v); !ok {
				return r
			}
			t.requireTLS = true
		case "RET", "ENVID":
			if r, ok := s.mailDSNParam(&t, params); !ok {
				return r
			}
		case "AUTH":
			// RFC 4954 §5: accepted; the value is informational and only
			// trusted from authenticated peers, which we do not relay for.
			if _, err := smtp.DecodeXtext(v); err != nil {
				return replyBadAuthParam
			}
		default:
			return replyBadMailParam(k)
		}
	}
	if !t.smtputf8 && !path.Addr.IsASCII() {
		return replyNeedSMTPUTF8
	}
	if err := s.backend().Sender(s.backendContext(), &s.info, path.Addr); err != nil {
		s.log.Info("sender refused", "from", path.Addr.String(), "err", err)
		return errReply(err)
	}
	if err := s.mailHook(path.Addr, params); err != nil {
		s.log.Info("sender refused", "from", path.Addr.String(), "err", err)
		return errReply(err)
	}
	s.txn, s.state = t, stateMail
	s.sessionTxns++
	return replySenderOK
}

// requireTLSParam checks MAIL's REQUIRETLS parameter (RFC 8689 §2): it
// takes no value, and it may be given only in a TLS-protected session,
// where it is advertised; outside TLS it is refused with 530 5.7.10
// ("encryption needed", the code RFC 8689 §4.2.1 names for a REQUIRETLS
// message without a TLS session), before the sender is looked at.
func (s *session) requireTLSParam(value string) (smtp.Reply, bool) {
	switch {
	case value != "":
		return replyRequireTLSValue, false
	case s.info.TLS == nil:
		return replyRequireTLSNeedsTLS, false
	}
	return smtp.Reply{}, true
}

// mailDSNParam takes MAIL's RET and ENVID (RFC 3461 §4.3, §4.4) into t
// when the DSN extension is offered; refused 555 when it is not.
func (s *session) mailDSNParam(t *txn, params smtp.Params) (smtp.Reply, bool) {
	if !s.srv.opts.DSN {
		return replyBadMailParam("RET or ENVID"), false
	}
	var err error
	if t.ret, err = params.Ret(); err != nil {
		return errReply(err), false
	}
	if t.envID, err = params.EnvID(); err != nil {
		return errReply(err), false
	}
	return smtp.Reply{}, true
}

// rcptParams checks RCPT's parameters: NOTIFY and ORCPT (RFC 3461 §4.1,
// §4.2) when the DSN extension is offered; anything else is 555
// (RFC 5321 §4.1.1.11).
func (s *session) rcptParams(params smtp.Params) (smtp.RcptDSN, smtp.Reply, bool) {
	for k := range params {
		if !s.srv.opts.DSN || (k != "NOTIFY" && k != "ORCPT") {
			return smtp.RcptDSN{}, replyBadRcptParam, false
		}
	}
	d, err := params.RcptDSN()
	if err != nil {
		return smtp.RcptDSN{}, errReply(err), false
	}
	return d, smtp.Reply{}, true
}

// cmdRcpt handles RCPT TO (RFC 5321 §4.1.1.3).
func (s *session) cmdRcpt(arg string) smtp.Reply {
	path, params, err := smtp.ParseRcpt(arg, s.txn.smtputf8)
	if err != nil {
		return errReply(err)
	}
	dsnParams, r, ok := s.rcptParams(params)
	if !ok {
		return r
	}
	addr := path.Addr
	if addr.Domain == "" && strings.EqualFold(addr.Local, "postmaster") {
		// RFC 5321 §4.1.1.3: <Postmaster> without a domain is ours.
		addr.Domain = *s.srv.postmaster.Load()
	}
	// Source routes (RFC 5321 §4.1.2, Appendix C) and routing tricks in
	// the local part (percent hack, bang paths, quoted "@") are relay
	// attempts: refused on every listener.
	if path.SourceRoute || addr.RoutingTrick() {
		s.log.Info("relay trick refused", "rcpt", addr.String())
		s.srv.obs.RecipientRefused(s.info.Listener, ReasonRelay)
		return replyRelayDenied
	}
	for _, r := range s.txn.rcpts {
		if strings.EqualFold(r.String(), addr.String()) {
			return replyRcptDuplicate
		}
	}
	if len(s.txn.rcpts) >= s.limits.Recipients {
		// RFC 5321 §4.5.3.1.10: 452 for too many recipients.
		s.srv.obs.RecipientRefused(s.info.Listener, ReasonTooManyRecipients)
		return replyTooManyRcpt
	}
	if s.sessionRcpts >= s.limits.SessionRcpts {
		s.srv.obs.RecipientRefused(s.info.Listener, ReasonTooManyRecipients)
		return replyTooManyRcptSession
	}
	if err := s.backend().Recipient(s.backendContext(), &s.info, s.txn.from, addr); err != nil {
		s.log.Info("recipient refused", "from", s.txn.from.String(), "rcpt", addr.String(), "err", err)
		s.srv.obs.RecipientRefused(s.info.Listener, rcptRefusal(err))
		return errReply(err)
	}
	s.txn.rcpts = append(s.txn.rcpts, addr)
	s.txn.rcptDSN = append(s.txn.rcptDSN, dsnParams)
	s.state = stateRcpt
	s.sessionRcpts++
	return replyRcptOK
}

// errReply is the reply for err: its own when it carries one, otherwise
// 451 4.3.0 (unknown errors are temporary).
func errReply(err error) smtp.Reply {
	var se *smtp.Error
	if errors.As(err, &se) {
		return se.Reply
	}
	return replyLocalError
}
