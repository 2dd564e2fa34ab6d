package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"smtpkit/internal/server"
	"smtpkit/internal/smtp"
	"smtpkit/internal/testcert"
)

// TestSendRequireTLS: a REQUIRETLS message (RFC 8689 §2) goes out with the
// MAIL parameter only inside TLS and only to a server whose EHLO there
// offers REQUIRETLS; otherwise Send refuses it before MAIL (550 5.7.10
// without TLS, 550 5.7.30 without the extension, RFC 8689 §4.2.1) and ends
// the session with QUIT.
func TestSendRequireTLS(t *testing.T) {
	env := Envelope{From: "a@example.org", To: []string{"b@example.net"}, RequireTLS: true}
	startTLS := []step{
		{send: greeting}, ehloStep("STARTTLS"),
		{recv: []string{"STARTTLS"}, send: "220 2.0.0 go\r\n", tls: true},
	}
	tests := []struct {
		name     string
		tls      bool
		steps    []step
		env      Envelope
		wantEnh  smtp.Enhanced // "" = sent
		wantMAIL string
	}{
		{name: "plaintext, even when the server claims REQUIRETLS", env: env,
			steps:   []step{{send: greeting}, ehloStep("REQUIRETLS", "STARTTLS"), quitStep()},
			wantEnh: smtp.EnhEncryptNeeded},
		{name: "TLS without the extension", tls: true, env: env,
			steps:   append(slices.Clone(startTLS), ehloStep("PIPELINING"), quitStep()),
			wantEnh: smtp.EnhRequireTLS},
		{name: "TLS and REQUIRETLS", tls: true, env: env,
			steps: append(slices.Clone(startTLS), ehloStep("REQUIRETLS", "SIZE 1000"),
				step{recv: []string{"MAIL FROM:<a@example.org> SIZE=3 REQUIRETLS"}, send: "250 2.1.0 ok\r\n"},
				step{recv: []string{"RCPT TO:<b@example.net>"}, send: "250 2.1.5 ok\r\n"},
				step{recv: []string{"DATA"}, send: "354 go\r\n"},
				step{data: true, send: "250 2.0.0 queued\r\n"}, quitStep())},
		{name: "no REQUIRETLS asked: the parameter is not sent", tls: true,
			env: Envelope{From: "a@example.org", To: []string{"b@example.net"}},
			steps: append(slices.Clone(startTLS), ehloStep("REQUIRETLS"),
				step{recv: []string{"MAIL FROM:<a@example.org>"}, send: "250 2.1.0 ok\r\n"},
				step{recv: []string{"RCPT TO:<b@example.net>"}, send: "250 2.1.5 ok\r\n"},
				step{recv: []string{"DATA"}, send: "354 go\r\n"},
				step{data: true, send: "250 2.0.0 queued\r\n"}, quitStep())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFake(t, tt.steps)
			c := session(t, f, nil)
			if tt.tls {
				if err := c.StartTLS(&tls.Config{ServerName: "mx.test", RootCAs: pool(f.cert)}); err != nil {
					t.Fatal(err)
				}
			}
			env := tt.env
			if env.RequireTLS {
				env.Size = 3
			}
			res, err := c.Send(context.Background(), env, strings.NewReader("x\r\n"))
			if tt.wantEnh == "" {
				if err != nil || res.Data != nil {
					t.Fatalf("Send: %v, %v", err, res.Data)
				}
				finish(t, f, c)
				return
			}
			var se *smtp.Error
			if !errors.Is(err, ErrNoRequireTLS) || !errors.Is(err, ErrRefused) || !errors.As(err, &se) ||
				se.Reply.Code != smtp.CodeMailboxUnavail || se.Reply.Enhanced != tt.wantEnh {
				t.Fatalf("err = %v, want 550 %s wrapping ErrNoRequireTLS", err, tt.wantEnh)
			}
			if err := f.wait(); err != nil { // the script ends with QUIT: no MAIL was sent
				t.Fatalf("server: %v", err)
			}
		})
	}
}

// recordingBackend is a server.Backend that keeps every envelope.
type recordingBackend struct {
	server.Discard
	mu   sync.Mutex
	envs []server.Envelope
}

func (b *recordingBackend) Begin(ctx context.Context, env *server.Envelope) (server.MessageWriter, error) {
	b.mu.Lock()
	b.envs = append(b.envs, *env)
	b.mu.Unlock()
	return b.Discard.Begin(ctx, env)
}

func (b *recordingBackend) envelopes() []server.Envelope {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.envs)
}

