package client

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/sasl"
	"smtpkit/internal/smtp"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func TestParseExtensions(t *testing.T) {
	tests := []struct {
		lines []string
		want  map[string]string
	}{
		{[]string{"mx hello"}, map[string]string{}},
		{[]string{"mx", "pipelining", "SIZE 1000", "AUTH PLAIN  LOGIN", " 8BITMIME ", ""},
			map[string]string{"PIPELINING": "", "SIZE": "1000", "AUTH": "PLAIN  LOGIN", "8BITMIME": ""}},
	}
	for _, tt := range tests {
		if got := parseExtensions(tt.lines); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseExtensions(%q) = %v, want %v", tt.lines, got, tt.want)
		}
	}
}

func TestFormatPath(t *testing.T) {
	tests := []struct {
		in     string
		sender bool
		want   string
		ok     bool
	}{
		{"", true, "<>", true},
		{"", false, "", false},
		{"postmaster", false, "<postmaster>", true},
		{"postmaster", true, "", false},
		{"a@example.org", false, "<a@example.org>", true},
		{`"a b"@example.org`, false, `<"a b"@example.org>`, true},
		{"a@example.org>\r\nRCPT TO:<x@y", false, "", false},
		{"<a@example.org>", false, "", false},
	}
	for _, tt := range tests {
		got, err := formatPath(tt.in, tt.sender)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("formatPath(%q, %v) = %q, %v", tt.in, tt.sender, got, err)
		}
	}
}

func TestHelloFallback(t *testing.T) {
	f := startFake(t, []step{
		{send: greeting},
		{recv: []string{"EHLO client.test"}, send: "502 5.5.1 what?\r\n"},
		{recv: []string{"HELO client.test"}, send: "250 mx.test\r\n"},
		quitStep(),
	})
	c := session(t, f, nil)
	if len(c.Extensions()) != 0 || c.EHLOReply().Code != 250 {
		t.Errorf("extensions %v reply %v", c.Extensions(), c.EHLOReply())
	}
	if err := c.StartTLS(&tls.Config{}); !errors.Is(err, ErrNoStartTLS) {
		t.Errorf("StartTLS after HELO: %v", err)
	}
	finish(t, f, c)
}

