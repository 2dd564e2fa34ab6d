package interop

import (
	"bytes"
	"crypto/tls"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/testcert"
)

// legacyCiphers lets OpenSSL 3 speak TLS 1.1 at all (its default security
// level refuses it), so that a failure is the server's refusal.
const legacyCiphers = "DEFAULT:@SECLEVEL=0"

// sClientArgs are the arguments of an s_client STARTTLS session that
// verifies the server's self-signed certificate and its name.
func sClientArgs(s *Server, addr string) []string {
	return []string{"s_client", "-starttls", "smtp", "-connect", addr,
		"-servername", testHostname, "-CAfile", s.CertPath,
		"-verify_return_error", "-verify_hostname", testHostname}
}

func TestOpenSSL(t *testing.T) {
	openssl := Need(t, "openssl")
	s := StartServer(t, ServerOptions{})
	s.AddUser(t, "user@test.example", "correct horse battery staple")

	t.Run("STARTTLS delivery", func(t *testing.T) {
		msg := testMessage("openssl")
		// s_client sends stdin as typed: -crlf turns LF into CRLF, and
		// the body must be dot-stuffed by hand.
		body := bytes.ReplaceAll(dotStuff(msg), []byte("\r\n"), []byte("\n"))
		var in bytes.Buffer
		in.WriteString("EHLO client.b.example\nMAIL FROM:<ossl@b.example>\nRCPT TO:<user@test.example>\nDATA\n")
		in.Write(body)
		in.WriteString(".\nQUIT\n")
		args := append(sClientArgs(s, s.MX), "-crlf", "-brief", "-ign_eof")
		r := runPeer(t, in.Bytes(), openssl, args...)
		if r.Err != nil {
			if strings.Contains(r.Stderr, "unexpected eof while reading") {
				// RFC 8446 §6.1: each party sends close_notify before
				// closing its write side; OpenSSL 3 fails without it.
				t.Errorf("server closed the TCP connection after QUIT without a TLS close_notify")
			} else {
				t.Errorf("s_client: %v", r.Err)
			}
			t.Logf("stdout:\n%s\nstderr:\n%s", r.Stdout, r.Stderr)
		}
		if !regexp.MustCompile(`Protocol version: TLSv1\.[23]\n`).MatchString(r.Stderr) {
			t.Errorf("no TLS 1.2 or 1.3 in s_client -brief:\n%s", r.Stderr)
		}
		if !strings.Contains(r.Stderr, "Verification: OK") {
			t.Errorf("certificate not verified:\n%s", r.Stderr)
		}
		for _, want := range []string{"\n354 ", "\n221 "} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("no %q reply in the session:\n%s", strings.TrimSpace(want), r.Stdout)
			}
		}
		checkDelivered(t, s.WaitMessages(t, "user@test.example", 1)[0], msg, "ossl@b.example")
	})

	t.Run("TLS 1.1 refused", func(t *testing.T) {
		// Control: this openssl can complete a TLS 1.1 handshake, so a
		// failure against smtpkit is smtpkit's refusal.
		addr := legacyTLSServer(t)
		ctl := runPeer(t, []byte("Q\n"), openssl, "s_client", "-connect", addr,
			"-tls1_1", "-cipher", legacyCiphers, "-brief")
		if !strings.Contains(ctl.Stderr, "Protocol version: TLSv1.1") {
			t.Fatalf("control: openssl could not do TLS 1.1 with a TLS 1.1 server: %v\n%s", ctl.Err, ctl.Stderr)
		}

		args := append(sClientArgs(s, s.MX), "-tls1_1", "-cipher", legacyCiphers, "-brief")
		r := runPeer(t, []byte("QUIT\n"), openssl, args...)
		if r.Err == nil || strings.Contains(r.Stderr, "CONNECTION ESTABLISHED") {
			t.Errorf("TLS 1.1 handshake succeeded (%v):\n%s", r.Err, r.Stderr)
		}
	})
}

// legacyTLSServer listens on loopback with a TLS server that speaks only
// TLS 1.1, completes handshakes and closes; it stops with the test.
func legacyTLSServer(t *testing.T) string {
	t.Helper()
	cfg := &tls.Config{
		Certificates: []tls.Certificate{testcert.New(t, "legacy.test.example")},
		MinVersion:   tls.VersionTLS11,
		MaxVersion:   tls.VersionTLS11,
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				c.SetDeadline(time.Now().Add(ioTimeout))
				c.(*tls.Conn).Handshake()
				c.Read(make([]byte, 64)) // until the client sends or closes
			}(c)
		}
	}()
	return l.Addr().String()
}
