package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"smtpkit/internal/smtp"
)

// copyBufs holds the buffers used to move message data; they are taken only
// for the length of a DATA or BDAT, so idle sessions hold none.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// begin opens the backend writer for the current transaction and writes
// the trace header (RFC 5321 §4.4).
func (s *session) begin() (MessageWriter, error) {
	env := &Envelope{
		ID: newID(), Session: &s.info, From: s.txn.from, Recipients: s.txn.rcpts,
		Body: s.txn.body, SMTPUTF8: s.txn.smtputf8, RequireTLS: s.txn.requireTLS, DeclaredSize: s.txn.size,
		Ret: s.txn.ret, EnvID: s.txn.envID, DSN: s.txn.rcptDSN,
	}
	s.txn.started = s.srv.now()
	w, err := s.backend().Begin(s.backendContext(), env)
	if err != nil {
		return nil, err
	}
	bp := copyBufs.Get().(*[]byte)
	_, err = w.Write(s.appendReceived((*bp)[:0], env.ID))
	copyBufs.Put(bp)
	if err != nil {
		w.Abort()
		return nil, err
	}
	s.openWriter = w
	return w, nil
}

// cmdData handles DATA (RFC 5321 §4.1.1.4). The body streams through the
// strict dot reader into the backend; 250 is sent only after Commit, i.e.
// after the message is on stable storage.
//
// The command table let it run in stateRcpt only, without an argument.
func (s *session) cmdData(string) {
	if s.txn.body == smtp.BodyBinaryMIME {
		s.reply(replyBinaryNeedsBDAT)
		return
	}
	w, err := s.begin()
	if err != nil {
		s.srv.obs.MessageRefused(s.info.Listener, dataRefusal(nil, err))
		s.replyErr(err)
		s.abortTxn()
		return
	}
	s.reply(replyDataGo)
	s.state = stateData
	if err := s.conn.flush(); err != nil {
		s.openWriter = nil
		w.Abort()
		s.quit = true
		return
	}
	dr := smtp.NewDotReader(s.conn.forData(), s.limits.MessageSize, s.limits.TextLine)
	body := s.bodyWriter(w)
	readErr, writeErr := s.copyBody(body, dr, pace{start: s.srv.now()})
	if writeErr == nil {
		writeErr = body.Close()
	}
	s.finish(w, dr.Size(), readErr, writeErr)
}

