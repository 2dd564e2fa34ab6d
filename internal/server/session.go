package server

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"smtpkit/internal/sasl"
	"smtpkit/internal/smtp"
)

// session is the protocol state of one client; its I/O (buffers,
// deadlines, the idle wait) is conn's. The mail transaction lives in txn
// and is replaced by RSET, EHLO, the end of DATA and STARTTLS.
type session struct {
	srv      *Server
	limits   *Limits   // the server's limits when the session started (never modified)
	listener *Listener // the accept loop's copy, shared by its sessions (never modified)
	conn     conn
	log      *slog.Logger
	info     SessionInfo

	// The flags are together so that they share one word.
	state state // where the session is in the command sequence (state.go)
	esmtp bool  // EHLO was given: extensions and enhanced codes apply
	quit  bool
	// current is the row of the command being answered, nil for the
	// greeting, a line that is no command, and the end; arrivedIn is the
	// state the command came in (for Server.onReply).
	current   *command
	arrivedIn state
	// admitted: started by startSession, so counted in Server.active until
	// close; only such a session may outlive the call to serve (idle.go).
	admitted bool
	// closed: close has run (a panic fence may come after it, fence.go).
	closed bool
	// hooked: SessionHooks.Connect was called, so Disconnect is owed.
	hooked bool
	// proxied: the connection begins with a PROXY header (proxy.go).
	proxied bool
	// xclientOK: the client the session began with is in xclient_from,
	// so XCLIENT and XFORWARD are offered (xclient.go, xforward.go).
	xclientOK bool
	// fwd is what XFORWARD said about the transaction's original client.
	fwd forwarded
	// admittedIP is the per-IP key admit counted the session under, which
	// release gives back (the client address may change later: XCLIENT);
	// "" for a trusted client, which is not counted per IP.
	admittedIP string
	// openWriter is the backend's writer of the message being received,
	// until Commit or Abort was called on it; the panic fence aborts it.
	openWriter MessageWriter

	errors       int                   // protocol errors so far
	authFailures int                   // failed AUTH attempts in this session
	sessionRcpts int                   // recipients accepted in this session, all transactions (Limits.SessionRcpts)
	sessionTxns  int                   // MAIL commands accepted in this session (Limits.SessionTxns, LIMITS MAILMAX)
	bindings     []sasl.ChannelBinding // the TLS channel's bindings for SCRAM-SHA-256-PLUS; nil outside TLS
	// backendCtx bounds backend calls by the session deadline; one per
	// session, not one timer per command (see backendContext).
	backendCtx backendCtx
	txn        txn
}

// backendCtx is the session's backend context: done at the end of the
// session or at its deadline. The context.Context behind it, and its
// timer, are made on first use, so that a session that never calls the
// backend (one that said EHLO and waits) holds neither.
type backendCtx struct {
	once     sync.Once
	deadline time.Time // end of the whole session
	ctx      context.Context
	cancel   context.CancelFunc
}

func (b *backendCtx) made() context.Context {
	b.once.Do(func() { b.ctx, b.cancel = context.WithDeadline(context.Background(), b.deadline) })
	return b.ctx
}

func (b *backendCtx) Deadline() (time.Time, bool) { return b.deadline, true }
func (b *backendCtx) Done() <-chan struct{}       { return b.made().Done() }
func (b *backendCtx) Err() error                  { return b.made().Err() }

// Value answers from the context behind, which also lets the context
// package see that and link contexts derived from b to it directly (no
// goroutine per derived context).
func (b *backendCtx) Value(key any) any { return b.made().Value(key) }

// end cancels the context; one never made is made cancelled, in case the
// backend kept b.
func (b *backendCtx) end() {
	b.once.Do(func() { b.ctx, b.cancel = context.WithCancel(context.Background()) })
	b.cancel()
}

// txn is one mail transaction (RFC 5321 §3.3), from MAIL to end of data.
type txn struct {
	from     smtp.Address
	rcpts    []smtp.Address
	body     string
	smtputf8 bool
	// requireTLS: MAIL carried REQUIRETLS (RFC 8689 §4.2: the message is
	// tagged as needing REQUIRETLS handling from here on).
	requireTLS bool
	size       int64
	// ret and envID are MAIL's RET and ENVID (RFC 3461 §4.3, §4.4);
	// rcptDSN holds each recipient's NOTIFY and ORCPT, parallel to rcpts.
	ret     string
	envID   string
	rcptDSN []smtp.RcptDSN
	started time.Time // DATA or the first BDAT, for the Observer
	chunks  *chunking // set while BDAT chunks are arriving (RFC 3030)
}

// newSessionOn prepares the session for a connection on l (shared, not
// copied).
func (s *Server) newSessionOn(c net.Conn, l *Listener) *session {
	sess := &session{srv: s, limits: s.limits.Load(), listener: l}
	sess.conn = conn{raw: c, transport: c, now: s.now, limits: sess.limits, closing: &s.closing}
	sess.info = SessionInfo{ID: newID(), Listener: l.Name, Role: l.Role}
	if sess.info.Listener == "" {
		sess.info.Listener = l.Address
	}
	sess.setClient(c.RemoteAddr())
	return sess
}

