package interop

// Front ends (issue #15): a real HAProxy in TCP mode in front of smtpkit
// with send-proxy (PROXY v1) and send-proxy-v2 for a plain mx listener, a
// STARTTLS submission listener and an implicit-TLS submissions listener;
// swaks --xclient; and a private Postfix relaying to smtpkit with
// smtp_send_xforward_command = yes. Every address is in 127.15.2.0/24.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const (
	proxyFrontIP  = "127.15.2.1"  // HAProxy's frontends
	proxySourceIP = "127.15.2.10" // HAProxy's source towards smtpkit: proxy_from
	proxyClientIP = "127.15.2.20" // the client behind HAProxy
	directIP      = "127.15.2.31" // a client straight to smtpkit, in no list
	xclientIP     = "127.15.2.30" // swaks --xclient: xclient_from
	xfwdClientIP  = "127.15.2.21" // the client of the Postfix front end
	xfwdBindIP    = "127.15.2.40" // that Postfix's smtp client: xclient_from
	xfwdListenIP  = "127.15.2.50" // that Postfix's smtpd
)

// frontEndServer is smtpkit with the PROXY protocol on every listener
// and XCLIENT/XFORWARD for xclientIP and xfwdBindIP on mx.
func frontEndServer(t *testing.T) *Server {
	proxied := fmt.Sprintf("proxy_protocol = true\nproxy_from = [%q]", proxySourceIP)
	return StartServer(t, ServerOptions{ListenerTOML: map[string]string{
		"mx":          proxied + fmt.Sprintf("\nxclient_from = [%q, %q]", xclientIP, xfwdBindIP),
		"submission":  proxied,
		"submissions": proxied,
	}})
}

// startHAProxy runs haproxy in the foreground with one TCP frontend per
// backend address and PROXY version: frontends[i] forwards to
// backends[i/2] with send-proxy (even i) or send-proxy-v2 (odd i).
func startHAProxy(t *testing.T, backends ...string) (frontends []string) {
	t.Helper()
	haproxy := Need(t, "haproxy")
	var cfg strings.Builder
	cfg.WriteString("global\n    maxconn 200\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n")
	for i, be := range backends {
		// The v2 servers are health-checked with the header too: HAProxy
		// sends a LOCAL header on its own connections.
		for v, opt := range []string{"send-proxy", "send-proxy-v2 check inter 1s check-send-proxy"} {
			fe := freeAddrOn(t, proxyFrontIP)
			frontends = append(frontends, fe)
			fmt.Fprintf(&cfg, "frontend f%d_%d\n    bind %s\n    default_backend b%d_%d\n", i, v, fe, i, v)
			fmt.Fprintf(&cfg, "backend b%d_%d\n    server s %s %s source %s\n", i, v, be, opt, proxySourceIP)
		}
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cmd := exec.Command(haproxy, "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() // our own child, by its PID
		cmd.Wait()
		if t.Failed() || testing.Verbose() {
			t.Logf("haproxy config:\n%s\nhaproxy output:\n%s", cfg.String(), logs.String())
		}
	})
	for _, fe := range frontends {
		probeWaitListening(t, fe, logs)
	}
	return frontends
}

// waitMessageWith polls addr's Maildir new/ for a message containing
// marker and returns it.
func waitMessageWith(t *testing.T, s *Server, addr, marker string) []byte {
	t.Helper()
	dir := filepath.Join(s.Maildir(addr), "new")
	var found []byte
	waitUntil(t, pollTimeout, "a message with "+marker+" for "+addr, func() bool {
		for _, name := range listFiles(t, dir) {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err == nil && bytes.Contains(b, []byte(marker)) {
				found = b
				return true
			}
		}
		return false
	})
	return found
}

// firstReceived is the first (topmost) Received field of msg, unfolded.
func firstReceived(msg []byte) string {
	i := bytes.Index(msg, []byte("\nReceived: "))
	if i < 0 {
		return ""
	}
	rest := msg[i+1:]
	end := 0
	for {
		nl := bytes.IndexByte(rest[end:], '\n')
		if nl < 0 {
			end = len(rest)
			break
		}
		end += nl + 1
		if end >= len(rest) || (rest[end] != ' ' && rest[end] != '\t') {
			break
		}
	}
	return strings.Join(strings.Fields(string(rest[:end])), " ")
}

