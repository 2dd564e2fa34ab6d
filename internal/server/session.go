package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"smtpkit/internal/smtp"
)

// session is the connection state of one client. The mail transaction
// lives in txn and is replaced by RSET, EHLO, the end of DATA and STARTTLS.
type session struct {
	srv     *Server
	lim     *Limits       // the server's limits when the session started (never modified)
	l       *Listener     // the accept loop's copy, shared by its sessions (never modified)
	raw     net.Conn      // the accepted connection; only deadlines are set on it from other goroutines
	conn    net.Conn      // raw, or the TLS connection over it
	r       *bufio.Reader // small, or big during and right after message data
	small   *bufio.Reader // command phase
	big     *bufio.Reader // from dataReaders while in use
	lineBuf []byte        // a command line longer than small's buffer
	wait    [64]byte      // what an idle session reads into (see awaitInput)
	pre     prefixReader  // the bytes read into wait, ahead of the connection
	w       *bufio.Writer
	log     *slog.Logger
	info    SessionInfo

	// The flags are together so that they share one word.
	helo  bool // HELO or EHLO was given (RFC 5321 §4.1.4)
	esmtp bool // EHLO was given: extensions and enhanced codes apply
	quit  bool
	// admitted: started by startSession, so counted in Server.active until
	// close; only such a session may outlive the call to serve (idle.go).
	admitted bool
	// Guarded by mu (idle.go); idle and parked are written only by the
	// goroutine serving the session.
	idle    bool         // waiting for a command outside a transaction
	parked  bool         // idle, in the wait that may be handed off (waitParked)
	seen    bool         // the sweeper found it parked, and it has not been busy since
	handOff handOffState // reset when the session is busy again
	inData  bool         // waiting for message data (stress.go)
	// armed is the read deadline last armed (Unix ns, 0: none); cutAt
	// (0: none) the one stressCut brought it forward to since, so that
	// the connection's deadline is no longer rdl.
	armed atomic.Int64
	cutAt atomic.Int64
	// stressed: the session lived through stress mode and has the short
	// timeouts (stress.go). Set under Server.mu.
	stressed atomic.Bool
	// closed: close has run (a panic fence may come after it, fence.go).
	closed bool
	// open is the backend's writer of the message being received, until
	// Commit or Abort was called on it; the panic fence aborts it.
	open MessageWriter

	errors   int       // protocol errors so far
	authFail int       // failed AUTH attempts in this session
	rcpts    int       // recipients accepted in this session, all transactions
	rdl, wdl time.Time // the read and write deadlines last armed (zero: none)
	// bctx bounds backend calls by the session deadline; one per session,
	// not one timer per command. It is &bc.
	bctx context.Context
	bc   backendCtx // also holds the session deadline
	txn  txn

	mu sync.Mutex
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
	active   bool
	from     smtp.Address
	rcpts    []smtp.Address
	body     string
	smtputf8 bool
	size     int64
	started  time.Time // DATA or the first BDAT, for the Observer
	chunks   *chunking // set while BDAT chunks are arriving (RFC 3030)
}

// newSession prepares the session for a connection on l.
func (s *Server) newSession(c net.Conn, l Listener) *session { return s.newSessionOn(c, &l) }

// newSessionOn is newSession with l shared, not copied.
func (s *Server) newSessionOn(c net.Conn, l *Listener) *session {
	sess := &session{srv: s, lim: s.limits.Load(), l: l, raw: c, conn: c}
	sess.info = SessionInfo{ID: newID(), Listener: l.Name, Role: l.Role, Remote: c.RemoteAddr()}
	if sess.info.Listener == "" {
		sess.info.Listener = l.Address
	}
	sess.log = s.log.With("conn", sess.info.ID, "listener", sess.info.Listener, "remote", c.RemoteAddr().String())
	return sess
}

