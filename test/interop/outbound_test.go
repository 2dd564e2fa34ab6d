package interop

// Outbound interop: mail submitted on smtpkit ("A") goes through its queue
// and remote courier to real next hops over loopback — a second smtpkit
// found through a loopback DNS server, Postfix's smtp-sink, Python's
// aiosmtpd (STARTTLS, AUTH) and a scripted peer that drops mid-DATA — and
// bounces come back to the local sender's Maildir.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"smtpkit/internal/testcert"
	"strings"
	"sync"
	"testing"
	"time"

	"smtpkit/internal/client"
	"smtpkit/internal/control"
	"smtpkit/internal/dns/dnstest"
	"smtpkit/internal/sasl"
)

const (
	outSender   = "alice@" + testDomain // the local, authenticated sender on A
	outPassword = "alice outbound pw"
	outWait     = 20 * time.Second // bound on one outbound condition
)

// outConf is A's [outbound] table and routes.
type outConf struct {
	resolver string // dnstest address; "" = none (routes only)
	port     int    // outbound.port; 0 = default
	tls      string // outbound.tls; "" = opportunistic
	maxAge   string // "" = 1h
	conc     int    // outbound.concurrency; 0 = default
	caFile   string // outbound.ca_file; "" = system roots
	routes   []outRoute
}

type outRoute struct {
	domain, host, tls, user, pwFile string
}

func (c outConf) toml() string {
	var b strings.Builder
	b.WriteString("[outbound]\nallow_loopback = true\nretry_min = \"1s\"\nretry_max = \"2s\"\n")
	fmt.Fprintf(&b, "tls = %q\nmax_age = %q\n", or(c.tls, "opportunistic"), or(c.maxAge, "1h"))
	if c.resolver != "" {
		fmt.Fprintf(&b, "resolver = %q\n", c.resolver)
	}
	if c.conc != 0 {
		fmt.Fprintf(&b, "concurrency = %d\n", c.conc)
	}
	if c.port != 0 {
		fmt.Fprintf(&b, "port = %d\n", c.port)
	}
	if c.caFile != "" {
		fmt.Fprintf(&b, "ca_file = %q\n", c.caFile)
	}
	for _, r := range c.routes {
		fmt.Fprintf(&b, "\n[[route]]\ndomain = %q\nhost = %q\n", r.domain, r.host)
		if r.tls != "" {
			fmt.Fprintf(&b, "tls = %q\n", r.tls)
		}
		if r.user != "" {
			fmt.Fprintf(&b, "auth_user = %q\nauth_password_file = %q\n", r.user, r.pwFile)
		}
	}
	return b.String()
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// startSender starts smtpkit A with conf and the account outSender.
func startSender(t *testing.T, conf outConf) *Server {
	t.Helper()
	s := StartServer(t, ServerOptions{ExtraTOML: conf.toml()})
	s.AddUser(t, outSender, outPassword)
	return s
}

// outSubmit sends msg from outSender to rcpts on s's submission port
// (STARTTLS with the server's certificate verified, AUTH PLAIN) with
// internal/client; every recipient must be accepted.
func outSubmit(t *testing.T, s *Server, msg []byte, rcpts ...string) {
	t.Helper()
	roots := rootsFromFile(t, s.CertPath)
	c := dialHello(t, s.Submission, "submitter.example")
	defer c.Close()
	if err := c.StartTLS(&tls.Config{ServerName: testHostname, RootCAs: roots}); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", outSender, outPassword)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), outWait)
	defer cancel()
	res, err := c.Send(ctx, client.Envelope{From: outSender, To: rcpts}, bytes.NewReader(msg))
	if err != nil || res.Data != nil {
		t.Fatalf("submitting: %v / %v (rcpts %v)", err, res.Data, res.Rcpt)
	}
	c.Quit()
}

// queued is how many messages s's queue holds: what the running server's
// control socket lists (a small message may be a journal record whose
// env file the next checkpoint writes), or, when no server answers there
// (stopped, killed), the envelopes in queue/env.
func queued(t testing.TB, s *Server) int {
	t.Helper()
	if resp, err := control.Call(filepath.Join(s.DataDir, "control.sock"), control.Request{Op: control.OpList}); err == nil {
		var list []json.RawMessage
		if !resp.OK {
			t.Fatalf("queue list: %s", resp.Error)
		}
		if err := json.Unmarshal(resp.Data, &list); err != nil {
			t.Fatalf("queue list: %v", err)
		}
		return len(list)
	}
	m, err := filepath.Glob(filepath.Join(s.DataDir, "queue", "env", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// eventually polls cond until it holds, failing after outWait.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(outWait); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", outWait, what)
		}
		time.Sleep(pollStep) // polling a condition, bounded above
	}
}

// waitLogCount waits until s's logs contain text at least n times.
func waitLogCount(t *testing.T, s *Server, text string, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d× %q in the logs", n, text), func() bool {
		return strings.Count(s.Logs(), text) >= n
	})
}

