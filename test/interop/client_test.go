package interop

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ioTimeout bounds every read and write of the raw client.
const ioTimeout = 10 * time.Second

// maxReplyLines bounds a multi-line reply the raw client accepts.
const maxReplyLines = 200

// Reply is one SMTP reply as read off the wire (RFC 5321 §4.2).
type Reply struct {
	Code  int
	Lines []string // text after "NNN-" / "NNN ", one per line
}

// Enhanced returns the enhanced status code (RFC 3463) that starts the
// last line, or "" when there is none.
func (r Reply) Enhanced() string {
	if len(r.Lines) == 0 {
		return ""
	}
	f := strings.Fields(r.Lines[len(r.Lines)-1])
	if len(f) == 0 || strings.Count(f[0], ".") != 2 {
		return ""
	}
	return f[0]
}

// Has reports whether a line of the reply starts with keyword (an EHLO
// extension), compared case-insensitively.
func (r Reply) Has(keyword string) bool {
	for _, l := range r.Lines {
		f := strings.Fields(l)
		if len(f) > 0 && strings.EqualFold(f[0], keyword) {
			return true
		}
	}
	return false
}

func (r Reply) String() string {
	return strconv.Itoa(r.Code) + " " + strings.Join(r.Lines, " / ")
}

// Conn is a line-based raw SMTP client for protocol tests: it sends exactly
// the bytes it is given and reads replies strictly.
type Conn struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

// Dial connects to addr in plaintext. It does not read the greeting.
func Dial(t *testing.T, addr string) *Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &Conn{t: t, nc: nc, r: newReader(nc)}
}

// DialTLS connects to addr with implicit TLS (RFC 8314), trusting s's
// self-signed certificate. It does not read the greeting.
func DialTLS(t *testing.T, s *Server, addr string) *Conn {
	t.Helper()
	c := Dial(t, addr)
	c.handshake(s)
	return c
}

// Greeting reads the server's greeting and checks it is a 220.
func (c *Conn) Greeting() Reply {
	c.t.Helper()
	return c.Expect(220)
}

// Write sends raw exactly as given, in a single write.
func (c *Conn) Write(raw string) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c.nc, raw); err != nil {
		c.t.Fatalf("write %q: %v", raw, err)
	}
}

// Send writes the lines, each followed by CRLF, in a single write.
func (c *Conn) Send(lines ...string) {
	c.t.Helper()
	c.Write(strings.Join(lines, "\r\n") + "\r\n")
}

// ReadReply reads one reply, multi-line or not.
func (c *Conn) ReadReply() (Reply, error) {
	var r Reply
	c.nc.SetReadDeadline(time.Now().Add(ioTimeout))
	for n := 0; n < maxReplyLines; n++ {
		raw, err := c.r.ReadSlice('\n') // bufio.ErrBufferFull bounds the line
		if err != nil {
			return r, err
		}
		line := string(raw)
		if !strings.HasSuffix(line, "\r\n") {
			return r, errors.New("reply line without CRLF: " + strconv.Quote(line))
		}
		line = strings.TrimSuffix(line, "\r\n")
		if len(line) < 3 {
			return r, errors.New("short reply line: " + strconv.Quote(line))
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil || code < 200 || code > 599 {
			return r, errors.New("bad reply code: " + strconv.Quote(line))
		}
		if r.Code != 0 && code != r.Code {
			return r, errors.New("reply code changed within a reply: " + strconv.Quote(line))
		}
		r.Code = code
		sep, text := byte(' '), ""
		if len(line) > 3 {
			sep, text = line[3], line[4:]
		}
		r.Lines = append(r.Lines, text)
		switch sep {
		case ' ':
			return r, nil
		case '-':
		default:
			return r, errors.New("bad reply separator: " + strconv.Quote(line))
		}
	}
	return r, errors.New("reply longer than the bound")
}

// Reply reads one reply and fails the test on an error.
func (c *Conn) Reply() Reply {
	c.t.Helper()
	r, err := c.ReadReply()
	if err != nil {
		c.t.Fatalf("reading reply: %v (partial %v)", err, r)
	}
	return r
}

// Expect reads one reply and fails the test unless its code is code.
func (c *Conn) Expect(code int) Reply {
	c.t.Helper()
	r := c.Reply()
	if r.Code != code {
		c.t.Fatalf("got reply %v, want %d", r, code)
	}
	return r
}

// Cmd sends one command line and expects a reply with code.
func (c *Conn) Cmd(line string, code int) Reply {
	c.t.Helper()
	c.Send(line)
	return c.Expect(code)
}

// Hello sends EHLO and returns the 250 reply.
func (c *Conn) Hello() Reply {
	c.t.Helper()
	return c.Cmd("EHLO client.b.example", 250)
}

// StartTLS sends STARTTLS, expects 220 and does the handshake trusting
// s's self-signed certificate. Buffered plaintext is dropped, as RFC 3207
// §4.2 requires of the client too.
func (c *Conn) StartTLS(s *Server) {
	c.t.Helper()
	c.Cmd("STARTTLS", 220)
	c.handshake(s)
}

// handshake replaces the connection with a TLS client over it.
func (c *Conn) handshake(s *Server) *tls.ConnectionState {
	c.t.Helper()
	tc := tls.Client(c.nc, TLSConfig(c.t, s))
	tc.SetDeadline(time.Now().Add(ioTimeout))
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.nc = tc
	c.r = newReader(tc)
	st := tc.ConnectionState()
	return &st
}

// ExpectClosed reads until the server closes the connection, ignoring any
// replies before that; it fails when the server keeps it open.
func (c *Conn) ExpectClosed() []Reply {
	c.t.Helper()
	var replies []Reply
	for len(replies) < maxReplyLines {
		r, err := c.ReadReply()
		if err == nil {
			replies = append(replies, r)
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatalf("connection still open after %v (replies %v)", ioTimeout, replies)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
			return replies
		}
		c.t.Fatalf("reading until close: %v (replies %v)", err, replies)
	}
	c.t.Fatalf("too many replies before close: %v", replies)
	return nil
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && strings.Contains(oe.Err.Error(), "connection reset")
}

// newReader buffers replies; its size bounds one reply line (ReadSlice).
func newReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 4096) }

// Close closes the connection.
func (c *Conn) Close() { c.nc.Close() }

// TLSConfig returns a client config that trusts only s's self-signed
// certificate and checks it names the server's hostname.
func TLSConfig(t *testing.T, s *Server) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(s.CertPath)
	if err != nil {
		t.Fatalf("reading the self-signed certificate: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no PEM certificate", s.CertPath)
	}
	return &tls.Config{RootCAs: pool, ServerName: testHostname, MinVersion: tls.VersionTLS12}
}
