package delivery

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"smtpkit/internal/testcert"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// script is what a fakeServer answers. Replies are whole reply lines such
// as "450 4.2.0 busy"; "" means the positive default.
type script struct {
	greeting string            // default "220 fake ESMTP"
	tls      *tls.Config       // non-nil: offer STARTTLS and handshake with this config
	badTLS   bool              // offer STARTTLS, say 220, then send garbage instead of a handshake
	authUser string            // non-empty: offer AUTH PLAIN and accept only these credentials
	authPass string            //
	mail     string            // reply to MAIL
	rcpt     map[string]string // reply to RCPT, by address
	data     string            // reply after the message
	dropData bool              // close the connection after the first message line
	dropDot  bool              // close the connection after the final ".", without a reply
	// requireTLS offers REQUIRETLS (RFC 8689) in the EHLO reply under TLS.
	requireTLS bool
	// rcptMax and mailMax, when set, are enforced (452 for a RCPT past
	// rcptMax in a transaction, 421 and close for a MAIL past mailMax in
	// a session, as servers do without LIMITS) and, with limits, also
	// advertised as LIMITS RCPTMAX/MAILMAX (RFC 9422).
	rcptMax, mailMax int
	limits           bool
	// no8BITMIME leaves 8BITMIME out of the EHLO reply.
	no8BITMIME bool
}

// received is one message a fakeServer accepted.
type received struct {
	From  string
	Rcpts []string
	Body  string
	TLS   bool
	// MailArgs is MAIL's argument as sent ("FROM:<a@b> REQUIRETLS").
	MailArgs string
}

// fakeServer is a scripted SMTP server on one loopback address. It speaks
// just enough SMTP for the courier (lockstep, no PIPELINING) and records
// what happened.
type fakeServer struct {
	t      *testing.T
	l      net.Listener
	script script

	mu       sync.Mutex
	accepts  int
	cmds     []string // every command line, "TLS " prefixed when under TLS
	msgs     []received
	conns    map[net.Conn]bool
	wg       sync.WaitGroup
	closed   bool
	authOK   int
	authFail int
}

// serveFake serves s on l until the test ends.
func serveFake(t *testing.T, l net.Listener, s script) *fakeServer {
	f := &fakeServer{t: t, l: l, script: s, conns: map[net.Conn]bool{}}
	f.wg.Add(1)
	go f.acceptLoop()
	t.Cleanup(f.close)
	return f
}

func (f *fakeServer) close() {
	f.mu.Lock()
	f.closed = true
	f.l.Close()
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// dropConns closes every open connection, as a server ending idle
// sessions would.
func (f *fakeServer) dropConns() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		c.Close()
	}
}

func (f *fakeServer) acceptLoop() {
	defer f.wg.Done()
	for {
		c, err := f.l.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			c.Close()
			return
		}
		f.accepts++
		f.conns[c] = true
		f.wg.Add(1)
		f.mu.Unlock()
		go func() {
			defer f.wg.Done()
			defer func() {
				f.mu.Lock()
				delete(f.conns, c)
				f.mu.Unlock()
				c.Close()
			}()
			f.session(c)
		}()
	}
}

// Accepts, Messages and Commands read what was recorded.
func (f *fakeServer) Accepts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.accepts
}

func (f *fakeServer) Messages() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.msgs...)
}

func (f *fakeServer) Commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cmds...)
}

// sawVerb reports whether any command started with verb.
func (f *fakeServer) sawVerb(verb string) bool {
	for _, c := range f.Commands() {
		c = strings.TrimPrefix(c, "TLS ")
		if strings.HasPrefix(strings.ToUpper(c), verb) {
			return true
		}
	}
	return false
}

// pathOf is the address between the first "<" and the next ">".
func pathOf(arg string) string {
	_, rest, _ := strings.Cut(arg, "<")
	p, _, _ := strings.Cut(rest, ">")
	return p
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// fakeConn is one session's state.
type fakeConn struct {
	nc     net.Conn
	r      *bufio.Reader
	w      *bufio.Writer
	tlsOn  bool
	authed bool
	txn    *received
	txns   int // MAIL commands accepted in this session
}

func (c *fakeConn) reply(lines ...string) bool {
	for _, l := range lines {
		c.w.WriteString(l + "\r\n")
	}
	return c.w.Flush() == nil
}

func (f *fakeServer) session(nc net.Conn) {
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	c := &fakeConn{nc: nc, r: bufio.NewReader(nc), w: bufio.NewWriter(nc)}
	greeting := or(f.script.greeting, "220 fake ESMTP")
	if !c.reply(greeting) || !strings.HasPrefix(greeting, "2") {
		return
	}
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		f.mu.Lock()
		if c.tlsOn {
			f.cmds = append(f.cmds, "TLS "+line)
		} else {
			f.cmds = append(f.cmds, line)
		}
		f.mu.Unlock()
		if !f.command(c, line) {
			return
		}
	}
}