// checkBounce checks a DSN in the sender's Maildir: a multipart/report
// (RFC 3464) failing rcpt with a 5.x.x status.
func checkBounce(t *testing.T, dsn []byte, rcpt, status string) {
	t.Helper()
	s := string(dsn)
	for _, want := range []string{
		"multipart/report", "report-type=delivery-status", "message/delivery-status",
		"Final-Recipient: rfc822; " + rcpt, "Action: failed", "Status: " + status,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("bounce lacks %q:\n%s", want, s)
		}
	}
}

// --- smtpkit → smtpkit --------------------------------------------------

func TestOutboundToSmtpkit(t *testing.T) {
	b := StartServer(t, ServerOptions{Domains: []string{"remote.example"}})
	b.AddUser(t, "bob@remote.example", "bob pw")
	_, mxPort, _ := net.SplitHostPort(b.MX)
	dnsAddr := dnstest.NewServer(t,
		"remote.example. MX 10 mx.remote.example.",
		"mx.remote.example. A 127.0.0.1",
	)
	var port int
	fmt.Sscan(mxPort, &port)
	a := startSender(t, outConf{resolver: dnsAddr, port: port, tls: "opportunistic"})

	msg := testMessage("outbound-smtpkit")
	outSubmit(t, a, msg, "bob@remote.example")
	got := b.WaitMessages(t, "bob@remote.example", 1)[0]

	if !bytes.HasPrefix(got, []byte("Return-Path: <"+outSender+">\r\n")) {
		t.Errorf("B's Return-Path: %q", firstLine(got))
	}
	bTrace := string(got[:len(got)-len(StripTrace(got))])
	if !strings.Contains(bTrace, "with ESMTPS") || !strings.Contains(bTrace, "(using TLS 1.") {
		t.Errorf("B's Received does not show TLS (opportunistic STARTTLS):\n%s", bTrace)
	}
	rest := StripTrace(got)
	if !hasFieldPrefix(rest, "Received:") {
		t.Fatalf("no Received of A under B's:\n%s", rest)
	}
	aTrace := string(rest[:len(rest)-len(StripTrace(rest))])
	if !strings.Contains(aTrace, "with ESMTPSA") {
		t.Errorf("A's Received does not show an authenticated TLS submission:\n%s", aTrace)
	}
	if body := StripTrace(rest); !bytes.Equal(body, msg) {
		t.Errorf("message changed on the way:\n got %q\nwant %q", body, msg)
	}
	eventually(t, "A's queue to empty", func() bool { return queued(t, a) == 0 })
}

func firstLine(b []byte) string {
	l, _, _ := bytes.Cut(b, []byte("\n"))
	return string(l)
}

// --- Postfix smtp-sink ---------------------------------------------------

// sink is a Postfix smtp-sink dumping each message to a file in dir.
type sink struct {
	addr, dir string
	cmd       *exec.Cmd
	out       *syncBuffer
}