func TestHelloTemporaryNoFallback(t *testing.T) {
	f := startFake(t, []step{
		{send: greeting},
		{recv: []string{"EHLO client.test"}, send: "421 4.3.2 shutting down\r\n"},
	})
	c, err := Dial(context.Background(), f.addr(), testOpts(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello(); code(err) != 421 {
		t.Fatalf("Hello: %v", err)
	}
	c.Close()
	if err := f.wait(); err != nil {
		t.Error(err)
	}
}

func TestGreetingRefused(t *testing.T) {
	f := startFake(t, []step{
		{send: "554 5.3.2 no service\r\n"},
		quitStep(),
	})
	_, err := Dial(context.Background(), f.addr(), testOpts(nil))
	var se *smtp.Error
	if !errors.As(err, &se) || se.Reply.Code != 554 || !se.Permanent() {
		t.Fatalf("Dial: %v", err)
	}
	if err := f.wait(); err != nil {
		t.Error(err)
	}
}

func TestStartTLSThenEHLOAgain(t *testing.T) {
	f := startFake(t, []step{
		{send: greeting},
		ehloStep("STARTTLS", "PIPELINING"),
		{recv: []string{"STARTTLS"}, send: "220 2.0.0 go\r\n", tls: true},
		ehloStep("PIPELINING", "AUTH PLAIN"),
		quitStep(),
	})
	c := session(t, f, nil)
	if _, ok := c.TLSState(); ok {
		t.Fatal("TLS before STARTTLS")
	}
	if err := c.StartTLS(&tls.Config{ServerName: "mx.test", RootCAs: pool(f.cert)}); err != nil {
		t.Fatal(err)
	}
	st, ok := c.TLSState()
	if !ok || !st.HandshakeComplete {
		t.Fatal("no TLS state")
	}
	if _, ok := c.Ext("STARTTLS"); ok {
		t.Error("extensions from before TLS survived")
	}
	if v, ok := c.Ext("auth"); !ok || v != "PLAIN" {
		t.Errorf("AUTH after TLS: %q %v", v, ok)
	}
	if err := c.StartTLS(&tls.Config{}); !errors.Is(err, ErrTLSActive) {
		t.Errorf("second StartTLS: %v", err)
	}
	finish(t, f, c)
}

func TestStartTLSFailures(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		f := startFake(t, []step{
			{send: greeting}, ehloStep("STARTTLS"),
			{recv: []string{"STARTTLS"}, send: "454 4.7.0 TLS not available\r\n"},
			{recv: []string{"NOOP"}, send: "250 ok\r\n"},
			quitStep(),
		})
		c := session(t, f, nil)
		var te *TLSError
		if err := c.StartTLS(&tls.Config{}); !errors.As(err, &te) || !te.Refused || te.Reply.Code != 454 {
			t.Fatalf("StartTLS: %v", err)
		}
		if err := c.Noop(); err != nil { // still usable in plaintext
			t.Fatal(err)
		}
		finish(t, f, c)
	})
	t.Run("injection after 220", func(t *testing.T) {
		f := startFake(t, []step{
			{send: greeting}, ehloStep("STARTTLS"),
			{recv: []string{"STARTTLS"}, send: "220 go\r\n250-injected\r\n250 AUTH PLAIN\r\n"},
		})
		c := session(t, f, nil)
		var te *TLSError
		if err := c.StartTLS(&tls.Config{InsecureSkipVerify: true}); !errors.As(err, &te) || te.Refused {
			t.Fatalf("StartTLS: %v", err)
		}
		if err := c.Noop(); err == nil {
			t.Error("connection still usable after an injection")
		}
		f.wait()
	})
}

func TestStartTLSCertificateRejected(t *testing.T) {
	f := startFake(t, []step{
		{send: greeting}, ehloStep("STARTTLS"),
		{recv: []string{"STARTTLS"}, send: "220 go\r\n", tls: true},
	})
	c := session(t, f, nil)
	// Verify against the system roots: the self-signed certificate fails.
	err := c.StartTLS(&tls.Config{ServerName: "mx.test", RootCAs: pool(selfSigned(t, "other.test"))})
	var te *TLSError
	if !errors.As(err, &te) || te.Refused || !te.Certificate() {
		t.Fatalf("StartTLS: %v", err)
	}
	if _, ok := c.TLSState(); ok {
		t.Error("TLS reported active")
	}
	f.wait() // the server's handshake fails too
}