// bodyWriter is where the message body goes: straight to the backend, or
// on submission listeners through the RFC 6409 §8 header fix-up.
func (s *session) bodyWriter(w MessageWriter) io.WriteCloser {
	var next io.WriteCloser = nopCloser{w}
	if s.listener.Role.IsSubmission() && s.info.AuthUser != "" {
		next = newHeaderFixer(w, s.srv.opts.Hostname, newID(), s.srv.now())
	}
	return &headerLimiter{next: next, max: s.limits.HeaderSize}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// copyBody moves the message from r to w. After a write error it keeps
// reading (and discarding) to the end of the data so the session stays in
// step with the client. It returns the read and the write error
// separately. The reads keep the pace p (pace.go).
func (s *session) copyBody(w io.Writer, r io.Reader, p pace) (readErr, writeErr error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	s.conn.setInData(true)
	defer s.conn.setInData(false)
	var got int64
	for {
		// Each block of data gets DataTimeout (RFC 5321 §4.5.3.2.6), so a
		// large message on a slow link is fine while a stalled client is
		// not; the minimum data rate bounds a trickle.
		if err := s.conn.armData(p, got); err != nil {
			return err, writeErr
		}
		n, err := r.Read(buf)
		got += int64(n)
		if n > 0 && writeErr == nil {
			_, writeErr = w.Write(buf[:n])
		}
		if err == io.EOF {
			return nil, writeErr
		}
		if err != nil {
			return err, writeErr
		}
	}
}

// finish ends a DATA or the last BDAT: commit when everything arrived,
// otherwise abort and explain. The transaction is over in every case.
func (s *session) finish(w MessageWriter, size int64, readErr, writeErr error) {
	defer func() { s.txn, s.fwd, s.openWriter, s.state = txn{}, forwarded{}, nil, stateReady }() // also after a panic in Commit or Abort (fence.go)
	if readErr != nil || writeErr != nil {
		s.srv.obs.MessageRefused(s.info.Listener, dataRefusal(readErr, writeErr))
	}
	var se *smtp.Error
	switch {
	case readErr != nil && errors.As(readErr, &se):
		// Bare CR/LF, line too long, too large: the data ended cleanly and
		// the client gets the reason; nothing is stored.
		w.Abort()
		s.log.Info("message refused", "from", s.txn.from.String(), "size", size, "code", se.Reply.Code, "err", readErr)
		s.reply(se.Reply)
	case readErr != nil:
		// The connection broke or timed out mid-message: nothing is stored.
		w.Abort()
		s.log.Info("message aborted", "from", s.txn.from.String(), "size", size, "err", readErr)
		s.quit = true
		var ne net.Error
		if errors.As(readErr, &ne) && ne.Timeout() {
			s.reply(replyTimeout(s.srv.opts.Hostname))
		}
	case writeErr != nil:
		w.Abort()
		s.log.Warn("message not stored", "from", s.txn.from.String(), "size", size, "err", writeErr)
		s.replyErr(writeErr)
	default:
		qid, err := w.Commit()
		if err != nil {
			reason := dataRefusal(nil, err)
			if reason == ReasonPolicy {
				// A deliberate 5xx at the end of DATA (a DMARC p=reject
				// failure, say) is no failure of ours.
				s.log.Info("message refused", "from", s.txn.from.String(), "err", err)
			} else {
				s.log.Error("commit failed", "from", s.txn.from.String(), "err", err)
			}
			s.srv.obs.MessageRefused(s.info.Listener, reason)
			s.replyErr(err)
			return
		}
		s.logAccepted(qid, size)
		s.srv.obs.MessageAccepted(s.info.Listener, size, s.info.TLS != nil, s.srv.now().Sub(s.txn.started))
		s.reply(replyQueued(qid))
	}
}

// logAccepted writes the one info line of an accepted message. Its fields
// are typed attributes, so that nothing is boxed or formatted through fmt.
func (s *session) logAccepted(qid string, size int64) {
	if !s.log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	if s.fwd.set {
		// XFORWARD named the original client: it goes on the same line.
		s.log.LogAttrs(context.Background(), slog.LevelInfo, "message accepted", append([]slog.Attr{
			slog.String("msgid", qid), slog.String("from", s.txn.from.String()), slog.Int("rcpts", len(s.txn.rcpts)),
			slog.Any("rcpt", rcptLog(s.txn.rcpts)), slog.Int64("size", size), slog.Bool("tls", s.info.TLS != nil),
			slog.String("tls_version", tlsVersion(s.info.TLS))}, s.fwd.logAttrs()...)...)
		return
	}
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "message accepted",
		slog.String("msgid", qid), slog.String("from", s.txn.from.String()), slog.Int("rcpts", len(s.txn.rcpts)),
		slog.Any("rcpt", rcptLog(s.txn.rcpts)), slog.Int64("size", size), slog.Bool("tls", s.info.TLS != nil),
		slog.String("tls_version", tlsVersion(s.info.TLS)))
}

// chunking is the state of a BDAT transfer (RFC 3030).
type chunking struct {
	w     MessageWriter
	body  io.WriteCloser // w, or the submission header fix-up in front of it
	size  int64
	err   error     // first read/limit/write problem; reported at LAST
	start time.Time // the first chunk: the transfer's pace begins (pace.go)
}

// bdatSyntax checks BDAT's arguments before anything else: without the
// chunk's size the session cannot stay in step, and ends.
func bdatSyntax(s *session, arg string) (smtp.Reply, bool) {
	if _, _, err := parseBdatArg(arg); err != nil {
		s.quit = true
		return replyBDATSyntax, false
	}
	return smtp.Reply{}, true
}