// startSink runs smtp-sink on addr (a fresh free address when "") with
// extra flags, dumping into dir (a new directory when "").
func startSink(t *testing.T, addr, dir string, flags ...string) *sink {
	t.Helper()
	bin := Need(t, "smtp-sink")
	if addr == "" {
		addr = freeAddr(t)
	}
	if dir == "" {
		// smtp-sink drops privileges to nobody: the directory must be
		// writable by it, so it cannot live under t.TempDir (0700).
		d, err := os.MkdirTemp("", "smtpkit-sink-")
		if err != nil {
			t.Fatal(err)
		}
		os.Chmod(d, 0o777)
		t.Cleanup(func() { os.RemoveAll(d) })
		dir = d
	}
	args := append([]string{"-d", filepath.Join(dir, "%H%M%S.")}, flags...)
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody") // smtp-sink refuses to run as root
	}
	s := &sink{addr: addr, dir: dir, out: &syncBuffer{}}
	s.cmd = exec.Command(bin, append(args, addr, "10")...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	eventually(t, "smtp-sink to listen on "+addr, func() bool {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			nc.Close()
		}
		return err == nil
	})
	return s
}

func (s *sink) stop() {
	if s.cmd.ProcessState == nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
}

// files returns the dumped messages that contain marker.
func (s *sink) files(t *testing.T, marker string) []string {
	t.Helper()
	var out []string
	for _, name := range listFiles(t, s.dir) {
		b, err := os.ReadFile(filepath.Join(s.dir, name))
		if err == nil && bytes.Contains(b, []byte(marker)) {
			out = append(out, string(b))
		}
	}
	return out
}

func TestOutboundSmtpSink(t *testing.T) {
	t.Run("accepted", func(t *testing.T) {
		sk := startSink(t, "", "")
		a := startSender(t, outConf{routes: []outRoute{{domain: "sink.example", host: sk.addr}}})
		msg := testMessage("sink-accepted")
		outSubmit(t, a, msg, "x@sink.example", "y@sink.example")
		eventually(t, "the message at smtp-sink", func() bool { return len(sk.files(t, "sink-accepted")) == 1 })
		f := sk.files(t, "sink-accepted")[0]
		for _, want := range []string{"X-Mail-Args: <" + outSender + ">", "X-Rcpt-Args: <x@sink.example>", "X-Rcpt-Args: <y@sink.example>",
			"X-Helo-Args: " + testHostname, "\n..two leading dots\n"} {
			if !strings.Contains(f, want) {
				t.Errorf("dump lacks %q:\n%s", want, f)
			}
		}
		eventually(t, "the queue to empty", func() bool { return queued(t, a) == 0 })
		if n := len(sk.files(t, "sink-accepted")); n != 1 {
			t.Errorf("%d copies at smtp-sink, want 1", n)
		}
	})

	t.Run("4xx RCPT then accepted", func(t *testing.T) {
		sk := startSink(t, "", "", "-r", "RCPT")
		a := startSender(t, outConf{routes: []outRoute{{domain: "sink.example", host: sk.addr}}})
		outSubmit(t, a, testMessage("sink-4xx"), "x@sink.example")
		waitLogCount(t, a, "delivery deferred", 1)
		if n := len(sk.files(t, "sink-4xx")); n != 0 {
			t.Fatalf("%d messages dumped although RCPT was refused", n)
		}
		sk.stop()
		sk = startSink(t, sk.addr, sk.dir) // the same port, now accepting
		eventually(t, "the retried message at smtp-sink", func() bool { return len(sk.files(t, "sink-4xx")) >= 1 })
		eventually(t, "the queue to empty", func() bool { return queued(t, a) == 0 })
		if n := len(sk.files(t, "sink-4xx")); n != 1 {
			t.Errorf("%d copies at smtp-sink, want exactly 1", n)
		}
		if n := a.CountFiles(t, outSender, "new"); n != 0 {
			t.Errorf("%d bounces for a message that was delivered", n)
		}
	})

	t.Run("5xx RCPT bounces", func(t *testing.T) {
		sk := startSink(t, "", "", "-f", "RCPT", "-B", "550 5.1.1 No such user here")
		a := startSender(t, outConf{routes: []outRoute{{domain: "sink.example", host: sk.addr}}})
		outSubmit(t, a, testMessage("sink-5xx"), "nobody@sink.example")
		dsn := a.WaitMessages(t, outSender, 1)[0]
		checkBounce(t, dsn, "nobody@sink.example", "5.1.1")
		if !strings.Contains(string(dsn), "No such user here") {
			t.Errorf("bounce does not quote the remote reply:\n%s", dsn)
		}
		eventually(t, "the queue to empty", func() bool { return queued(t, a) == 0 })
		if n := a.CountFiles(t, outSender, "new"); n != 1 {
			t.Errorf("%d bounces, want exactly 1", n)
		}
	})
}

