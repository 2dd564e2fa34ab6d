package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/sasl"
	"smtpkit/internal/smtp"
)

// Interop tests against real, independent SMTP servers over loopback:
// Python's aiosmtpd and Postfix's smtp-sink.

// needTool skips when a peer is missing, except in CI, where every peer
// must be installed (scripts/install-test-deps.sh).
func needTool(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("peer missing in CI: %s", why)
	}
	t.Skipf("peer missing: %s", why)
}

const python = "/usr/bin/python3"

// peerMsg is what testdata/aiosmtpd_peer.py prints for each message.
type peerMsg struct {
	From    string   `json:"from"`
	Rcpt    []string `json:"rcpt"`
	Options []string `json:"options"`
	TLS     bool     `json:"tls"`
	Data    string   `json:"data"`
}

// startAiosmtpd runs the aiosmtpd peer and returns its address, the
// certificate it presents (for mx.test) and its received messages.
func startAiosmtpd(t *testing.T) (string, tls.Certificate, <-chan peerMsg) {
	t.Helper()
	return startAiosmtpdOn(t, "127.0.0.1")
}

// startAiosmtpdOn is startAiosmtpd listening on host, with the peer's
// extra options (testdata/aiosmtpd_peer.py), such as --requiretls.
func startAiosmtpdOn(t *testing.T, host string, opts ...string) (string, tls.Certificate, <-chan peerMsg) {
	t.Helper()
	if err := exec.Command(python, "-c", "import aiosmtpd").Run(); err != nil {
		needTool(t, "python3-aiosmtpd: "+err.Error())
	}
	cert := selfSigned(t, "mx.test")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)

	args := append([]string{filepath.Join("testdata", "aiosmtpd_peer.py"), certFile, keyFile, host}, opts...)
	cmd := exec.Command(python, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	port := make(chan string, 1)
	msgs := make(chan peerMsg, 8)
	go func() {
		defer close(port)
		for sc.Scan() {
			line := sc.Text()
			if p, ok := strings.CutPrefix(line, "READY "); ok {
				port <- p
				continue
			}
			var m peerMsg
			if json.Unmarshal([]byte(line), &m) == nil {
				msgs <- m
			}
		}
	}()
	select {
	case p, ok := <-port:
		if !ok {
			t.Fatalf("aiosmtpd peer exited: %s", stderr.String())
		}
		return net.JoinHostPort(host, p), cert, msgs
	case <-time.After(20 * time.Second):
		t.Fatalf("aiosmtpd peer not ready: %s", stderr.String())
	}
	panic("unreachable")
}

func TestAiosmtpdStartTLSAuthSend(t *testing.T) {
	addr, cert, msgs := startAiosmtpd(t)
	var tr strings.Builder
	c, err := Dial(context.Background(), addr, testOpts(&tr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello(); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", "user", "secret")); !errors.Is(err, ErrPlaintextAuth) {
		t.Fatalf("AUTH before TLS: %v", err)
	}
	if err := c.StartTLS(&tls.Config{ServerName: "mx.test", RootCAs: pool(cert)}); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewLoginClient("user", "wrong")); code(err) != 535 {
		t.Fatalf("AUTH LOGIN with a wrong password: %v\n%s", err, tr.String())
	}
	if err := c.Auth(sasl.NewPlainClient("", "user", "secret")); err != nil {
		t.Fatalf("AUTH PLAIN: %v", err)
	}
	body := "Subject: interop\r\n\r\n.leading dot\nbare LF line\r\n..two dots\r\n"
	res, err := c.Send(context.Background(), Envelope{From: "a@example.org",
		To: []string{"b@example.net", "jürgen@example.net"}, Size: int64(len(body))}, strings.NewReader(body))
	if err != nil || res.Data != nil || res.Rcpt[0] != nil || res.Rcpt[1] != nil {
		t.Fatalf("Send: %v %+v\n%s", err, res, tr.String())
	}
	m := <-msgs
	want := "Subject: interop\r\n\r\n.leading dot\r\nbare LF line\r\n..two dots\r\n"
	if m.From != "a@example.org" || len(m.Rcpt) != 2 || m.Rcpt[1] != "jürgen@example.net" || !m.TLS || m.Data != want {
		t.Errorf("received %+v", m)
	}
	if !strings.Contains(strings.Join(m.Options, " "), "SMTPUTF8") {
		t.Errorf("options %v", m.Options)
	}
	if err := c.Quit(); err != nil {
		t.Error(err)
	}
	if strings.Contains(tr.String(), "c2VjcmV0") || strings.Contains(tr.String(), "d3Jvbmc") {
		t.Errorf("transcript shows credentials:\n%s", tr.String())
	}
}

// startSink runs Postfix's smtp-sink on a free loopback port with args.
func startSink(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("smtp-sink")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/smtp-sink"); err != nil {
			needTool(t, "postfix smtp-sink")
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody") // smtp-sink refuses to run as root
	}
	cmd := exec.Command(bin, append(args, addr, "10")...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Readiness: poll until it accepts, bounded (it binds within
	// milliseconds; the bound only stops a broken run from hanging).
	deadline := time.Now().Add(10 * time.Second)
	for {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			nc.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("smtp-sink not listening on %s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func sinkSend(t *testing.T, addr string, to ...string) (*Conn, Result, error) {
	t.Helper()
	c, err := Dial(context.Background(), addr, testOpts(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello(); err != nil {
		t.Fatal(err)
	}
	res, err := c.Send(context.Background(), Envelope{From: "a@example.org", To: to, Size: 9},
		strings.NewReader("x\r\n.y\r\n"))
	return c, res, err
}

func TestSmtpSinkPipelined(t *testing.T) {
	addr := startSink(t)
	c, res, err := sinkSend(t, addr, "b@example.net", "c@example.net")
	if _, ok := c.Ext("PIPELINING"); !ok {
		t.Error("smtp-sink did not offer PIPELINING")
	}
	if err != nil || res.Data != nil || res.Reply.Code != 250 {
		t.Fatalf("Send: %v %+v", err, res)
	}
	// The connection carries a second transaction.
	if _, err := c.Send(context.Background(), Envelope{From: "", To: []string{"d@example.net"}}, strings.NewReader("z\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Error(err)
	}
}

func TestSmtpSinkRcpt4xx(t *testing.T) {
	addr := startSink(t, "-r", "RCPT")
	c, res, err := sinkSend(t, addr, "b@example.net", "c@example.net")
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range res.Rcpt {
		var se *smtp.Error
		if !errors.As(e, &se) || !se.Temporary() || se.Reply.Code/100 != 4 {
			t.Errorf("rcpt %d: %v", i, e)
		}
	}
	if !errors.Is(res.Data, ErrNoRecipients) {
		t.Errorf("Data: %v", res.Data)
	}
	if err := c.Noop(); err != nil { // RSET left it usable
		t.Error(err)
	}
}

func TestSmtpSinkData5xx(t *testing.T) {
	addr := startSink(t, "-f", "DATA")
	_, res, err := sinkSend(t, addr, "b@example.net")
	if err != nil {
		t.Fatal(err)
	}
	var se *smtp.Error
	if res.Rcpt[0] != nil || !errors.As(res.Data, &se) || !se.Permanent() || res.Reply.Code/100 != 5 {
		t.Errorf("Rcpt %v Data %v Reply %v", res.Rcpt, res.Data, res.Reply)
	}
}