// startSession admits the connection and starts its session. The session
// ends in close, run by whichever goroutine serves it last (see run).
func (s *Server) startSession(c net.Conn, l *Listener) {
	sess := s.newSessionOn(c, l)
	if ok, why := s.admit(sess); !ok {
		go func() {
			c.SetWriteDeadline(s.now().Add(5 * time.Second))
			io.WriteString(c, smtp.R(smtp.CodeUnavailable, smtp.EnhSecurity.Temp(), s.opts.Hostname+" "+why+", try again later").String())
			c.Close()
		}()
		sess.log.Warn("connection refused", "reason", why)
		s.obs.ConnectionRefused(sess.info.Listener, connRefusal(why))
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
	s.bc.deadline = s.srv.now().Add(s.lim.SessionTimeout)
	s.bctx = &s.bc
	s.log.Info("connect")
	if s.l.TLS == TLSImplicit {
		if err := s.handshake(); err != nil {
			s.log.Info("tls handshake failed", "err", err)
			s.close()
			return
		}
	} else {
		s.setStreams(s.conn)
	}
	s.reply(smtp.R(smtp.CodeReady, "", s.srv.opts.Hostname+" ESMTP smtpkit ready"))
	s.run()
}

// step answers what readCommand returned: a command is handled, a bad
// line answered, and a read failure ends the session.
func (s *session) step(line []byte, err error) {
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
	s.wdl = s.srv.now().Add(finalWriteGrace) // the last one may have passed with a timeout
	s.conn.SetWriteDeadline(s.wdl)
	s.flushNow()
	s.releaseReaders()
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
	// s.conn is the TLS connection after a handshake; closing that sends
	// the TLS close_notify before the TCP FIN.
	s.conn.Close()
	if s.admitted {
		s.srv.release(s)
	}
	s.bc.end()
	if s.admitted {
		s.srv.active.Done()
	}
}

// Buffers. A session waiting for a command holds no buffer at all: it
// blocks on a read into its own small wait array, and only when bytes
// arrive takes a command reader (1 KiB; a command line is at most 512
// octets by RFC 5321 §4.5.3.1.4, longer ones up to Limits.CommandLine are
// assembled in lineBuf) and, for its replies, a writer, both from pools and
// both given back once the client has nothing more in flight. Message data
// is read through a large pooled reader for the length of a DATA or BDAT.
const (
	cmdBufSize   = 1024
	replyBufSize = 1024
	dataBufSize  = 32 << 10
)

var (
	dataReaders  = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, dataBufSize) }}
	cmdReaders   = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, cmdBufSize) }}
	replyWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, replyBufSize) }}
)

// setStreams points the session at c (the connection, or TLS over it),
// dropping anything buffered for the old one.
func (s *session) setStreams(c net.Conn) {
	if s.w != nil {
		s.w.Reset(nil)
		replyWriters.Put(s.w)
		s.w = nil
	}
	s.releaseReaders()
	s.pre = prefixReader{}
	s.small = cmdReaders.Get().(*bufio.Reader)
	s.small.Reset(c)
	s.r = s.small
}

// releaseReaders gives the command and data readers back to their pools,
// whatever they hold.
func (s *session) releaseReaders() {
	if s.big != nil {
		s.big.Reset(nil)
		dataReaders.Put(s.big)
		s.big = nil
	}
	if s.small != nil {
		s.small.Reset(nil)
		cmdReaders.Put(s.small)
		s.small, s.r = nil, nil
	}
}

// awaitInput blocks until the client sends something, holding no buffer
// but the session's small wait array meanwhile, then reads on through a
// pooled command reader. Only called when nothing is buffered.
func (s *session) awaitInput() error {
	s.dropCommandReader()
	return s.readInput()
}

// dropCommandReader gives the empty command reader back to its pool.
func (s *session) dropCommandReader() {
	s.small.Reset(nil)
	cmdReaders.Put(s.small)
	s.small, s.r = nil, nil
}

// readInput is the blocking half of awaitInput.
func (s *session) readInput() error {
	return s.gotInput(s.conn.Read(s.wait[:]))
}