// cmdBdat handles BDAT size [LAST] (RFC 3030 §2) in stateRcpt or
// stateBdat (the command table). The chunk is always read in full, even
// when it is refused, so the session stays in step.
func (s *session) cmdBdat(arg string) {
	n, last, _ := parseBdatArg(arg) // bdatSyntax passed
	if s.txn.chunks == nil {
		w, err := s.begin()
		if err != nil {
			s.srv.obs.MessageRefused(s.info.Listener, dataRefusal(nil, err))
			s.discardChunk(n)
			s.replyErr(err)
			s.abortTxn()
			return
		}
		// RFC 3030 §3: BODY=BINARYMIME data is stored octet for octet;
		// only its header block is still held to the text rules.
		check := &textChecker{next: s.bodyWriter(w), maxLine: s.limits.TextLine, headerOnly: s.txn.body == smtp.BodyBinaryMIME}
		s.txn.chunks = &chunking{w: w, body: check, start: s.srv.now()}
		s.state = stateBdat
	}
	c := s.txn.chunks
	if c.err == nil && c.size+n > s.limits.MessageSize {
		c.err = errMessageTooBig
	}
	// The chunk is copied or, once the message is refused, discarded at
	// the same pace: either way the client must keep MinDataRate.
	var readErr error
	p := pace{start: c.start, received: c.size}
	if c.err == nil {
		var werr error
		readErr, werr = s.copyBody(c.body, &exactReader{r: s.conn.forData(), n: n}, p)
		if werr != nil {
			c.err = werr
		}
	} else {
		_, readErr = s.copyBody(io.Discard, &exactReader{r: s.conn.forData(), n: n}, p)
	}
	c.size += n
	if readErr != nil {
		s.finish(c.w, c.size, readErr, nil)
		s.txn.chunks = nil
		return
	}
	if !last {
		if c.err != nil {
			s.reply(errReply(c.err))
			return
		}
		s.reply(replyChunkReceived(n))
		return
	}
	s.txn.chunks = nil
	if c.err == nil {
		c.err = c.body.Close()
	}
	s.finish(c.w, c.size, nil, c.err)
}

// discardChunk reads and drops a chunk sent outside a transaction.
func (s *session) discardChunk(n int64) error {
	s.conn.setReadDeadline(s.conn.dataTimeout())
	m, err := io.CopyN(io.Discard, s.conn.forData(), n)
	if err == nil && m < n {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// parseBdatArg parses "size [LAST]". It allocates nothing, since it runs
// twice for every chunk (bdatSyntax, then cmdBdat or refuseBdat).
func parseBdatArg(arg string) (int64, bool, error) {
	size, rest := nextField(arg)
	last, rest := nextField(rest)
	if size == "" || strings.TrimSpace(rest) != "" {
		return 0, false, errors.New("bad BDAT arguments")
	}
	n, err := strconv.ParseInt(size, 10, 64)
	if err != nil || n < 0 || len(size) > 18 {
		return 0, false, errors.New("bad BDAT size")
	}
	if last != "" && !strings.EqualFold(last, "LAST") {
		return 0, false, errors.New("bad BDAT argument")
	}
	return n, last != "", nil
}

// nextField returns the first whitespace-separated field of s (as
// strings.Fields splits) and what follows it.
func nextField(s string) (field, rest string) {
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	end := strings.IndexFunc(s, unicode.IsSpace)
	if end < 0 {
		return s, ""
	}
	return s[:end], s[end:]
}

// exactReader reads exactly n bytes from r: io.EOF after n, and
// io.ErrUnexpectedEOF when r ends before (a BDAT chunk cut short).
type exactReader struct {
	r io.Reader
	n int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.n {
		p = p[:e.n]
	}
	n, err := e.r.Read(p)
	e.n -= int64(n)
	if err == io.EOF && e.n > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err == io.EOF {
		err = nil
	}
	return n, err
}