// --- aiosmtpd --------------------------------------------------------------

// pyMsg is one message testdata/outbound_aiosmtpd.py received.
type pyMsg struct {
	From string   `json:"from"`
	Rcpt []string `json:"rcpt"`
	TLS  bool     `json:"tls"`
	Auth *string  `json:"auth"`
	Data string   `json:"data"`
}

// aioPeer is a running outbound_aiosmtpd.py.
type aioPeer struct {
	addr string
	mu   sync.Mutex
	msgs []pyMsg
}

func (p *aioPeer) messages() []pyMsg {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]pyMsg(nil), p.msgs...)
}

// peerCert writes a self-signed certificate and key for host (PEM) and
// returns the file names.
func peerCert(t *testing.T, host string) (certFile, keyFile string) {
	t.Helper()
	return testcert.WriteFiles(t, testcert.NewFor(t, 24*time.Hour, host), t.TempDir())
}

// startAio runs the aiosmtpd peer with args and collects its messages.
func startAio(t *testing.T, args ...string) *aioPeer {
	t.Helper()
	python := NeedPython(t)
	if err := exec.Command(python, "-c", "import aiosmtpd").Run(); err != nil {
		missing(t, "python3-aiosmtpd", err)
	}
	cmd := exec.Command(python, append([]string{"testdata/outbound_aiosmtpd.py"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("aiosmtpd stderr:\n%s", stderr.String())
		}
	})
	p := &aioPeer{}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			if port, ok := strings.CutPrefix(line, "READY "); ok {
				ready <- port
				continue
			}
			var m pyMsg
			if json.Unmarshal([]byte(line), &m) == nil {
				p.mu.Lock()
				p.msgs = append(p.msgs, m)
				p.mu.Unlock()
			}
		}
		close(ready)
	}()
	select {
	case port, ok := <-ready:
		if !ok {
			t.Fatalf("aiosmtpd peer exited:\n%s", stderr.String())
		}
		p.addr = "127.0.0.1:" + port
	case <-time.After(outWait):
		t.Fatalf("aiosmtpd peer not ready:\n%s", stderr.String())
	}
	return p
}

func TestOutboundAiosmtpd(t *testing.T) {
	cert, key := peerCert(t, "peer.example")
	tests := []struct {
		name     string
		peerArgs []string
		route    outRoute
		tls      bool
		auth     string
	}{
		{"plaintext, policy none", nil, outRoute{tls: "none"}, false, ""},
		{"no STARTTLS, opportunistic", nil, outRoute{tls: "opportunistic"}, false, ""},
		{"STARTTLS, opportunistic", []string{"--tls", cert, key}, outRoute{tls: "opportunistic"}, true, ""},
		{"STARTTLS required by both", []string{"--tls", cert, key, "--require-tls"}, outRoute{tls: "required"}, true, ""},
		{"relay with AUTH", []string{"--tls", cert, key, "--require-tls", "--auth", "relay-user", "relay secret"},
			outRoute{tls: "required", user: "relay-user"}, true, "relay-user"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := startAio(t, tc.peerArgs...)
			r := tc.route
			r.domain, r.host = "*", p.addr
			if r.user != "" {
				r.pwFile = filepath.Join(t.TempDir(), "relay.pw")
				os.WriteFile(r.pwFile, []byte("relay secret\n"), 0o600)
			}
			a := startSender(t, outConf{routes: []outRoute{r}})
			msg := testMessage("aiosmtpd-" + strings.ReplaceAll(tc.name, " ", "-"))
			outSubmit(t, a, msg, "x@peer.example")
			eventually(t, "the message at aiosmtpd", func() bool { return len(p.messages()) >= 1 })
			m := p.messages()[0]
			if m.From != outSender || len(m.Rcpt) != 1 || m.Rcpt[0] != "x@peer.example" || m.TLS != tc.tls {
				t.Errorf("peer got from=%q rcpt=%v tls=%v; want tls=%v", m.From, m.Rcpt, m.TLS, tc.tls)
			}
			if got := ""; m.Auth != nil || tc.auth != "" {
				if m.Auth != nil {
					got = *m.Auth
				}
				if got != tc.auth {
					t.Errorf("peer saw AUTH as %q, want %q", got, tc.auth)
				}
			}
			if body := StripTrace([]byte(m.Data)); !bytes.Equal(body, msg) {
				t.Errorf("body changed:\n got %q\nwant %q", body, msg)
			}
			eventually(t, "the queue to empty", func() bool { return queued(t, a) == 0 })
			if n := len(p.messages()); n != 1 {
				t.Errorf("peer got %d messages, want 1", n)
			}
		})
	}
}

