package probe

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/big"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/testcert"
)

// fakeCertName is the name the fake server's certificate is valid for.
const fakeCertName = "mx.probe.test"

// Fixed certificate dates and probe clock, so that golden output does not
// change with the day the tests run.
var (
	certNotBefore = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	certNotAfter  = time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC)
	probeNow      = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

// fakeServer is a small SMTP server on loopback that answers the probe's
// commands from its fields; it serves connections until the test ends.
type fakeServer struct {
	Greeting string   // raw reply, "\r\n"-terminated; "" means never greet
	EHLO     []string // extension lines before TLS
	EHLOTLS  []string // extension lines after TLS
	StartTLS string   // raw reply to STARTTLS; "" means 502
	// HangUpAfterStartTLS closes the connection after the 220 to
	// STARTTLS instead of handshaking.
	HangUpAfterStartTLS bool
	Implicit            bool   // TLS from the first byte
	MaxVersion          uint16 // 0: crypto/tls default
	CipherSuites        []uint16
	// Without SNI in the ClientHello: RefuseNoSNI fails the handshake,
	// NoSNICert (when set) is presented instead of the certificate.
	RefuseNoSNI bool
	NoSNICert   *tls.Certificate
	// Addr is where to listen; "" is 127.0.0.1:0.
	Addr string
	// GreetingDelay is how long the server waits before its greeting (a
	// slow greeter; the server's behaviour, not the test's wait).
	GreetingDelay time.Duration

	cert tls.Certificate
	ln   net.Listener
}

// start listens on a free loopback port and returns the port.
func (f *fakeServer) start(t *testing.T, cert tls.Certificate) int {
	t.Helper()
	f.cert = cert
	addr := f.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	f.ln = ln
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(nc)
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func (f *fakeServer) tlsConfig() *tls.Config {
	cfg := &tls.Config{MaxVersion: f.MaxVersion, CipherSuites: f.CipherSuites}
	cfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		switch {
		case hello.ServerName != "":
		case f.RefuseNoSNI:
			return nil, errors.New("fake: no SNI, no certificate")
		case f.NoSNICert != nil:
			return f.NoSNICert, nil
		}
		return &f.cert, nil
	}
	if f.MaxVersion != 0 && f.MaxVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS10
	}
	return cfg
}

func (f *fakeServer) serve(nc net.Conn) {
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if f.Implicit {
		nc = tls.Server(nc, f.tlsConfig())
	}
	r := bufio.NewReader(nc)
	if f.Greeting == "" {
		r.ReadString('\n') // wait for the client to give up
		return
	}
	if f.GreetingDelay > 0 {
		time.Sleep(f.GreetingDelay)
	}
	nc.Write([]byte(f.Greeting))
	exts, tlsOn := f.EHLO, f.Implicit
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			nc.Write([]byte(ehloReply(exts)))
		case "STARTTLS":
			if f.StartTLS == "" || tlsOn {
				nc.Write([]byte("502 5.5.1 no\r\n"))
				continue
			}
			nc.Write([]byte(f.StartTLS))
			if !strings.HasPrefix(f.StartTLS, "220") {
				continue
			}
			if f.HangUpAfterStartTLS {
				return
			}
			tc := tls.Server(nc, f.tlsConfig())
			if tc.Handshake() != nil {
				return
			}
			nc, r, exts, tlsOn = tc, bufio.NewReader(tc), f.EHLOTLS, true
		case "QUIT":
			nc.Write([]byte("221 2.0.0 bye\r\n"))
			return
		default:
			nc.Write([]byte("502 5.5.2 unknown command\r\n"))
		}
	}
}

func ehloReply(exts []string) string {
	lines := append([]string{"fake.probe.test hello"}, exts...)
	var b strings.Builder
	for i, l := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		b.WriteString("250" + sep + l + "\r\n")
	}
	return b.String()
}

// fakeCert makes a deterministic-looking certificate for fakeCertName and
// 127.0.0.1 (only the key, and so the fingerprint, changes between runs).
func fakeCert(t *testing.T) tls.Certificate {
	t.Helper()
	return testcert.NewWith(t, func(c *x509.Certificate) {
		c.SerialNumber = big.NewInt(0x5eed)
		c.Subject.Organization = []string{"smtpkit probe test"}
		c.NotBefore, c.NotAfter = certNotBefore, certNotAfter
	}, fakeCertName, "127.0.0.1")
}

// closedPort returns a loopback port with nothing listening (it was free
// a moment ago).
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// testOptions: a short timeout, a fixed clock and the transcript kept.
func testOptions() Options {
	return Options{Timeout: 5 * time.Second, EHLOName: "probe.test", Now: func() time.Time { return probeNow }, Transcript: true}
}

// Typical fake servers.
func starttlsServer() *fakeServer {
	return &fakeServer{
		Greeting: "220 fake.probe.test ESMTP ready\r\n",
		EHLO:     []string{"PIPELINING", "SIZE 1048576", "STARTTLS", "AUTH PLAIN LOGIN"},
		EHLOTLS:  []string{"PIPELINING", "SIZE 1048576", "AUTH PLAIN LOGIN SCRAM-SHA-256"},
		StartTLS: "220 2.0.0 ready to start TLS\r\n",
	}
}

func portString(p int) string { return strconv.Itoa(p) }