// gotInput puts the command reader behind the n bytes that arrived in the
// wait array. It is apart from the read so that the frame blocked in the
// read stays small (idle.go).
func (s *session) gotInput(n int, err error) error {
	if n == 0 {
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
	s.pre = prefixReader{buf: s.wait[:n], s: s}
	s.small = cmdReaders.Get().(*bufio.Reader)
	s.small.Reset(&s.pre)
	s.r = s.small
	return nil
}

// prefixReader returns buf, then reads from the session's connection.
type prefixReader struct {
	buf []byte
	s   *session
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if len(p.buf) > 0 {
		n := copy(b, p.buf)
		p.buf = p.buf[n:]
		return n, nil
	}
	return p.s.conn.Read(b)
}

// out is the reply writer, taken from the pool on first use.
func (s *session) out() *bufio.Writer {
	if s.w == nil {
		s.w = replyWriters.Get().(*bufio.Writer)
		s.w.Reset(s.conn)
	}
	return s.w
}

// dataReader switches the session to the large pooled reader for message
// data. It reads through the small one, so nothing buffered is lost, and
// large reads pass straight to the connection.
func (s *session) dataReader() *bufio.Reader {
	if s.big == nil {
		s.big = dataReaders.Get().(*bufio.Reader)
		s.big.Reset(s.small)
		s.r = s.big
	}
	return s.big
}

// releaseDataReader gives the large reader back once it holds nothing the
// client pipelined after the data.
func (s *session) releaseDataReader() {
	if s.big == nil || s.big.Buffered() > 0 {
		return
	}
	s.big.Reset(nil)
	dataReaders.Put(s.big)
	s.big = nil
	s.r = s.small
}

// Command-line framing errors; the session answers them and goes on.
var (
	errCommandTooLong = smtp.E(smtp.CodeSyntax, smtp.EnhSyntax, "Line too long")
	errCommandBareLF  = smtp.E(smtp.CodeSyntax, smtp.EnhSyntax, "Bare LF in command; lines must end in CRLF (RFC 5321 §2.3.8)")
)

// readCommand reads one CRLF-terminated command line, flushing pending
// replies first when the client has nothing more in flight (RFC 2920 §3.1:
// replies to a pipelined group are sent together).
func (s *session) readCommand() ([]byte, error) {
	return s.nextCommand(false)
}

// errHandedOff tells run that another goroutine now serves the session.
var errHandedOff = errors.New("session handed to a waiting goroutine")

// nextCommand is readCommand. With handOff, a session that waits between
// transactions may be asked by the server's sweeper to hand its wait to a
// fresh goroutine, which carries the session on (idle.go); nextCommand
// then returns errHandedOff and the caller must leave the session alone.
func (s *session) nextCommand(handOff bool) ([]byte, error) {
	s.releaseDataReader()
	if s.r.Buffered() == 0 {
		if err := s.flush(); err != nil { // fresh write deadline: the last may have passed during a long DATA
			return nil, err
		}
	}
	// The deadline is set before the session is marked idle, so that a
	// shutdown's interrupt (a deadline in the past) is never overwritten.
	s.setReadDeadline(s.commandTimeout())
	wait := s.r == s.small && s.small.Buffered() == 0 && len(s.pre.buf) == 0
	park := wait && handOff && s.mayPark()
	s.setIdle(!s.txn.active, park)
	if s.srv.isClosing() && !s.txn.active {
		s.setIdle(false, false)
		return nil, errShuttingDown
	}
	if wait {
		var err error
		if park {
			var handedOff bool
			if handedOff, err = s.waitParked(); handedOff {
				return nil, errHandedOff // still marked idle: resume carries on
			}
		} else {
			err = s.awaitInput()
		}
		if err != nil {
			s.setIdle(false, false)
			return nil, err
		}
	}
	line, err := s.readLine()
	s.setIdle(false, false)
	return line, err
}

// readLine reads the command line that has begun to arrive.
func (s *session) readLine() ([]byte, error) {
	if cap(s.lineBuf) > cmdBufSize {
		s.lineBuf = nil // a long AUTH line does not pin memory for the session
	}
	line, err := s.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		// Longer than the buffer: assemble it, up to the limit.
		s.lineBuf = append(s.lineBuf[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) && len(s.lineBuf) <= s.lim.CommandLine {
			line, err = s.r.ReadSlice('\n')
			s.lineBuf = append(s.lineBuf, line...)
		}
		line = s.lineBuf
	}
	if len(line) > s.lim.CommandLine {
		// Discard the rest of the over-long line so the session stays in step.
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = s.r.ReadSlice('\n')
		}
		if err != nil {
			return nil, err
		}
		return nil, errCommandTooLong
	}
	if err != nil {
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, errCommandBareLF
	}
	return line[:len(line)-2], nil
}