// startSession admits the connection and starts its session. The session
// ends in close, run by whichever goroutine serves it last (see run).
func (s *Server) startSession(c net.Conn, l *Listener) {
	if l.expectsProxy(c.RemoteAddr()) {
		s.startProxied(c, l)
		return
	}
	sess := s.newSessionOn(c, l)
	if ok, why := s.admit(sess); !ok {
		s.refuse(sess, why)
		return
	}
	s.obs.ConnectionAccepted(sess.info.Listener)
	sess.admitted = true
	go sess.serve()
}

// serve greets the client and runs the session. A panic ends this
// session only (fence.go).
func (s *session) serve() {
	defer s.fence()
	s.backendCtx.deadline = s.srv.now().Add(s.limits.SessionTimeout)
	s.conn.deadline = s.backendCtx.deadline
	if s.proxied && !s.acceptProxied() {
		s.close()
		return
	}
	s.xclientOK = inNetworks(s.listener.XClientFrom, s.info.Remote)
	s.log.Info("connect")
	if s.listener.TLS == TLSImplicit {
		if err := s.handshake(); err != nil {
			s.log.Info("tls handshake failed", "err", err)
			s.close()
			return
		}
	} else {
		s.conn.start(s.conn.transport)
	}
	if !s.beforeGreeting() { // the Connect hook and the pregreet wait (pregreet.go)
		s.end()
		return
	}
	s.reply(replyGreeting(s.srv.opts.Hostname))
	s.run()
}

// step answers what conn.nextCommand returned: a command is handled, a bad
// line answered, and a read failure ends the session.
func (s *session) step(line []byte, err error) {
	s.current, s.arrivedIn = nil, s.state
	if err == nil {
		s.handle(line)
		return
	}
	// Declared only here: errors.As takes its address, which puts it on
	// the heap, and most steps have no error.
	var framing *smtp.Error
	if errors.As(err, &framing) {
		s.reply(framing.Reply) // a bad line is answered; the session goes on
		return
	}
	s.endOnError(err)
	s.quit = true
}

// end finishes the session after its last command: the transaction is
// discarded, the last replies are sent, and everything is given back.
func (s *session) end() {
	s.abortTxn()
	s.conn.flushFinal() // the last write deadline may have passed with a timeout
	s.conn.release()
	s.log.Info("disconnect", "errors", s.errors)
	s.close()
}

// close releases the connection, the slot taken by admit and the backend
// context; it runs exactly once per session, last of all. The context
// ends after the slot is given back, so whoever looked at the session
// under Server.mu while it was registered did so before.
func (s *session) close() {
	if s.closed {
		return // a panic after close (fence.go)
	}
	s.closed = true
	// Deferred, so that a panic in the Backend's Disconnect still gives
	// the connection and the slot back (else Shutdown waits for ever).
	defer func() {
		s.conn.close()
		if s.admitted {
			s.srv.release(s)
		}
		s.backendCtx.end()
		if s.admitted {
			s.srv.active.Done()
		}
	}()
	s.disconnectHook()
}

// endOnError ends the session after a read failure: timeouts and shutdown
// get 421 (RFC 5321 §3.8, §4.5.3.2); a closed connection gets nothing.
func (s *session) endOnError(err error) {
	switch {
	case errors.Is(err, errShuttingDown) || s.srv.isClosing():
		s.reply(replyShuttingDown(s.srv.opts.Hostname))
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.reply(replyTimeout(s.srv.opts.Hostname))
		s.log.Info("timeout", "stressed", s.conn.stressed.Load())
	case errors.Is(err, io.EOF):
		s.log.Debug("client closed connection")
	default:
		s.log.Debug("read failed", "err", err)
	}
}

// reply queues r for the client. Enhanced codes are sent once the client
// said EHLO (RFC 2034 §3). Protocol errors are counted; past the limit the
// session ends with 421 (RFC 5321 §4.5.3.1.x leaves the limit to the server).
func (s *session) reply(r smtp.Reply) {
	if s.srv.onReply != nil {
		s.srv.onReply(s.arrivedIn, s.current, r)
	}
	s.conn.queue(r, s.esmtp)
	if r.Code >= 500 && r.Code <= 504 {
		s.errors++
		if s.errors >= s.limits.Errors {
			s.conn.queue(replyTooManyErrors(s.srv.opts.Hostname), s.esmtp)
			s.log.Info("too many errors", "errors", s.errors)
			s.quit = true
		}
	}
	if s.quit {
		s.conn.flushFinal()
	}
}

// abortTxn discards the transaction, including a half-received BDAT
// message; a session in one is ready again.
func (s *session) abortTxn() {
	if s.txn.chunks != nil {
		s.openWriter = nil
		s.txn.chunks.w.Abort()
	}
	s.txn, s.fwd = txn{}, forwarded{}
	if s.state.inTxn() {
		s.state = stateReady
		s.resetHook()
	}
}

// backendContext is the context of the session's backend calls.
func (s *session) backendContext() context.Context { return &s.backendCtx }

// handshake runs the TLS handshake (conn.startTLS) and records its
// outcome; used for implicit TLS and after STARTTLS.
func (s *session) handshake() error {
	st, err := s.conn.startTLS(s.listener.TLSConfig)
	if err != nil {
		s.srv.obs.TLSFailed(s.info.Listener)
		return err
	}
	s.info.TLS = st
	s.bindings = sasl.Bindings(*st)
	s.srv.obs.TLSEstablished(s.info.Listener, st.Version)
	s.log.Info("tls", "tls_version", tls.VersionName(st.Version), "cipher", tls.CipherSuiteName(st.CipherSuite), "sni", st.ServerName)
	return nil
}