// swaksFrom are swaks arguments binding the client to ip.
func swaksFrom(ip string, args ...string) []string {
	return append([]string{"--local-interface", ip}, args...)
}

// TestHAProxyFrontEnd: HAProxy with send-proxy and send-proxy-v2 in front
// of each listener kind; the message records the address HAProxy saw (the
// client's), and so does the log; a PROXY header straight from an address
// that is not proxy_from is refused, and HAProxy's own address without a
// header is closed.
func TestHAProxyFrontEnd(t *testing.T) {
	swaks := Need(t, "swaks")
	s := frontEndServer(t)
	const user, password = "user@test.example", "correct horse battery staple"
	s.AddUser(t, user, password)
	fe := startHAProxy(t, s.MX, s.Submission, s.Submissions)
	kinds := []struct {
		name string
		args []string
		with string // the Received protocol keyword
	}{
		{name: "mx plain", args: []string{"--from", "a@b.example"}, with: "with ESMTP "},
		{name: "submission STARTTLS", args: []string{"--from", user, "-tls", "--auth", "PLAIN", "--auth-user", user, "--auth-password", password}, with: "with ESMTPSA "},
		{name: "submissions implicit TLS", args: []string{"--from", user, "--tls-on-connect", "--auth", "PLAIN", "--auth-user", user, "--auth-password", password}, with: "with ESMTPSA "},
	}
	for i, k := range kinds {
		for v, version := range []string{"v1", "v2"} {
			t.Run(k.name+" "+version, func(t *testing.T) {
				marker := fmt.Sprintf("haproxy-%d-%s", i, version)
				args := swaksFrom(proxyClientIP, "--server", fe[2*i+v], "--to", user, "--helo", "client.b.example",
					"--tls-verify", "--tls-ca-path", s.CertPath, "--tls-sni", testHostname, "--timeout", "20",
					"--header", "Subject: "+marker)
				mustRun(t, nil, swaks, append(args, k.args...)...)
				msg := waitMessageWith(t, s, user, marker)
				rcvd := firstReceived(msg)
				if !strings.Contains(rcvd, "from client.b.example (["+proxyClientIP+"])") || !strings.Contains(rcvd, k.with) {
					t.Errorf("Received field does not name the client HAProxy saw (%s) %q: %q", proxyClientIP, k.with, rcvd)
				}
			})
		}
	}
	// One "proxied" line per session, from HAProxy's address, naming the
	// client as remote; both header versions seen.
	logs := s.Logs()
	for _, version := range []string{"proxy_version=1", "proxy_version=2"} {
		re := regexp.MustCompile(`msg=proxied .*remote=` + regexp.QuoteMeta(proxyClientIP) + `:\d+ proxy=` + regexp.QuoteMeta(proxySourceIP) + `:\d+ ` + version)
		if n := len(re.FindAllString(logs, -1)); n != 3 {
			t.Errorf("%d proxied lines with %s, want 3 (one per listener)", n, version)
		}
	}

	t.Run("health check with a LOCAL header", func(t *testing.T) {
		local := regexp.MustCompile(`msg=proxied .*remote=` + regexp.QuoteMeta(proxySourceIP) + `:\d+ proxy=` +
			regexp.QuoteMeta(proxySourceIP) + `:\d+ proxy_version=2 proxy_local=true`)
		waitUntil(t, pollTimeout, "a health check's LOCAL header", func() bool { return local.MatchString(s.Logs()) })
	})
	t.Run("header from another address refused", func(t *testing.T) {
		c := dialFromIP(t, directIP, s.MX)
		expectLine(t, c, "220 ")
		fmt.Fprintf(c, "PROXY TCP4 192.0.2.66 127.0.0.1 4711 25\r\n")
		expectClosed(t, c)
		waitUntil(t, pollTimeout, "the refusal logged", func() bool {
			return regexp.MustCompile(`PROXY protocol header refused.*remote=` + regexp.QuoteMeta(directIP)).MatchString(s.Logs())
		})
		if strings.Contains(s.Logs(), "192.0.2.66") {
			t.Error("the forged address made it into the log as a client")
		}
	})
	t.Run("direct SMTP from another address served", func(t *testing.T) {
		marker := "direct-smtp"
		mustRun(t, nil, swaks, swaksFrom(directIP, "--server", s.MX, "--to", user, "--from", "a@b.example",
			"--header", "Subject: "+marker, "--timeout", "20")...)
		if rcvd := firstReceived(waitMessageWith(t, s, user, marker)); !strings.Contains(rcvd, "(["+directIP+"])") {
			t.Errorf("Received: %q", rcvd)
		}
	})
	t.Run("proxy_from without a header closed", func(t *testing.T) {
		c := dialFromIP(t, proxySourceIP, s.MX)
		fmt.Fprintf(c, "EHLO sneaky.example\r\n")
		expectClosed(t, c)
		waitUntil(t, pollTimeout, "the missing header logged", func() bool {
			return strings.Contains(s.Logs(), "PROXY protocol header missing or invalid")
		})
	})
}