// deadlineIn is now+d, capped by the session deadline.
func (s *session) deadlineIn(d time.Duration) time.Time {
	t := s.srv.now().Add(d)
	if t.After(s.bc.deadline) {
		return s.bc.deadline
	}
	return t
}

var errShuttingDown = errors.New("server shutting down")

// finalWriteGrace bounds writing the last reply (a 421 after a timeout,
// whose deadline has passed, or too many errors) before the close.
const finalWriteGrace = 5 * time.Second

// endOnError ends the session after a read failure: timeouts and shutdown
// get 421 (RFC 5321 §3.8, §4.5.3.2); a closed connection gets nothing.
func (s *session) endOnError(err error) {
	switch {
	case errors.Is(err, errShuttingDown) || s.srv.isClosing():
		s.reply(smtp.R(smtp.CodeUnavailable, smtp.EnhNotAccepting.Temp(), s.srv.opts.Hostname+" service shutting down, closing connection"))
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.reply(s.replyTimeout())
		s.log.Info("timeout", "stressed", s.stressed.Load())
	case errors.Is(err, io.EOF):
		s.log.Debug("client closed connection")
	default:
		s.log.Debug("read failed", "err", err)
	}
}

// replyTimeout is the reply that ends a session whose client was too slow
// (RFC 5321 §4.5.3.2: the server may close after its timeout, with 421).
func (s *session) replyTimeout() smtp.Reply {
	return smtp.R(smtp.CodeUnavailable, smtp.EnhConnection.Temp(), s.srv.opts.Hostname+" timeout exceeded, closing connection")
}

// reply queues r for the client. Enhanced codes are sent once the client
// said EHLO (RFC 2034 §3). Protocol errors are counted; past the limit the
// session ends with 421 (RFC 5321 §4.5.3.1.x leaves the limit to the server).
func (s *session) reply(r smtp.Reply) {
	r.Write(s.out(), s.esmtp)
	if r.Code >= 500 && r.Code <= 504 {
		s.errors++
		if s.errors >= s.lim.Errors {
			smtp.R(smtp.CodeUnavailable, smtp.EnhSecurity.Temp(), s.srv.opts.Hostname+" too many errors, closing connection").Write(s.out(), s.esmtp)
			s.log.Info("too many errors", "errors", s.errors)
			s.quit = true
		}
	}
	if s.quit {
		s.wdl = s.srv.now().Add(finalWriteGrace)
		s.conn.SetWriteDeadline(s.wdl)
		s.flushNow()
	}
}

// flush sends queued replies now, under a fresh write deadline.
func (s *session) flush() error {
	if s.w == nil {
		return nil
	}
	s.setWriteDeadline(s.commandTimeout())
	return s.flushNow()
}

// flushNow writes out the replies and gives the writer back to the pool.
func (s *session) flushNow() error {
	if s.w == nil {
		return nil
	}
	err := s.w.Flush()
	if err == nil {
		s.w.Reset(nil)
		replyWriters.Put(s.w)
		s.w = nil
	}
	return err
}

