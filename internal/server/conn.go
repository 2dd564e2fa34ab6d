package server

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"smtpkit/internal/smtp"
)

// conn is the I/O layer of a session: the connection and its buffers,
// command-line reading, the read and write deadlines, flushing of queued
// replies, and the idle wait that may be handed to a fresh goroutine
// (park, idle.go). It knows nothing of SMTP's states; the session tells it
// whether a wait is between transactions (idle) and may be parked. Its
// API: readCommand/nextCommand, queue, flush/flushFinal, forData, and
// startTLS; the rest is deadline bookkeeping for the data phase (pace.go),
// stress mode (stress.go) and the sweeper (idle.go).
type conn struct {
	raw       net.Conn      // the accepted connection; only deadlines are set on it from other goroutines
	transport net.Conn      // raw, or the TLS connection over it
	reader    *bufio.Reader // cmdReader, or dataReader during and right after message data
	cmdReader *bufio.Reader // command phase
	// dataReader is taken from dataReaders for message data and reads
	// through cmdReader, so nothing buffered is lost.
	dataReader *bufio.Reader
	longLine   []byte        // a command line longer than cmdReader's buffer
	waitBuf    [64]byte      // what an idle session reads into (see awaitInput)
	arrived    prefixReader  // the bytes read into waitBuf, ahead of the connection
	replies    *bufio.Writer // queued replies, taken from replyWriters on first use

	now      func() time.Time
	limits   *Limits      // the session's (never modified)
	closing  *atomic.Bool // the server's: set once by Shutdown
	deadline time.Time    // end of the whole session

	// readArmed and writeArmed are the deadlines last armed (zero: none).
	readArmed, writeArmed time.Time
	// armedAt is readArmed in Unix ns (0: none), for stressCut; cutAt
	// (0: none) the deadline stressCut brought it forward to since, so
	// that the connection's deadline is no longer readArmed.
	armedAt atomic.Int64
	cutAt   atomic.Int64
	// stressed: the session lived through stress mode and has the short
	// timeouts (stress.go). Set under Server.mu.
	stressed atomic.Bool

	// Guarded by mu (idle.go); idle and parked are written only by the
	// goroutine serving the session.
	mu      sync.Mutex
	idle    bool         // waiting for a command outside a transaction
	parked  bool         // idle, in the wait that may be handed off (waitParked)
	seen    bool         // the sweeper found it parked, and it has not been busy since
	handOff handOffState // reset when the session is busy again
	inData  bool         // waiting for message data (stress.go)
}

// Buffers. A session waiting for a command holds no buffer at all: it
// blocks on a read into its own small waitBuf, and only when bytes arrive
// takes a command reader (1 KiB; a command line is at most 512 octets by
// RFC 5321 §4.5.3.1.4, longer ones up to Limits.CommandLine are assembled
// in longLine) and, for its replies, a writer, both from pools and both
// given back once the client has nothing more in flight. Message data is
// read through a large pooled reader for the length of a DATA or BDAT.
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

// start points the connection at t (the accepted connection, or TLS over
// it), dropping anything buffered for the old one.
func (c *conn) start(t net.Conn) {
	if c.replies != nil {
		c.replies.Reset(nil)
		replyWriters.Put(c.replies)
		c.replies = nil
	}
	c.release()
	c.arrived = prefixReader{}
	c.cmdReader = cmdReaders.Get().(*bufio.Reader)
	c.cmdReader.Reset(t)
	c.reader = c.cmdReader
}

// release gives the command and data readers back to their pools,
// whatever they hold.
func (c *conn) release() {
	if c.dataReader != nil {
		c.dataReader.Reset(nil)
		dataReaders.Put(c.dataReader)
		c.dataReader = nil
	}
	if c.cmdReader != nil {
		c.cmdReader.Reset(nil)
		cmdReaders.Put(c.cmdReader)
		c.cmdReader, c.reader = nil, nil
	}
}

// close closes the connection; after a handshake it is the TLS one, which
// sends the TLS close_notify before the TCP FIN.
func (c *conn) close() { c.transport.Close() }

// awaitInput blocks until the client sends something, holding no buffer
// but waitBuf meanwhile, then reads on through a pooled command reader.
// Only called when nothing is buffered.
func (c *conn) awaitInput() error {
	c.dropCommandReader()
	return c.gotInput(c.transport.Read(c.waitBuf[:]))
}

