// Package client speaks one outbound SMTP conversation (RFC 5321) from the
// client side: the greeting, EHLO with HELO fallback, STARTTLS (RFC 3207),
// AUTH (RFC 4954), and mail transactions with SIZE (RFC 1870), 8BITMIME
// (RFC 6152), SMTPUTF8 (RFC 6531), PIPELINING (RFC 2920), and CHUNKING
// and BINARYMIME (RFC 3030). With Options.LMTP it speaks LMTP (RFC 2033)
// instead: LHLO, and one reply per accepted recipient after the data
// (Result.Final).
//
// It makes no policy decisions: which host to dial, whether TLS is
// required and which certificate is acceptable are decided by route and
// tlspolicy and passed in. Every server reply that is not the expected one
// becomes a *smtp.Error carrying that reply, so Temporary and Permanent
// classify it; network failures stay plain errors, which callers treat as
// temporary. Each step has the deadline of RFC 5321 §4.5.3.2.
//
// A Conn is not safe for concurrent use.
package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"smtpkit/internal/smtp"
)

// Timeouts bound each step of the conversation. A zero field takes the
// default of RFC 5321 §4.5.3.2 (Connect is ours: the RFC sets none).
type Timeouts struct {
	Connect   time.Duration // TCP connect and, for DialTLS, the handshake: 30s
	Greeting  time.Duration // §4.5.3.2.1 initial 220: 5m
	Mail      time.Duration // §4.5.3.2.2 MAIL: 5m
	Rcpt      time.Duration // §4.5.3.2.3 RCPT: 5m
	DataInit  time.Duration // §4.5.3.2.4 DATA → 354: 2m
	DataBlock time.Duration // §4.5.3.2.5 each write of message data: 3m
	DataEnd   time.Duration // §4.5.3.2.6 "." → final reply: 10m
	Command   time.Duration // every other command (EHLO, STARTTLS, AUTH, RSET, ...): 5m
}

// DefaultTimeouts are the RFC 5321 §4.5.3.2 values.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		Connect:   30 * time.Second,
		Greeting:  5 * time.Minute,
		Mail:      5 * time.Minute,
		Rcpt:      5 * time.Minute,
		DataInit:  2 * time.Minute,
		DataBlock: 3 * time.Minute,
		DataEnd:   10 * time.Minute,
		Command:   5 * time.Minute,
	}
}

// withDefaults fills zero fields from DefaultTimeouts.
func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts()
	for _, f := range []struct{ v, def *time.Duration }{
		{&t.Connect, &d.Connect}, {&t.Greeting, &d.Greeting}, {&t.Mail, &d.Mail},
		{&t.Rcpt, &d.Rcpt}, {&t.DataInit, &d.DataInit}, {&t.DataBlock, &d.DataBlock},
		{&t.DataEnd, &d.DataEnd}, {&t.Command, &d.Command},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return t
}

// Options configure a Conn.
type Options struct {
	// LocalName is the name said in EHLO/HELO (RFC 5321 §4.1.1.1): the
	// host's fully qualified name. Empty means "localhost", which is only
	// fit for tests.
	LocalName string
	Timeouts  Timeouts
	// Transcript, when non-nil, receives every command as "C: ..." and every
	// reply line as "S: ...", each ending in "\n". AUTH exchanges are written
	// as "C: <credentials hidden>", and message data as one line
	// "C: <message data, N octets>" before the final "C: ."; a BDAT chunk
	// is its command "C: BDAT N [LAST]" then "C: <message data, N octets>".
	Transcript io.Writer
	// Dialer connects; nil means a zero net.Dialer.
	Dialer *net.Dialer
	// ChunkSize is the largest BDAT chunk in octets (RFC 3030 §2) when the
	// server offers CHUNKING; 0 means DefaultChunkSize.
	ChunkSize int
	// LMTP makes the conversation LMTP (RFC 2033): Hello sends LHLO (and
	// falls back to nothing), the message always goes by DATA (CHUNKING
	// is not used), and the end of the data is answered once per
	// recipient accepted at RCPT, in RCPT order (§4.2), in Result.Final.
	LMTP bool
	// Network is the dial network of Dial: "tcp" (the default) or "unix"
	// (an LMTP socket such as /run/dovecot/lmtp).
	Network string
	// AllowPlaintextAuth lets Auth send credentials on a connection without
	// TLS. Off by default: credentials in clear text are readable by anyone
	// on the path (RFC 4954 §4, RFC 8314 §5).
	AllowPlaintextAuth bool
}

// Conn is one SMTP client connection.
type Conn struct {
	opts Options
	t    Timeouts

	mu        sync.Mutex // guards nc swaps and cancellation against the context watcher
	nc        net.Conn
	cancelErr error // the context's error once a watched context ended

	r *bufio.Reader
	w *bufio.Writer

	greeting smtp.Reply
	ehlo     smtp.Reply
	ext      map[string]string
	esmtp    bool // the last hello was EHLO
	tlsOn    bool
	tlsState tls.ConnectionState
	broken   error // a transport error left the connection in an unknown state
	quit     bool  // the session was ended with QUIT (and the connection closed)
	txns     int   // transactions begun (MAIL sent) on this connection, for LIMITS MAILMAX
}

// writeBufSize lets a pipelined group of MAIL, many RCPTs and DATA go out
// in one write.
const writeBufSize = 32 << 10