// TestOutboundTLSNotMet: under required, a next hop without STARTTLS gets
// nothing (not even MAIL in plaintext) and the message stays queued; under
// verify, a self-signed certificate does the same. No bounce either.
func TestOutboundTLSNotMet(t *testing.T) {
	sk := startSink(t, "", "") // smtp-sink has no STARTTLS
	cert, key := peerCert(t, "peer.example")
	p := startAio(t, "--tls", cert, key)
	a := startSender(t, outConf{routes: []outRoute{
		{domain: "sink.example", host: sk.addr, tls: "required"},
		{domain: "peer.example", host: p.addr, tls: "verify"},
	}})
	outSubmit(t, a, testMessage("tls-required"), "x@sink.example")
	outSubmit(t, a, testMessage("tls-verify"), "x@peer.example")
	// Two attempts each: the first and one retry.
	waitLogCount(t, a, "4.7.4", 2)
	waitLogCount(t, a, "4.7.5", 2)
	if n := len(sk.files(t, "tls-required")); n != 0 {
		t.Errorf("smtp-sink got the message in plaintext under required")
	}
	if strings.Contains(sk.out.String(), "MAIL") {
		t.Errorf("smtp-sink saw MAIL: %s", sk.out.String())
	}
	if n := len(p.messages()); n != 0 {
		t.Errorf("aiosmtpd got %d messages although its certificate is not trusted", n)
	}
	if n := queued(t, a); n != 2 {
		t.Errorf("%d messages queued, want 2", n)
	}
	if n := a.CountFiles(t, outSender, "new"); n != 0 {
		t.Errorf("%d bounces for temporary TLS failures", n)
	}
}

// TestOutboundVerifyWithCAFile: outbound.ca_file makes a next hop with a
// private CA verifiable, so the verify policy delivers to it.
func TestOutboundVerifyWithCAFile(t *testing.T) {
	// The route names the host by address, so that is the name verified.
	cert, key := testcert.WriteFiles(t, testcert.New(t, "127.0.0.1"), t.TempDir())
	p := startAio(t, "--tls", cert, key, "--require-tls")
	a := startSender(t, outConf{caFile: cert, routes: []outRoute{{domain: "peer.example", host: p.addr, tls: "verify"}}})
	msg := testMessage("tls-verify-ca-file")
	outSubmit(t, a, msg, "x@peer.example")
	eventually(t, "the message at aiosmtpd", func() bool { return len(p.messages()) >= 1 })
	if m := p.messages()[0]; !m.TLS || !bytes.Equal(StripTrace([]byte(m.Data)), msg) {
		t.Errorf("peer got tls=%v body=%q", m.TLS, m.Data)
	}
}

// --- failures over time ----------------------------------------------------