// dropCommandReader gives the empty command reader back to its pool.
func (c *conn) dropCommandReader() {
	c.cmdReader.Reset(nil)
	cmdReaders.Put(c.cmdReader)
	c.cmdReader, c.reader = nil, nil
}

// gotInput puts the command reader behind the n bytes that arrived in
// waitBuf. It is apart from the read so that the frame blocked in the
// read stays small (idle.go).
func (c *conn) gotInput(n int, err error) error {
	if n == 0 {
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
	c.arrived = prefixReader{buf: c.waitBuf[:n], c: c}
	c.cmdReader = cmdReaders.Get().(*bufio.Reader)
	c.cmdReader.Reset(&c.arrived)
	c.reader = c.cmdReader
	return nil
}

// prefixReader returns buf, then reads from the connection.
type prefixReader struct {
	buf []byte
	c   *conn
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if len(p.buf) > 0 {
		n := copy(b, p.buf)
		p.buf = p.buf[n:]
		return n, nil
	}
	return p.c.transport.Read(b)
}

// out is the reply writer, taken from the pool on first use.
func (c *conn) out() *bufio.Writer {
	if c.replies == nil {
		c.replies = replyWriters.Get().(*bufio.Writer)
		c.replies.Reset(c.transport)
	}
	return c.replies
}

// queue adds r to the replies sent at the next flush, with its enhanced
// code when enhanced (RFC 2034 §3: once the client said EHLO).
func (c *conn) queue(r smtp.Reply, enhanced bool) { r.Write(c.out(), enhanced) }

// forData switches to the large pooled reader for message data. It reads
// through the command reader, so nothing buffered is lost, and large
// reads pass straight to the connection.
func (c *conn) forData() *bufio.Reader {
	if c.dataReader == nil {
		c.dataReader = dataReaders.Get().(*bufio.Reader)
		c.dataReader.Reset(c.cmdReader)
		c.reader = c.dataReader
	}
	return c.dataReader
}

// releaseDataReader gives the large reader back once it holds nothing the
// client pipelined after the data.
func (c *conn) releaseDataReader() {
	if c.dataReader == nil || c.dataReader.Buffered() > 0 {
		return
	}
	c.dataReader.Reset(nil)
	dataReaders.Put(c.dataReader)
	c.dataReader = nil
	c.reader = c.cmdReader
}

// discardBuffered drops everything the client sent that is not read yet
// and returns how many octets that was (STARTTLS, RFC 3207 §4.2).
func (c *conn) discardBuffered() int {
	n := c.cmdReader.Buffered() + len(c.arrived.buf)
	c.arrived.buf = nil
	if c.reader != c.cmdReader {
		n += c.reader.Buffered()
		c.reader.Discard(c.reader.Buffered())
	}
	c.cmdReader.Discard(c.cmdReader.Buffered())
	return n
}

// errShuttingDown is what a wait for a command between transactions
// returns once the server shuts down.
var errShuttingDown = errors.New("server shutting down")

// readCommand reads one CRLF-terminated command line, flushing queued
// replies first when the client has nothing more in flight (RFC 2920
// §3.1: replies to a pipelined group are sent together). idle says that
// the wait is between transactions, where a shutdown ends it.
func (c *conn) readCommand(idle bool) ([]byte, error) {
	return c.nextCommand(idle, false)
}

// errHandedOff tells the session that its wait was handed off: it must
// start resume and leave the session alone (idle.go).
var errHandedOff = errors.New("session handed to a waiting goroutine")

// nextCommand is readCommand. With mayPark, the wait may be asked by the
// server's sweeper to move to a fresh goroutine (idle.go); nextCommand
// then returns errHandedOff.
func (c *conn) nextCommand(idle, mayPark bool) ([]byte, error) {
	c.releaseDataReader()
	if c.reader.Buffered() == 0 {
		if err := c.flush(); err != nil { // fresh write deadline: the last may have passed during a long DATA
			return nil, err
		}
	}
	// The deadline is set before the session is marked idle, so that a
	// shutdown's interrupt (a deadline in the past) is never overwritten.
	c.setReadDeadline(c.commandTimeout())
	wait := c.reader == c.cmdReader && c.cmdReader.Buffered() == 0 && len(c.arrived.buf) == 0
	park := wait && mayPark
	c.setIdle(idle, park)
	if idle && c.closing.Load() {
		c.setIdle(false, false)
		return nil, errShuttingDown
	}
	if wait {
		var err error
		if park {
			var handedOff bool
			if handedOff, err = c.waitParked(); handedOff {
				return nil, errHandedOff // still marked idle: resume carries on
			}
		} else {
			err = c.awaitInput()
		}
		if err != nil {
			c.setIdle(false, false)
			return nil, err
		}
	}
	line, err := c.readLine()
	c.setIdle(false, false)
	return line, err
}

// readLine reads the command line that has begun to arrive.
func (c *conn) readLine() ([]byte, error) {
	if cap(c.longLine) > cmdBufSize {
		c.longLine = nil // a long AUTH line does not pin memory for the session
	}
	line, err := c.reader.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		// Longer than the buffer: assemble it, up to the limit.
		c.longLine = append(c.longLine[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) && len(c.longLine) <= c.limits.CommandLine {
			line, err = c.reader.ReadSlice('\n')
			c.longLine = append(c.longLine, line...)
		}
		line = c.longLine
	}
	if len(line) > c.limits.CommandLine {
		// Discard the rest of the over-long line so the session stays in step.
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = c.reader.ReadSlice('\n')
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

// finalWriteGrace bounds writing the last reply (a 421 after a timeout,
// whose deadline has passed, or too many errors) before the close.
const finalWriteGrace = 5 * time.Second

// flush sends queued replies now, under a fresh write deadline.
func (c *conn) flush() error {
	if c.replies == nil {
		return nil
	}
	c.setWriteDeadline(c.commandTimeout())
	return c.flushNow()
}

// flushFinal sends the last replies of the session, under a write
// deadline of finalWriteGrace whatever the last one was.
func (c *conn) flushFinal() error {
	c.writeArmed = c.now().Add(finalWriteGrace)
	c.transport.SetWriteDeadline(c.writeArmed)
	return c.flushNow()
}

// flushNow writes out the replies and gives the writer back to the pool.
func (c *conn) flushNow() error {
	if c.replies == nil {
		return nil
	}
	err := c.replies.Flush()
	if err == nil {
		c.replies.Reset(nil)
		replyWriters.Put(c.replies)
		c.replies = nil
	}
	return err
}

// deadlineIn is now+d, capped by the session deadline.
func (c *conn) deadlineIn(d time.Duration) time.Time {
	t := c.now().Add(d)
	if t.After(c.deadline) {
		return c.deadline
	}
	return t
}

// setReadDeadline arms the read deadline now+d (capped by the session
// deadline). Re-arming a timer for every command and data block costs more
// than the command itself on a fast path, so a deadline that is already
// within a small slack of the wanted one is left as it is: the timeout
// stays between d-slack and d.
func (c *conn) setReadDeadline(d time.Duration) {
	c.setReadDeadlineAt(c.deadlineIn(d), d)
}

// setReadDeadlineAt arms the read deadline t (capped by the session
// deadline), leaving one within deadlineSlack(d) before it as it is.
func (c *conn) setReadDeadlineAt(t time.Time, d time.Duration) {
	if t.After(c.deadline) {
		t = c.deadline
	}
	if keep(c.readArmed, t, d) && c.cutAt.Load() == 0 {
		return
	}
	c.cutAt.Store(0)
	c.readArmed = t
	c.armedAt.Store(t.UnixNano())
	c.transport.SetReadDeadline(t)
}

// setWriteDeadline is setReadDeadline for writes.
func (c *conn) setWriteDeadline(d time.Duration) {
	if t := c.deadlineIn(d); !keep(c.writeArmed, t, d) {
		c.writeArmed = t
		c.transport.SetWriteDeadline(t)
	}
}

// keep reports whether the deadline last armed may stay for the wanted t:
// it is not later than t, and earlier by less than deadlineSlack(d).
func keep(last, t time.Time, d time.Duration) bool {
	return !last.IsZero() && !t.Before(last) && t.Sub(last) < deadlineSlack(d)
}

// deadlineSlack is how stale a deadline may get before it is re-armed.
func deadlineSlack(d time.Duration) time.Duration { return min(d/8, 5*time.Second) }

// startTLS runs the TLS server handshake over the connection and starts
// over on the TLS connection; used for implicit TLS and after STARTTLS.
func (c *conn) startTLS(cfg *tls.Config) (*tls.ConnectionState, error) {
	tc := tls.Server(c.transport, cfg)
	tc.SetDeadline(c.deadlineIn(c.commandTimeout()))
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	tc.SetDeadline(time.Time{})
	c.readArmed, c.writeArmed = time.Time{}, time.Time{}
	c.armedAt.Store(0)
	c.transport = tc
	c.start(tc)
	st := tc.ConnectionState()
	return &st, nil
}