// command answers one command line; false ends the session.
func (f *fakeServer) command(c *fakeConn, line string) bool {
	verb, arg, _ := strings.Cut(line, " ")
	switch strings.ToUpper(verb) {
	case "EHLO", "HELO":
		ext := []string{"250-fake.example", "250-8BITMIME", "250-SIZE 1000000"}
		if f.script.no8BITMIME {
			ext = []string{"250-fake.example", "250-SIZE 1000000"}
		}
		if !c.tlsOn && (f.script.tls != nil || f.script.badTLS) {
			ext = append(ext, "250-STARTTLS")
		}
		if f.script.authUser != "" {
			ext = append(ext, "250-AUTH PLAIN")
		}
		if c.tlsOn && f.script.requireTLS {
			ext = append(ext, "250-REQUIRETLS")
		}
		if f.script.limits {
			ext = append(ext, fmt.Sprintf("250-LIMITS RCPTMAX=%d MAILMAX=%d", f.script.rcptMax, f.script.mailMax))
		}
		ext = append(ext, "250 ENHANCEDSTATUSCODES")
		c.txn = nil
		return c.reply(ext...)
	case "STARTTLS":
		return f.startTLS(c)
	case "AUTH":
		return f.auth(c, arg)
	case "MAIL":
		rep := or(f.script.mail, "250 2.1.0 ok")
		if f.script.mailMax > 0 && c.txns >= f.script.mailMax {
			c.reply("421 4.7.0 too many transactions")
			return false
		}
		if strings.HasPrefix(rep, "2") {
			c.txns++
			c.txn = &received{From: pathOf(arg), TLS: c.tlsOn, MailArgs: arg}
		}
		return c.reply(rep)
	case "RCPT":
		addr := pathOf(arg)
		rep := or(f.script.rcpt[addr], "250 2.1.5 ok")
		if c.txn == nil {
			rep = "503 5.5.1 MAIL first"
		} else if f.script.rcptMax > 0 && len(c.txn.Rcpts) >= f.script.rcptMax {
			rep = "452 4.5.3 too many recipients"
		}
		if strings.HasPrefix(rep, "2") {
			c.txn.Rcpts = append(c.txn.Rcpts, addr)
		}
		return c.reply(rep)
	case "DATA":
		return f.data(c)
	case "RSET":
		c.txn = nil
		return c.reply("250 2.0.0 ok")
	case "NOOP":
		return c.reply("250 2.0.0 ok")
	case "QUIT":
		c.reply("221 2.0.0 bye")
		return false
	}
	return c.reply("500 5.5.2 what")
}

func (f *fakeServer) startTLS(c *fakeConn) bool {
	if !c.reply("220 2.0.0 go ahead") {
		return false
	}
	if f.script.badTLS {
		c.nc.Write([]byte("this is not a TLS record, sorry\r\n"))
		return false
	}
	tc := tls.Server(c.nc, f.script.tls)
	if err := tc.Handshake(); err != nil {
		return false
	}
	c.nc, c.r, c.w, c.tlsOn, c.txn = tc, bufio.NewReader(tc), bufio.NewWriter(tc), true, nil
	return true
}

func (f *fakeServer) auth(c *fakeConn, arg string) bool {
	mech, resp, _ := strings.Cut(arg, " ")
	if !strings.EqualFold(mech, "PLAIN") || f.script.authUser == "" {
		return c.reply("504 5.5.4 unknown mechanism")
	}
	if resp == "" {
		if !c.reply("334 ") {
			return false
		}
		l, err := c.r.ReadString('\n')
		if err != nil {
			return false
		}
		resp = strings.TrimRight(l, "\r\n")
	}
	dec, _ := base64.StdEncoding.DecodeString(resp)
	parts := strings.Split(string(dec), "\x00")
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(parts) == 3 && parts[1] == f.script.authUser && parts[2] == f.script.authPass {
		f.authOK++
		c.authed = true
		return c.reply("235 2.7.0 ok")
	}
	f.authFail++
	return c.reply("535 5.7.8 bad credentials")
}

func (f *fakeServer) data(c *fakeConn) bool {
	if c.txn == nil || len(c.txn.Rcpts) == 0 {
		return c.reply("554 5.5.1 no valid recipients")
	}
	if !c.reply("354 go on") {
		return false
	}
	var body strings.Builder
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			return false
		}
		if l == ".\r\n" {
			if f.script.dropDot {
				return false // the message was taken, the reply is lost (RFC 1047)
			}
			break
		}
		if f.script.dropData {
			return false
		}
		body.WriteString(strings.TrimPrefix(l, "."))
	}
	rep := or(f.script.data, "250 2.0.0 queued")
	if strings.HasPrefix(rep, "2") {
		c.txn.Body = body.String()
		f.mu.Lock()
		f.msgs = append(f.msgs, *c.txn)
		f.mu.Unlock()
	}
	c.txn = nil
	return c.reply(rep)
}

// listenSamePort listens on the same free port of each loopback address
// (MX hosts are all contacted on one port), retrying when another process
// holds the port on one of them.
func listenSamePort(t *testing.T, ips ...string) (int, []net.Listener) {
	t.Helper()
	for range 20 {
		first, err := net.Listen("tcp", net.JoinHostPort(ips[0], "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := first.Addr().(*net.TCPAddr).Port
		ls := []net.Listener{first}
		for _, ip := range ips[1:] {
			l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
			if err != nil {
				break
			}
			ls = append(ls, l)
		}
		if len(ls) == len(ips) {
			return port, ls
		}
		for _, l := range ls {
			l.Close()
		}
	}
	t.Fatalf("no common free port on %v", ips)
	return 0, nil
}

func (r received) String() string {
	return fmt.Sprintf("from=%s rcpts=%v tls=%v body=%q", r.From, r.Rcpts, r.TLS, r.Body)
}

// selfSigned returns a certificate for names and a pool trusting it (the
// verify policy's roots).
func selfSigned(t *testing.T, names ...string) (tls.Certificate, *x509.CertPool) {
	c := testcert.New(t, names...)
	return c, testcert.Pool(c)
}

func tlsConfig(cert tls.Certificate) *tls.Config { return testcert.ServerConfig(cert) }