// dialFromIP connects to addr from the loopback address src.
func dialFromIP(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

func expectLine(t *testing.T, c net.Conn, prefix string) {
	t.Helper()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, prefix) {
		t.Fatalf("got %q, %v; want %q", line, err, prefix)
	}
}

// expectClosed checks that the server closes c without another byte.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	b := make([]byte, 512)
	n, err := c.Read(b)
	if n > 0 || err == nil {
		t.Fatalf("connection not closed: got %q, %v", b[:n], err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after the deadline")
	}
}

// TestSwaksXClient: swaks --xclient from an xclient_from address changes
// the client (Received names the XCLIENT address and name); from any
// other address XCLIENT is not advertised — swaks refuses to go on, and
// with --xclient-no-verify the server answers 550 5.7.0 — and
// --xclient-optional delivers as the real client.
func TestSwaksXClient(t *testing.T) {
	swaks := Need(t, "swaks")
	s := frontEndServer(t)
	const user = "user@test.example"
	s.AddUser(t, user, "correct horse battery staple")
	base := func(ip, marker string, extra ...string) []string {
		return append(swaksFrom(ip, "--server", s.MX, "--to", user, "--from", "a@b.example", "--helo", "client.b.example",
			"--header", "Subject: "+marker, "--timeout", "20"), extra...)
	}

	t.Run("allowed", func(t *testing.T) {
		r := mustRun(t, nil, swaks, base(xclientIP, "xclient-allowed", "--xclient", "ADDR=192.0.2.7 NAME=client.example PORT=4711")...)
		if !strings.Contains(r.Stdout, "250-XCLIENT NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT") {
			t.Errorf("XCLIENT not advertised:\n%s", r.Stdout)
		}
		if !regexp.MustCompile(`(?m)^<-\s+220 `).MatchString(r.Stdout[strings.Index(r.Stdout, "XCLIENT ADDR"):]) {
			t.Errorf("no new greeting after XCLIENT:\n%s", r.Stdout)
		}
		rcvd := firstReceived(waitMessageWith(t, s, user, "xclient-allowed"))
		if !strings.Contains(rcvd, "from client.b.example (client.example [192.0.2.7])") {
			t.Errorf("Received field does not name the XCLIENT client: %q", rcvd)
		}
		if !regexp.MustCompile(`msg=xclient .*remote=192\.0\.2\.7:4711 front_end=` + regexp.QuoteMeta(xclientIP)).MatchString(s.Logs()) {
			t.Error("no xclient log line naming the new client and the front end")
		}
	})
	t.Run("not advertised to others", func(t *testing.T) {
		r := runPeer(t, nil, swaks, base(directIP, "xclient-refused", "--xclient-addr", "192.0.2.8")...)
		if r.Err == nil || strings.Contains(r.Stdout, "XCLIENT") && strings.Contains(r.Stdout, "250-XCLIENT") {
			t.Errorf("swaks went on without XCLIENT advertised (err %v):\n%s", r.Err, r.Stdout)
		}
		// swaks never sends XCLIENT unadvertised: say it by hand.
		c := dialFromIP(t, directIP, s.MX)
		br := bufio.NewReader(c)
		for _, step := range [][2]string{{"", "220 "}, {"EHLO client.b.example", "250 "}, {"XCLIENT ADDR=192.0.2.8", "550 5.7.0 Insufficient authorization"}} {
			if step[0] != "" {
				fmt.Fprintf(c, "%s\r\n", step[0])
			}
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("after %q: %v", step[0], err)
				}
				if len(line) > 3 && line[3] == '-' {
					continue
				}
				if !strings.HasPrefix(line, step[1]) {
					t.Fatalf("after %q: %q, want %q", step[0], line, step[1])
				}
				break
			}
		}
	})
	t.Run("optional", func(t *testing.T) {
		mustRun(t, nil, swaks, base(directIP, "xclient-optional", "--xclient-addr", "192.0.2.9", "--xclient-optional")...)
		rcvd := firstReceived(waitMessageWith(t, s, user, "xclient-optional"))
		if !strings.Contains(rcvd, "(["+directIP+"])") {
			t.Errorf("Received field: %q, want the real client %s", rcvd, directIP)
		}
	})
}