// TestRequireTLSOurServer sends to smtpkit's own server: REQUIRETLS only
// after STARTTLS, and the server sees the tag on exactly that message.
func TestRequireTLSOurServer(t *testing.T) {
	cert := testcert.New(t, "mx.test")
	b := &recordingBackend{}
	srv := server.New(server.Options{
		Hostname: "mx.test", PostmasterDomain: "example.net", Backend: b,
		Listeners: []server.Listener{{Address: "127.13.4.20:0", Role: server.RoleMX, TLS: server.TLSOpportunistic,
			TLSConfig: testcert.ServerConfig(cert)}},
		Logger: slog.New(slog.DiscardHandler),
	})
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
	addr := srv.Addrs()[0].String()

	var tr strings.Builder
	c, err := Dial(context.Background(), addr, testOpts(&tr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello(); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Ext("REQUIRETLS"); ok {
		t.Error("our server offers REQUIRETLS before STARTTLS")
	}
	// Before TLS the client refuses by itself; our server would refuse
	// it too (530 5.7.10, internal/server).
	env := Envelope{From: "a@example.org", To: []string{"postmaster@example.net"}, RequireTLS: true}
	if _, err := c.Send(context.Background(), env, strings.NewReader("x\r\n")); !errors.Is(err, ErrNoRequireTLS) {
		t.Fatalf("REQUIRETLS before STARTTLS: %v", err)
	}
	c.Close()

	c, err = Dial(context.Background(), addr, testOpts(&tr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello(); err != nil {
		t.Fatal(err)
	}
	if err := c.StartTLS(&tls.Config{ServerName: "mx.test", RootCAs: pool(cert)}); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Ext("REQUIRETLS"); !ok {
		t.Fatalf("our server does not offer REQUIRETLS inside TLS:\n%s", tr.String())
	}
	for _, rt := range []bool{true, false} {
		env.RequireTLS = rt
		res, err := c.Send(context.Background(), env, strings.NewReader("Subject: rt\r\n\r\nx\r\n"))
		if err != nil || res.Data != nil {
			t.Fatalf("RequireTLS=%v: %v, %v\n%s", rt, err, res.Data, tr.String())
		}
	}
	if err := c.Quit(); err != nil {
		t.Error(err)
	}
	if n := strings.Count(tr.String(), "> REQUIRETLS\n"); n != 1 {
		t.Errorf("%d MAIL commands with REQUIRETLS in the transcript, want 1:\n%s", n, tr.String())
	}
	envs := b.envelopes()
	if len(envs) != 2 || !envs[0].RequireTLS || envs[1].RequireTLS {
		t.Fatalf("server saw %d messages, RequireTLS %v", len(envs), tags(envs))
	}
}

func tags(envs []server.Envelope) []bool {
	var out []bool
	for _, e := range envs {
		out = append(out, e.RequireTLS)
	}
	return out
}

// TestAiosmtpdRequireTLS: against aiosmtpd, which does not implement
// REQUIRETLS, a REQUIRETLS message is refused before MAIL (5.7.30) and
// nothing arrives; against the same peer taught REQUIRETLS
// (aiosmtpd_peer.py --requiretls) the parameter goes out inside TLS and
// the message arrives with it.
func TestAiosmtpdRequireTLS(t *testing.T) {
	for _, tt := range []struct {
		name    string
		host    string
		opts    []string
		wantErr bool
	}{
		{"aiosmtpd without REQUIRETLS", "127.13.4.21", nil, true},
		{"aiosmtpd with REQUIRETLS", "127.13.4.22", []string{"--requiretls"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, cert, msgs := startAiosmtpdOn(t, tt.host, tt.opts...)
			var tr strings.Builder
			c, err := Dial(context.Background(), addr, testOpts(&tr))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Hello(); err != nil {
				t.Fatal(err)
			}
			if _, ok := c.Ext("REQUIRETLS"); ok {
				t.Errorf("REQUIRETLS offered before STARTTLS:\n%s", tr.String())
			}
			if err := c.StartTLS(&tls.Config{ServerName: "mx.test", RootCAs: pool(cert)}); err != nil {
				t.Fatal(err)
			}
			body := "Subject: requiretls\r\n\r\nsecret\r\n"
			env := Envelope{From: "a@example.org", To: []string{"b@example.net"}, RequireTLS: true, Size: int64(len(body))}
			res, err := c.Send(context.Background(), env, strings.NewReader(body))
			if tt.wantErr {
				var se *smtp.Error
				if !errors.Is(err, ErrNoRequireTLS) || !errors.As(err, &se) || se.Reply.Enhanced != smtp.EnhRequireTLS {
					t.Fatalf("Send: %v, want 5.7.30 ErrNoRequireTLS", err)
				}
				if strings.Contains(tr.String(), "MAIL FROM") {
					t.Errorf("MAIL was sent:\n%s", tr.String())
				}
				select {
				case m := <-msgs:
					t.Fatalf("the peer received a message: %+v", m)
				default:
				}
				return
			}
			if err != nil || res.Data != nil {
				t.Fatalf("Send: %v, %v\n%s", err, res.Data, tr.String())
			}
			select {
			case m := <-msgs:
				if !m.TLS || !slices.Contains(m.Options, "REQUIRETLS") || !bytes.Contains([]byte(m.Data), []byte("secret")) {
					t.Errorf("received %+v", m)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("nothing received\n%s", tr.String())
			}
			c.Quit()
		})
	}
}