func TestAuth(t *testing.T) {
	tests := []struct {
		name  string
		mech  sasl.Client
		steps []step
	}{
		{"PLAIN", sasl.NewPlainClient("", "user", "secret"), []step{
			{recv: []string{"AUTH PLAIN AHVzZXIAc2VjcmV0"}, send: "235 2.7.0 ok\r\n"},
		}},
		{"LOGIN", sasl.NewLoginClient("user", "secret"), []step{
			{recv: []string{"AUTH LOGIN"}, send: "334 VXNlcm5hbWU6\r\n"},
			{recv: []string{"dXNlcg=="}, send: "334 UGFzc3dvcmQ6\r\n"},
			{recv: []string{"c2VjcmV0"}, send: "235 2.7.0 ok\r\n"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps := append([]step{{send: greeting}, ehloStep("AUTH PLAIN LOGIN")}, tt.steps...)
			f := startFake(t, append(steps, quitStep()))
			var tr strings.Builder
			opts := testOpts(&tr)
			opts.AllowPlaintextAuth = true
			c, err := Dial(context.Background(), f.addr(), opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Hello(); err != nil {
				t.Fatal(err)
			}
			if err := c.Auth(tt.mech); err != nil {
				t.Fatal(err)
			}
			finish(t, f, c)
			if strings.Contains(tr.String(), "C: AUTH") || strings.Contains(tr.String(), "c2VjcmV0") ||
				!strings.Contains(tr.String(), "C: <credentials hidden>") {
				t.Errorf("transcript leaks credentials:\n%s", tr.String())
			}
		})
	}
}

func TestAuthRefusals(t *testing.T) {
	f := startFake(t, []step{
		{send: greeting}, ehloStep("AUTH LOGIN"),
		quitStep(),
	})
	c := session(t, f, nil)
	if err := c.Auth(sasl.NewPlainClient("", "u", "p")); !errors.Is(err, ErrPlaintextAuth) {
		t.Errorf("plaintext: %v", err)
	}
	c.opts.AllowPlaintextAuth = true
	if err := c.Auth(sasl.NewPlainClient("", "u", "p")); !errors.Is(err, ErrNoAuth) {
		t.Errorf("mechanism not offered: %v", err)
	}
	finish(t, f, c)
}

func TestAuthBadCredentials(t *testing.T) {
	f := startFake(t, []step{
		{send: greeting}, ehloStep("AUTH PLAIN"),
		{recv: []string{"AUTH PLAIN AHUAcA=="}, send: "535 5.7.8 bad credentials\r\n"},
		quitStep(),
	})
	c := session(t, f, nil)
	c.opts.AllowPlaintextAuth = true
	var se *smtp.Error
	if err := c.Auth(sasl.NewPlainClient("", "u", "p")); !errors.As(err, &se) || se.Reply.Code != 535 || !se.Permanent() {
		t.Errorf("Auth: %v", err)
	}
	finish(t, f, c)
}

// TestGoldenTranscript runs a full conversation and compares the transcript
// with testdata/session.golden (go test -update rewrites it).
func TestGoldenTranscript(t *testing.T) {
	f := startFake(t, []step{
		{send: "220-mx.test ESMTP\r\n220 second line\r\n"},
		ehloStep("STARTTLS", "PIPELINING", "SIZE 100000"),
		{recv: []string{"STARTTLS"}, send: "220 2.0.0 ready\r\n", tls: true},
		ehloStep("PIPELINING", "SIZE 100000", "AUTH PLAIN"),
		{recv: []string{"AUTH PLAIN AHVzZXIAc2VjcmV0"}, send: "235 2.7.0 ok\r\n"},
		{recv: []string{"MAIL FROM:<a@example.org> SIZE=19", "RCPT TO:<b@example.net>", "DATA"},
			send: "250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n"},
		{data: true, send: "250 2.0.0 queued\r\n"},
		{recv: []string{"HELP"}, send: "214-2.0.0 see\r\n214 2.0.0 RFC 5321\r\n"},
		quitStep(),
	})
	var tr strings.Builder
	c, err := Dial(context.Background(), f.addr(), testOpts(&tr))
	if err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		c.Hello,
		func() error { return c.StartTLS(&tls.Config{ServerName: "mx.test", RootCAs: pool(f.cert)}) },
		func() error { return c.Auth(sasl.NewPlainClient("", "user", "secret")) },
		func() error {
			res, err := c.Send(context.Background(), Envelope{From: "a@example.org", To: []string{"b@example.net"}, Size: 19},
				strings.NewReader("Subject: hi\r\n\r\nyo\r\n"))
			if err == nil {
				err = res.Data
			}
			return err
		},
		func() error { _, err := c.Cmd("HELP"); return err },
		c.Quit,
	}
	for i, s := range steps {
		if err := s(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if err := f.wait(); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "session.golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		os.WriteFile(golden, []byte(tr.String()), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if tr.String() != string(want) {
		t.Errorf("transcript:\n%s\nwant:\n%s", tr.String(), want)
	}
}

func TestCmdRejectsLineBreaks(t *testing.T) {
	f := startFake(t, []step{{send: greeting}, ehloStep(), quitStep()})
	c := session(t, f, nil)
	if _, err := c.Cmd("NOOP\r\nRSET"); err == nil {
		t.Error("CRLF accepted")
	}
	finish(t, f, c)
}

func TestSendContextCancel(t *testing.T) {
	// The server takes MAIL and then never answers; cancelling the context
	// must end Send at once, long before the 5s step timeout.
	f := startFake(t, []step{
		{send: greeting}, ehloStep(),
		{recv: []string{"MAIL FROM:<a@example.org>"}, send: ""},
		{recv: []string{"never"}},
	})
	c := session(t, f, nil)
	ctx, cancel := context.WithCancel(context.Background())
	<-f.ready // greeting
	<-f.ready // EHLO
	go func() {
		<-f.ready // MAIL arrived
		cancel()
	}()
	start := time.Now()
	_, err := c.Send(ctx, Envelope{From: "a@example.org", To: []string{"b@example.net"}}, strings.NewReader("x"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Send: %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("Send took %v", d)
	}
	if err := c.Noop(); err == nil {
		t.Error("connection usable after a cancelled transaction")
	}
	c.Close()
}

func TestStepTimeout(t *testing.T) {
	f := startFake(t, []step{
		{send: greeting}, ehloStep(),
		{recv: []string{"NOOP"}, send: ""},
		{recv: []string{"never"}},
	})
	opts := testOpts(nil)
	opts.Timeouts.Command = 100 * time.Millisecond
	c, err := Dial(context.Background(), f.addr(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello(); err != nil {
		t.Fatal(err)
	}
	var ne net.Error
	if err := c.Noop(); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Noop: %v", err)
	}
}

func TestBodyReadErrorClosesWithoutDot(t *testing.T) {
	f := startFake(t, []step{
		{send: greeting}, ehloStep(),
		{recv: []string{"MAIL FROM:<a@example.org>"}, send: "250 ok\r\n"},
		{recv: []string{"RCPT TO:<b@example.net>"}, send: "250 ok\r\n"},
		{recv: []string{"DATA"}, send: "354 go\r\n"},
		{data: true, send: "250 must not happen\r\n"},
	})
	c := session(t, f, nil)
	boom := errors.New("disk on fire")
	_, err := c.Send(context.Background(), Envelope{From: "a@example.org", To: []string{"b@example.net"}},
		&failReader{data: "partial\r\n", err: boom})
	if !errors.Is(err, boom) {
		t.Fatalf("Send: %v", err)
	}
	if err := f.wait(); err == nil || !strings.Contains(err.Error(), "data") {
		t.Errorf("server saw a complete message: %v", err)
	}
}

type failReader struct {
	data string
	err  error
}

func (r *failReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestDialTLSImplicit(t *testing.T) {
	cert := selfSigned(t, "mx.test")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan string, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			done <- err.Error()
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		nc.Write([]byte(greeting))
		buf := make([]byte, 64)
		n, _ := nc.Read(buf)
		nc.Write([]byte("221 bye\r\n"))
		done <- string(buf[:n])
	}()
	c, err := DialTLS(context.Background(), ln.Addr().String(),
		&tls.Config{ServerName: "mx.test", RootCAs: pool(cert)}, testOpts(nil))
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := c.TLSState(); !ok || !st.HandshakeComplete || c.Greeting().Code != 220 {
		t.Fatalf("TLS %v greeting %v", ok, c.Greeting())
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	if got := <-done; got != "QUIT\r\n" {
		t.Errorf("server got %q", got)
	}

	// The same server with verification against other roots: a certificate error.
	go func() {
		if nc, err := ln.Accept(); err == nil {
			nc.(*tls.Conn).Handshake()
			nc.Close()
		}
	}()
	_, err = DialTLS(context.Background(), ln.Addr().String(),
		&tls.Config{ServerName: "mx.test", RootCAs: pool(selfSigned(t, "mx.test"))}, testOpts(nil))
	var te *TLSError
	if !errors.As(err, &te) || !te.Certificate() {
		t.Fatalf("DialTLS with an untrusted certificate: %v", err)
	}
}
