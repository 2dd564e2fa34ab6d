package server

import "context"

// SessionHooks is implemented by a Backend that follows a session from
// its start to its end, not only its transactions: connection screening
// (DNSBL/DNSWL), content filters (the milter protocol's connect and HELO
// stages), per-session state. The server calls, for each session:
//
//  1. Connect once the client is known: after the PROXY header of a
//     proxied listener and after the handshake of implicit TLS, before
//     the 220 greeting. A non-nil error is sent instead of the greeting
//     (an *smtp.Error as it is, typically 554 as RFC 5321 §3.1 allows,
//     anything else 451 4.3.0) and the session ends; Disconnect still
//     follows.
//  2. Hello after each HELO/EHLO the server accepted (SessionInfo.Helo is
//     set). A non-nil error is the reply instead of the 250 and the
//     session stays where it was before the command (greeted).
//  3. Disconnect exactly once at the end, after the last reply, also
//     when Connect failed: release what Connect took.
//
// An XCLIENT that replaces the client's identity ends the old virtual
// session and starts a new one (Disconnect, then Connect).
//
// The SessionInfo pointer is the same for the whole session, so a
// Backend may key its per-session state by it.
type SessionHooks interface {
	Connect(ctx context.Context, s *SessionInfo) error
	Hello(ctx context.Context, s *SessionInfo) error
	Disconnect(s *SessionInfo)
}

// hooks is the session's Backend as SessionHooks, nil when it has none.
func (s *session) hooks() SessionHooks {
	h, _ := s.backend().(SessionHooks)
	return h
}

// connectHook runs SessionHooks.Connect, and reports false after it
// refused the client with its error in place of the greeting.
func (s *session) connectHook() bool {
	h := s.hooks()
	if h == nil {
		return true
	}
	s.hooked = true
	return s.connectResult(h.Connect(s.backendContext(), &s.info))
}

// connectResult answers what SessionHooks.Connect returned: an error is
// sent instead of the greeting and ends the session (false).
func (s *session) connectResult(err error) bool {
	if err == nil {
		return true
	}
	s.log.Info("connection refused by policy", "err", err)
	s.srv.obs.ConnectionRefused(s.info.Listener, ReasonPolicy)
	s.quit = true
	s.reply(errReply(err))
	return false
}

// helloHook runs SessionHooks.Hello for the HELO/EHLO just accepted.
func (s *session) helloHook() error {
	if h := s.hooks(); h != nil {
		return h.Hello(s.backendContext(), &s.info)
	}
	return nil
}

// disconnectHook runs SessionHooks.Disconnect once, if Connect ran.
func (s *session) disconnectHook() {
	if !s.hooked {
		return
	}
	s.hooked = false
	s.hooks().Disconnect(&s.info)
}