func TestOutboundPeerDown(t *testing.T) {
	t.Run("stays queued", func(t *testing.T) {
		a := startSender(t, outConf{routes: []outRoute{{domain: "down.example", host: freeAddr(t)}}})
		outSubmit(t, a, testMessage("peer-down"), "x@down.example")
		waitLogCount(t, a, "delivery deferred", 2) // first attempt and a retry
		if n := queued(t, a); n != 1 {
			t.Errorf("%d messages queued, want 1", n)
		}
		if n := a.CountFiles(t, outSender, "new"); n != 0 {
			t.Errorf("%d bounces before max_age", n)
		}
	})
	t.Run("expires with one bounce", func(t *testing.T) {
		a := startSender(t, outConf{maxAge: "3s", routes: []outRoute{{domain: "down.example", host: freeAddr(t)}}})
		outSubmit(t, a, testMessage("peer-down-expiry"), "x@down.example")
		var dsn []byte
		eventually(t, "a bounce", func() bool { return a.CountFiles(t, outSender, "new") >= 1 })
		dsn = a.WaitMessages(t, outSender, 1)[0]
		checkBounce(t, dsn, "x@down.example", "5.4.7") // RFC 3463 §3.5: delivery time expired
		eventually(t, "the queue to empty", func() bool { return queued(t, a) == 0 })
		if n := a.CountFiles(t, outSender, "new"); n != 1 {
			t.Errorf("%d bounces, want 1", n)
		}
	})
}

// dropPeer is a scripted SMTP server whose first session closes the
// connection in the middle of the message data; later sessions accept.
type dropPeer struct {
	l        net.Listener
	afterDot bool // drop after the final "." instead of mid-DATA
	mu       sync.Mutex
	sessions int
	bodies   []string
}

func startDropPeer(t *testing.T) *dropPeer { t.Helper(); return startDropPeerAt(t, false) }

// startDropPeerAt is startDropPeer; with afterDot the first session takes
// the whole message and its final "." and then closes without a reply,
// the RFC 1047 case (the message counts as received).
func startDropPeerAt(t *testing.T, afterDot bool) *dropPeer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropPeer{l: l, afterDot: afterDot}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.sessions++
			n := p.sessions
			p.mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); p.session(nc, n == 1) }()
		}
	}()
	return p
}

func (p *dropPeer) session(nc net.Conn, drop bool) {
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(outWait))
	r, w := bufio.NewReader(nc), bufio.NewWriter(nc)
	say := func(s string) { w.WriteString(s + "\r\n"); w.Flush() }
	say("220 drop.example ESMTP scripted")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		switch verb := strings.ToUpper(strings.Fields(line + " x")[0]); verb {
		case "EHLO":
			say("250-drop.example")
			say("250 8BITMIME")
		case "MAIL", "RCPT", "RSET", "NOOP":
			say("250 ok")
		case "QUIT":
			say("221 bye")
			return
		case "DATA":
			say("354 go ahead")
			var body strings.Builder
			for lines := 0; ; lines++ {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if drop && !p.afterDot && lines == 3 {
					return // mid-DATA: some body bytes read, no reply
				}
				if l == ".\r\n" {
					break
				}
				body.WriteString(l)
			}
			p.mu.Lock()
			p.bodies = append(p.bodies, body.String())
			p.mu.Unlock()
			if drop && p.afterDot {
				return // taken, but the reply never comes
			}
			say("250 accepted")
		default:
			say("502 unknown")
		}
	}
}

func (p *dropPeer) count() (sessions, messages int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sessions, len(p.bodies)
}

func TestOutboundDropMidData(t *testing.T) {
	p := startDropPeer(t)
	a := startSender(t, outConf{routes: []outRoute{{domain: "drop.example", host: p.l.Addr().String(), tls: "none"}}})
	outSubmit(t, a, testMessage("drop-mid-data"), "x@drop.example")
	eventually(t, "a delivery after the drop", func() bool { _, m := p.count(); return m >= 1 })
	eventually(t, "the queue to empty", func() bool { return queued(t, a) == 0 })
	if s, m := p.count(); m != 1 || s < 2 {
		t.Errorf("%d messages over %d sessions, want 1 over at least 2", m, s)
	}
	if !strings.Contains(a.Logs(), "delivery deferred") {
		t.Errorf("the dropped attempt was not deferred")
	}
}