// xfwdConfig fills testdata/postfix_xforward.
type xfwdConfig struct {
	Addr, ListenIP, Bind, NextHop, NextPort, Conf, Queue, Data string
}

// TestPostfixXForward: a private Postfix in front of smtpkit with
// smtp_send_xforward_command = yes; swaks hands it a message from
// xfwdClientIP, Postfix relays it from xfwdBindIP, and smtpkit records
// the original client: the Received field (with the relay in a comment)
// and the message accepted line.
func TestPostfixXForward(t *testing.T) {
	swaks := Need(t, "swaks")
	postfix := Need(t, "postfix")
	if os.Geteuid() != 0 {
		missing(t, "root (for a private Postfix instance)", errors.New("not root"))
	}
	s := frontEndServer(t)
	const user = "user@test.example"
	s.AddUser(t, user, "correct horse battery staple")

	dir, err := os.MkdirTemp("", "smtpkit-postfix-xforward-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	host, port, _ := net.SplitHostPort(s.MX)
	c := xfwdConfig{Addr: freeAddrOn(t, xfwdListenIP), ListenIP: xfwdListenIP, Bind: xfwdBindIP, NextHop: host, NextPort: port,
		Conf: filepath.Join(dir, "conf"), Queue: filepath.Join(dir, "queue"), Data: filepath.Join(dir, "data")}
	renderPostfixDir(t, "postfix_xforward", c.Conf, c.Queue, c.Data, c)
	runPostfix(t, postfix, c.Conf, c.Addr)

	const marker = "xforward-through-postfix"
	mustRun(t, nil, swaks, swaksFrom(xfwdClientIP, "--server", c.Addr, "--to", user, "--from", "a@b.example",
		"--helo", "orig-client.b.example", "--header", "Subject: "+marker, "--timeout", "20")...)
	msg := waitMessageWith(t, s, user, marker)
	rcvd := firstReceived(msg)
	want := "Received: from orig-client.b.example ("
	if !strings.HasPrefix(rcvd, want) || !strings.Contains(rcvd, "["+xfwdClientIP+"])") ||
		!strings.Contains(rcvd, "(forwarded by front.proxy.example (["+xfwdBindIP+"]))") {
		t.Errorf("smtpkit's Received field does not record the original client %s behind %s: %q", xfwdClientIP, xfwdBindIP, rcvd)
	}
	waitUntil(t, pollTimeout, "the accepted line with orig_client", func() bool {
		return regexp.MustCompile(`msg="message accepted".*remote=` + regexp.QuoteMeta(xfwdBindIP) + `:\d+.* orig_client=` +
			regexp.QuoteMeta(xfwdClientIP) + `.* orig_helo=orig-client\.b\.example orig_ident=\w+ orig_source=REMOTE`).MatchString(s.Logs())
	})
}
