package inbound

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"

	"smtpkit/internal/milter"
	"smtpkit/internal/server"
	"smtpkit/internal/smtp"
)

// milter.go: content filters speaking the milter protocol
// (internal/milter; [[milter]], listener.milters). Each milter of a
// listener gets one connection per SMTP session, opened at Connect and
// closed at Disconnect, and is asked at every stage: connect, HELO,
// MAIL (server.TransactionHooks), RCPT, the message at the end of DATA,
// abort at RSET or a dropped transaction. Milters apply to every client
// of their listeners, authenticated and trusted ones too (rspamd scores
// and signs submission). The first milter that refuses decides; a
// recipient refused by a milter is refused alone.
//
// The message is held (hold.go) until the end of DATA, after our own
// verification, DMARC policy and greylist (verify.go) had their say:
// then each milter gets it whole, and its changes — header fields added, inserted,
// changed or deleted, the body replaced, the envelope sender and
// recipients changed — are made before any copy is written, so every
// stored copy (the Maildir ones and the queue's) has them.

// milterState is one session's milter connections (sessionState.milter).
type milterState struct {
	sessions []*milter.Session // one per milter of the listener, in order
	names    []string
	// discard: a milter said SMFIR_DISCARD for the current transaction.
	discard bool
}

// milterConnect opens the listener's milters for the session s. A milter
// that rejects at the connect stage refuses the session: 554 in place of
// the greeting (RFC 5321 §3.1), with the milter's text.
func (b *Backend) milterConnect(s *server.SessionInfo, st *sessionState) error {
	filters := b.opts.Milters[s.Listener]
	if len(filters) == 0 {
		return nil
	}
	m := &milterState{}
	st.milter = m
	c := milter.Client{Addr: remoteAddrPort(s.Remote), Listener: s.Listener}
	for _, f := range filters {
		ms, v := f.Open(c)
		m.sessions = append(m.sessions, ms)
		m.names = append(m.names, f.Name())
		b.milterSaw(s, f.Name(), "connect", v)
		if v.Action == milter.Reject {
			r := v.Reply
			r.Code = smtp.CodeTransactionFailed
			return &smtp.Error{Reply: r}
		}
	}
	return nil
}

// milterHello is the HELO stage; a refusal is the reply to HELO/EHLO.
func (b *Backend) milterHello(s *server.SessionInfo) error {
	m := b.milterOf(s)
	if m == nil {
		return nil
	}
	for i, ms := range m.sessions {
		v := ms.Helo(s.Helo, s.TLS)
		b.milterSaw(s, m.names[i], "helo", v)
		// A milter failing here (down, under tempfail) is answered at
		// MAIL, as one down at the connect stage: HELO still succeeds.
		if v.Refused() && v.Err == nil {
			return v.Error()
		}
	}
	return nil
}

// milterData refuses DATA (before its 354) when a milter failed during
// the transaction under tempfail, after some recipients were accepted:
// the message could not be filtered, so it is not taken.
func (b *Backend) milterData(env *server.Envelope) error {
	m := b.milterOf(env.Session)
	if m == nil {
		return nil
	}
	for _, ms := range m.sessions {
		if v, ok := ms.Failed(); ok {
			return v.Error()
		}
	}
	return nil
}

// Mail is the MAIL stage, with MAIL's ESMTP parameters
// (server.TransactionHooks): a refusal is MAIL's reply, and the milters
// asked before the one that refused are told the transaction is off.
func (b *Backend) Mail(_ context.Context, s *server.SessionInfo, from smtp.Address, params []string) error {
	m := b.milterOf(s)
	if m == nil {
		return nil
	}
	m.discard = false
	for i, ms := range m.sessions {
		v := ms.Mail(from.String(), params, s.AuthUser)
		b.milterSaw(s, m.names[i], "mail", v)
		if v.Refused() {
			m.abort()
			return v.Error()
		}
		m.discard = m.discard || v.Action == milter.Discard
	}
	return nil
}

// milterRecipient is the RCPT stage for a recipient our own checks
// accepted: a refusal refuses this recipient only.
func (b *Backend) milterRecipient(s *server.SessionInfo, rcpt smtp.Address) error {
	m := b.milterOf(s)
	if m == nil {
		return nil
	}
	for i, ms := range m.sessions {
		v := ms.Rcpt(rcpt.String())
		b.milterSaw(s, m.names[i], "rcpt", v)
		if v.Refused() {
			return v.Error()
		}
		m.discard = m.discard || v.Action == milter.Discard
	}
	return nil
}

// Reset is told a transaction was dropped (server.TransactionHooks): the
// milters get SMFIC_ABORT.
func (b *Backend) Reset(s *server.SessionInfo) {
	if m := b.milterOf(s); m != nil {
		m.abort()
		m.discard = false
	}
}

// milterDisconnect closes the session's milter connections.
func (b *Backend) milterDisconnect(st *sessionState) {
	if st == nil || st.milter == nil {
		return
	}
	for _, ms := range st.milter.sessions {
		ms.Close()
	}
}

func (m *milterState) abort() {
	for _, ms := range m.sessions {
		ms.Abort()
	}
}

// milterOf is the milter state of s, nil when no milter applies.
func (b *Backend) milterOf(s *server.SessionInfo) *milterState {
	if len(b.opts.Milters) == 0 || s == nil {
		return nil
	}
	st := b.sessions.get(s)
	if st == nil {
		return nil
	}
	return st.milter
}

// milterFilters reports whether the message of env goes through the
// milters: one of them still takes part, or one discarded it.
func (b *Backend) milterFilters(env *server.Envelope) *milterState {
	m := b.milterOf(env.Session)
	if m == nil {
		return nil
	}
	if m.discard {
		return m
	}
	for _, ms := range m.sessions {
		if ms.Asked() {
			return m
		}
	}
	return nil
}

// milterSaw counts and logs one milter answer (not the remembered ones).
func (b *Backend) milterSaw(s *server.SessionInfo, name, stage string, v milter.Verdict) {
	if v.Cached {
		return
	}
	log := b.opts.Logger.With("conn", s.ID, "milter", name, "stage", stage)
	switch {
	case v.Err != nil:
		b.milterEvent(name, "failed")
		log.Warn("milter unavailable; default action applied", "action", v.Action.String(), "err", v.Err)
	case v.Refused():
		b.milterEvent(name, v.Action.String())
		log.Info("milter refused", "action", v.Action.String(), "code", v.Reply.Code, "reply", v.Reply.OneLine())
	case v.Action != milter.Continue:
		b.milterEvent(name, v.Action.String())
		log.Debug("milter", "action", v.Action.String())
	}
}

func (b *Backend) milterEvent(name, action string) {
	if b.opts.Events != nil {
		b.opts.Events.MilterAction(name, action)
	}
}

// remoteAddrPort is the client's address and port, the zero value when
// unknown.
func remoteAddrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		return netip.AddrPortFrom(remoteIP(a), uint16(t.Port))
	}
	if a != nil {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
	}
	return netip.AddrPort{}
}

var _ server.TransactionHooks = (*Backend)(nil)

// logMilterEdits logs what the milters changed in a message.
func logMilterEdits(log *slog.Logger, e *milter.Edits) {
	if e == nil {
		return
	}
	var hdr []string
	for _, h := range e.Header {
		hdr = append(hdr, h.Name)
	}
	log.Info("milter changes", "headers", strings.Join(hdr, ","), "body_replaced", e.ReplaceBody,
		"from_changed", e.ChangeFrom, "rcpts_added", len(e.AddRcpt), "rcpts_removed", len(e.DelRcpt),
		"quarantine", e.Quarantine)
}
