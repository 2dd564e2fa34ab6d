package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"smtpkit/internal/testcert"
	"strings"
	"sync"
	"testing"
	"time"

	"smtpkit/internal/sasl"
	"smtpkit/internal/smtp"
)

// memBackend stores messages in memory; local domain is "example.com",
// users "alice" and "postmaster".
type memBackend struct {
	mu   sync.Mutex
	msgs []memMsg
}

type memMsg struct {
	env  Envelope
	data []byte
}

func (b *memBackend) Sender(_ context.Context, s *SessionInfo, from smtp.Address) error {
	if s.AuthUser != "" && !strings.EqualFold(from.String(), s.AuthUser) {
		return smtp.E(553, "5.7.1", "Sender address not owned")
	}
	return nil
}

func (b *memBackend) Recipient(_ context.Context, s *SessionInfo, _, rcpt smtp.Address) error {
	if rcpt.DomainLower() != "example.com" {
		if s.AuthUser != "" {
			return nil
		}
		return smtp.E(550, "5.7.1", "Relaying denied")
	}
	local, _, _ := strings.Cut(strings.ToLower(rcpt.Local), "+")
	switch local {
	case "alice", "postmaster":
		return nil
	}
	return smtp.E(550, "5.1.1", "No such user here")
}

func (b *memBackend) Begin(_ context.Context, env *Envelope) (MessageWriter, error) {
	return &memWriter{b: b, env: *env}, nil
}

func (b *memBackend) messages() []memMsg {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]memMsg(nil), b.msgs...)
}

type memWriter struct {
	b   *memBackend
	env Envelope
	buf bytes.Buffer
}

func (w *memWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }
func (w *memWriter) Commit() (string, error) {
	w.b.mu.Lock()
	defer w.b.mu.Unlock()
	w.b.msgs = append(w.b.msgs, memMsg{env: w.env, data: w.buf.Bytes()})
	return w.env.ID, nil
}
func (w *memWriter) Abort() {}

type memCreds struct{}

func (memCreds) CheckPassword(_ context.Context, u, p string) error {
	if u == "alice@example.com" && p == "secret" {
		return nil
	}
	return sasl.ErrInvalidCredentials
}
func (memCreds) ScramKeys(context.Context, string) (sasl.ScramKeys, error) {
	return sasl.ScramKeys{}, sasl.ErrInvalidCredentials
}

func testTLSConfig(t testing.TB) *tls.Config {
	return testcert.ServerConfig(testcert.New(t, "mx.example.com"))
}

type testServer struct {
	srv     *Server
	backend *memBackend
	addrs   []string
}

// startServer runs a server with one listener per given listener spec on
// loopback port 0.
// serve starts srv listening and serving, and shuts it down (waiting
// for Serve to return) when the test ends.
func serve(t testing.TB, srv *Server) {
	t.Helper()
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	})
}

func startServer(t testing.TB, limits Limits, ls ...Listener) *testServer {
	t.Helper()
	return startServerWith(t, nil, limits, ls...)
}

// startServerWith is startServer with obs as the server's Observer.
func startServerWith(t testing.TB, obs Observer, limits Limits, ls ...Listener) *testServer {
	t.Helper()
	tc := testTLSConfig(t)
	for i := range ls {
		ls[i].Address = "127.0.0.1:0"
		if ls[i].TLS != TLSNone {
			ls[i].TLSConfig = tc
		}
	}
	b := &memBackend{}
	srv := New(Options{
		Hostname: "mx.example.com", PostmasterDomain: "example.com",
		Listeners: ls, Backend: b, Credentials: memCreds{}, Limits: limits,
		AuthFailureDelay: time.Millisecond, Observer: obs,
	})
	serve(t, srv)
	ts := &testServer{srv: srv, backend: b}
	for _, a := range srv.Addrs() {
		ts.addrs = append(ts.addrs, a.String())
	}
	return ts
}

// client is a minimal line client for scripted dialogues.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	cl := dialNoGreeting(t, addr)
	cl.expect("220 ")
	return cl
}

// dialNoGreeting connects without reading the greeting.
func dialNoGreeting(t testing.TB, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &client{t: t, conn: c, r: bufio.NewReader(c)}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// reply reads one (possibly multi-line) reply and returns it whole.
func (c *client) reply() string {
	c.t.Helper()
	r, err := smtp.ReadReply(c.r)
	if err != nil {
		c.t.Fatalf("reading reply: %v", err)
	}
	return r.String()
}

// expect reads a reply and checks that it starts with prefix.
func (c *client) expect(prefix string) string {
	c.t.Helper()
	got := c.reply()
	if !strings.HasPrefix(got, prefix) {
		c.t.Fatalf("got reply %q, want prefix %q", got, prefix)
	}
	return got
}

func (c *client) cmd(line, prefix string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.expect(prefix)
}

// closed checks that the server closed the connection.
func (c *client) closed() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := c.r.ReadByte()
	if err == nil {
		rest, _ := c.r.Peek(c.r.Buffered())
		c.t.Fatalf("connection still open, got %q", string(b)+string(rest))
	}
}

func (c *client) startTLS() {
	c.t.Helper()
	c.cmd("STARTTLS", "220 2.0.0")
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true, ServerName: "mx.example.com"})
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.conn = tc
	c.r = bufio.NewReader(tc)
}

func rawDial(t testing.TB, addr string) *client {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &client{t: t, conn: c, r: bufio.NewReader(c)}
}

func tlsClient(t testing.TB, c *client) *client {
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	return &client{t: t, conn: tc, r: bufio.NewReader(tc)}
}

func tlsDial(t testing.TB, addr string) *client {
	c := tlsClient(t, rawDial(t, addr))
	c.expect("220 ")
	return c
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