// Dial connects to addr ("host:port") and reads the greeting. A greeting
// other than 220 gives a *smtp.Error with that reply (RFC 5321 §3.1: a 554
// greeting means the server will not talk to us); the connection is then
// closed. ctx bounds the connect and the greeting.
func Dial(ctx context.Context, addr string, opts Options) (*Conn, error) {
	nc, err := dial(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	return newConn(ctx, nc, opts, false)
}

// DialTLS connects to addr and speaks TLS from the first byte (implicit
// TLS, RFC 8314 §3.3, port 465), then reads the greeting. cfg must name the
// server (ServerName) or skip verification; tlspolicy builds it.
func DialTLS(ctx context.Context, addr string, cfg *tls.Config, opts Options) (*Conn, error) {
	nc, err := dial(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	t := opts.Timeouts.withDefaults()
	hctx, cancel := context.WithTimeout(ctx, t.Connect)
	defer cancel()
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(hctx); err != nil {
		nc.Close()
		return nil, &TLSError{Err: err}
	}
	return newConn(ctx, tc, opts, true)
}

func dial(ctx context.Context, addr string, opts Options) (net.Conn, error) {
	d := opts.Dialer
	if d == nil {
		d = &net.Dialer{}
	}
	t := opts.Timeouts.withDefaults()
	cctx, cancel := context.WithTimeout(ctx, t.Connect)
	defer cancel()
	network := opts.Network
	if network == "" {
		network = "tcp"
	}
	return d.DialContext(cctx, network, addr)
}

// NewConn wraps an established connection (plain, or a *tls.Conn for
// implicit TLS) and reads the greeting, like Dial.
func NewConn(nc net.Conn, opts Options) (*Conn, error) {
	_, isTLS := nc.(*tls.Conn)
	return newConn(context.Background(), nc, opts, isTLS)
}

func newConn(ctx context.Context, nc net.Conn, opts Options, isTLS bool) (*Conn, error) {
	c := &Conn{
		opts: opts,
		t:    opts.Timeouts.withDefaults(),
		nc:   nc,
		r:    bufio.NewReader(nc),
		w:    bufio.NewWriterSize(nc, writeBufSize),
	}
	stop := c.watch(ctx)
	rep, err := c.readReply(c.t.Greeting)
	stop()
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("client: reading greeting: %w", err)
	}
	// After the greeting: a *tls.Conn handed to NewConn completes its
	// handshake on the first read.
	if tc, ok := nc.(*tls.Conn); ok && isTLS {
		c.tlsOn, c.tlsState = true, tc.ConnectionState()
	}
	c.greeting = rep
	if rep.Code != smtp.CodeReady {
		// RFC 5321 §3.1: after a 554 greeting the client should QUIT.
		c.quitQuietly()
		return nil, smtp.Wrap(rep, errors.New("client: server refused the connection"))
	}
	return c, nil
}

// Greeting is the server's 220 reply.
func (c *Conn) Greeting() smtp.Reply { return c.greeting }

// TLSState reports the TLS connection state, and whether TLS is active.
func (c *Conn) TLSState() (tls.ConnectionState, bool) { return c.tlsState, c.tlsOn }

// RemoteAddr is the server's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// LocalAddr is our end of the connection.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// Cmd sends one raw command line (without CRLF) and returns the reply, with
// the Command timeout. It is for tools such as the probe (HELP, VRFY);
// a reply of any code is returned without error.
func (c *Conn) Cmd(line string) (smtp.Reply, error) {
	if strings.ContainsAny(line, "\r\n") {
		return smtp.Reply{}, errors.New("client: command contains CR or LF")
	}
	return c.roundTrip(line, c.t.Command)
}

// Noop sends NOOP (RFC 5321 §4.1.1.9) and expects 250.
func (c *Conn) Noop() error { return c.simple("NOOP", smtp.CodeOK) }

// Reset sends RSET (RFC 5321 §4.1.1.5), aborting any transaction, so that
// the connection can carry another Send.
func (c *Conn) Reset() error { return c.simple("RSET", smtp.CodeOK) }

// Quit sends QUIT (RFC 5321 §4.1.1.10), waits for 221 and closes the
// connection. The connection is closed even when QUIT fails. After a
// session Send already ended (a message it refused itself) it does nothing.
func (c *Conn) Quit() error {
	if c.quit {
		return nil
	}
	c.quit = true
	err := c.simple("QUIT", smtp.CodeClosing)
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close closes the connection without QUIT.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken == nil {
		c.broken = net.ErrClosed
	}
	return c.nc.Close()
}

func (c *Conn) quitQuietly() {
	_ = c.Quit()
}

// simple sends a command and wants one reply code.
func (c *Conn) simple(line string, want int) error {
	rep, err := c.roundTrip(line, c.t.Command)
	if err != nil {
		return err
	}
	return expect(rep, want)
}

// expect turns an unexpected reply into a *smtp.Error carrying it.
func expect(rep smtp.Reply, want int) error {
	if rep.Code == want {
		return nil
	}
	return smtp.Wrap(rep, nil)
}

// roundTrip writes one command and reads its reply within d.
func (c *Conn) roundTrip(line string, d time.Duration) (smtp.Reply, error) {
	if err := c.arm(d); err != nil {
		return smtp.Reply{}, err
	}
	if err := c.writeLine(line, line); err != nil {
		return smtp.Reply{}, err
	}
	if err := c.flush(); err != nil {
		return smtp.Reply{}, err
	}
	return c.readReply(d)
}