// setIdle marks the session idle (waiting for a command outside a
// transaction) or busy; park marks the idle wait as one the sweeper may
// interrupt for a handoff (idle.go). Marking a busy session busy again
// takes no lock: only the goroutine serving the session writes idle, and
// a busy session has nothing for the sweeper or a shutdown.
func (s *session) setIdle(idle, park bool) {
	if !idle && !s.idle {
		return
	}
	s.mu.Lock()
	if s.handOff == handOffAsked {
		// The sweeper's interrupt came, but so did input: the read
		// deadline on the connection is no longer s.rdl, which
		// setReadDeadline believes armed. Put it back.
		s.handOff = handOffNone
		s.raw.SetReadDeadline(s.readDeadline())
	}
	s.idle, s.parked = idle, park
	if !idle {
		s.seen, s.handOff = false, handOffNone
	}
	if idle && s.srv.isClosing() {
		s.raw.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
}

// interruptIfIdle wakes a session waiting for a command outside a
// transaction so that it can say 421 during shutdown.
func (s *session) interruptIfIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idle {
		s.raw.SetReadDeadline(time.Now())
	}
}

// interrupt ends a session whatever it is doing (shutdown grace is over).
func (s *session) interrupt() {
	s.raw.SetDeadline(time.Now())
}

// abortTxn discards the transaction, including a half-received BDAT message.
func (s *session) abortTxn() {
	if s.txn.chunks != nil {
		s.open = nil
		s.txn.chunks.w.Abort()
	}
	s.txn = txn{}
}

// setReadDeadline arms the read deadline now+d (capped by the session
// deadline). Re-arming a timer for every command and data block costs more
// than the command itself on a fast path, so a deadline that is already
// within a small slack of the wanted one is left as it is: the timeout
// stays between d-slack and d.
func (s *session) setReadDeadline(d time.Duration) {
	s.setReadDeadlineAt(s.deadlineIn(d), d)
}

// setReadDeadlineAt arms the read deadline t (capped by the session
// deadline), leaving one within deadlineSlack(d) before it as it is.
func (s *session) setReadDeadlineAt(t time.Time, d time.Duration) {
	if t.After(s.bc.deadline) {
		t = s.bc.deadline
	}
	if keep(s.rdl, t, d) && s.cutAt.Load() == 0 {
		return
	}
	s.cutAt.Store(0)
	s.rdl = t
	s.armed.Store(t.UnixNano())
	s.conn.SetReadDeadline(t)
}

// setWriteDeadline is setReadDeadline for writes.
func (s *session) setWriteDeadline(d time.Duration) {
	if t, stale := s.rearm(s.wdl, d); stale {
		s.wdl = t
		s.conn.SetWriteDeadline(t)
	}
}

// rearm returns the deadline now+d (capped by the session deadline) and
// whether the one last armed is too stale to keep.
func (s *session) rearm(last time.Time, d time.Duration) (time.Time, bool) {
	t := s.deadlineIn(d)
	return t, !keep(last, t, d)
}

// keep reports whether the deadline last armed may stay for the wanted t:
// it is not later than t, and earlier by less than deadlineSlack(d).
func keep(last, t time.Time, d time.Duration) bool {
	return !last.IsZero() && !t.Before(last) && t.Sub(last) < deadlineSlack(d)
}

// deadlineSlack is how stale a deadline may get before it is re-armed.
func deadlineSlack(d time.Duration) time.Duration { return min(d/8, 5*time.Second) }

// handshake runs the TLS server handshake on the raw connection and
// replaces the streams; used for implicit TLS and after STARTTLS.
func (s *session) handshake() error {
	tc := tls.Server(s.conn, s.l.TLSConfig)
	tc.SetDeadline(s.deadlineIn(s.commandTimeout()))
	if err := tc.Handshake(); err != nil {
		s.srv.obs.TLSFailed(s.info.Listener)
		return err
	}
	tc.SetDeadline(time.Time{})
	s.rdl, s.wdl = time.Time{}, time.Time{}
	s.armed.Store(0)
	s.conn = tc
	st := tc.ConnectionState()
	s.info.TLS = &st
	s.srv.obs.TLSEstablished(s.info.Listener, st.Version)
	s.setStreams(tc)
	s.log.Info("tls", "tls_version", tls.VersionName(st.Version), "cipher", tls.CipherSuiteName(st.CipherSuite), "sni", st.ServerName)
	return nil
}