// TestOutboundDropAfterDot: the peer takes the message and its final "."
// and closes without a reply (RFC 1047). smtpkit cannot know whether it
// was delivered: it retries after the backoff (the peer then holds two
// copies) and logs the attempt and the retry with possible_duplicate=true.
func TestOutboundDropAfterDot(t *testing.T) {
	p := startDropPeerAt(t, true)
	a := startSender(t, outConf{routes: []outRoute{{domain: "drop.example", host: p.l.Addr().String(), tls: "none"}}})
	outSubmit(t, a, testMessage("drop-after-dot"), "x@drop.example")
	eventually(t, "the retry", func() bool { _, m := p.count(); return m >= 2 })
	eventually(t, "the queue to empty", func() bool { return queued(t, a) == 0 })
	if s, m := p.count(); m != 2 || s != 2 {
		t.Errorf("%d messages over %d sessions, want 2 over 2", m, s)
	}
	var dup []string
	for _, line := range strings.Split(a.Logs(), "\n") {
		if strings.Contains(line, "possible_duplicate=true") {
			dup = append(dup, line)
		}
	}
	deferred, delivered := false, false
	for _, line := range dup {
		deferred = deferred || strings.Contains(line, "delivery deferred")
		delivered = delivered || strings.Contains(line, "msg=delivered")
	}
	if !deferred || !delivered {
		t.Errorf("want the deferral and the delivery logged with possible_duplicate=true; got:\n%s", strings.Join(dup, "\n"))
	}
}

// --- crash -----------------------------------------------------------------

// TestOutboundKill9 kills smtpkit with SIGKILL while messages are queued
// and while one is in flight: after restarts every accepted message is
// delivered, exactly once — except that a message whose final "." the
// peer had already taken when the sender died may arrive twice (RFC 5321
// §6.1 prefers a duplicate to a loss); at most one such duplicate is
// tolerated and logged.
func TestOutboundKill9(t *testing.T) {
	addr := freeAddr(t) // nothing listens yet: messages stay queued
	// One delivery at a time, so that one message at most is in flight.
	a := startSender(t, outConf{conc: 1, routes: []outRoute{{domain: "sink.example", host: addr, tls: "none"}}})
	const n = 5
	for i := range n {
		outSubmit(t, a, testMessage(fmt.Sprintf("crash-%d-", i)), "x@sink.example")
	}
	waitLogCount(t, a, "delivery deferred", n)
	a.Kill9(t)

	// Phase 2: the peer is up but holds its reply to "." for 2 seconds;
	// a second SIGKILL lands while the first message is in flight.
	sk := startSink(t, addr, "", "-W", ".:2")
	a.Restart(t)
	// Every message survived the SIGKILL: in env files, or as journal
	// records the restart replayed. None is delivered yet (the sink holds
	// the first one's "." for 2 s).
	if q := queued(t, a); q != n {
		t.Fatalf("%d messages in the queue after SIGKILL and restart, want %d", q, n)
	}
	eventually(t, "a message in flight", func() bool { return len(sk.files(t, "crash-")) >= 1 })
	a.Kill9(t)
	sk.stop()
	sk = startSink(t, addr, sk.dir)
	a.Restart(t)
	eventually(t, "the queue to empty", func() bool { return queued(t, a) == 0 })
	dups := 0
	for i := range n {
		tag := fmt.Sprintf("crash-%d-", i)
		switch c := len(sk.files(t, tag)); {
		case c == 0:
			t.Errorf("%s lost", tag)
		case c > 1:
			dups += c - 1
			t.Logf("%s delivered %d times (in flight during SIGKILL)", tag, c)
		}
	}
	if dups > 1 {
		t.Errorf("%d duplicates, want at most 1", dups)
	}
	if b := a.CountFiles(t, outSender, "new"); b != 0 {
		t.Errorf("%d bounces", b)
	}
}

// rootsFromFile is a pool trusting the PEM certificates in path.
func rootsFromFile(t *testing.T, path string) *x509.CertPool {
	t.Helper()
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	return roots
}

// dialHello connects to addr with internal/client and says EHLO.
func dialHello(t *testing.T, addr, localName string) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), outWait)
	defer cancel()
	c, err := client.Dial(ctx, addr, client.Options{LocalName: localName})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Hello(); err != nil {
		c.Close()
		t.Fatal(err)
	}
	return c
}
