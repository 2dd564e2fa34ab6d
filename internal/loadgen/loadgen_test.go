package loadgen

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smtpkit/internal/testcert"

	"smtpkit/internal/tlspolicy"
)

// sink is a scripted SMTP server on loopback: it offers PIPELINING, SIZE
// and (with a certificate) STARTTLS, refuses RCPT to addresses starting with
// "nobody" (550), answers every failEvery-th message with 451, and counts
// what it saw.
type sink struct {
	ln        net.Listener
	tls       *tls.Config
	failEvery int64
	conns     atomic.Int64
	ehlos     atomic.Int64
	quits     atomic.Int64
	messages  atomic.Int64 // bodies received (accepted or not)
	accepted  atomic.Int64
	tlsDone   atomic.Int64
	wg        sync.WaitGroup
}

func newSink(t *testing.T, failEvery int64, withTLS bool) *sink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{ln: ln, failEvery: failEvery}
	if withTLS {
		s.tls = &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}
	}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			s.wg.Go(func() { s.serve(c) })
		}
	})
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *sink) addr() string { return s.ln.Addr().String() }

func (s *sink) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	say := func(lines ...string) {
		for _, l := range lines {
			w.WriteString(l + "\r\n")
		}
		// Flush only when the client has nothing more buffered: it pipelines.
		if r.Buffered() == 0 {
			w.Flush()
		}
	}
	say("220 sink.test ESMTP")
	rcpts := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimRight(line, "\r\n"))
		switch {
		case strings.HasPrefix(cmd, "EHLO"):
			s.ehlos.Add(1)
			ext := []string{"250-sink.test", "250-PIPELINING"}
			if s.tls != nil {
				ext = append(ext, "250-STARTTLS")
			}
			say(append(ext, "250 SIZE 10000000")...)
		case cmd == "STARTTLS" && s.tls != nil:
			say("220 2.0.0 go ahead")
			w.Flush()
			tc := tls.Server(c, s.tls)
			if tc.Handshake() != nil {
				return
			}
			s.tlsDone.Add(1)
			c, r, w = tc, bufio.NewReader(tc), bufio.NewWriter(tc)
		case strings.HasPrefix(cmd, "MAIL FROM:"):
			rcpts = 0
			say("250 2.1.0 ok")
		case strings.HasPrefix(cmd, "RCPT TO:<NOBODY"):
			say("550 5.1.1 no such user")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			rcpts++
			say("250 2.1.5 ok")
		case cmd == "DATA" && rcpts == 0:
			say("554 5.5.1 no valid recipients")
		case cmd == "DATA":
			say("354 go ahead")
			w.Flush()
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			n := s.messages.Add(1)
			if s.failEvery > 0 && n%s.failEvery == 0 {
				say("451 4.3.0 scripted failure")
			} else {
				s.accepted.Add(1)
				say("250 2.0.0 queued")
			}
		case cmd == "RSET" || cmd == "NOOP":
			say("250 2.0.0 ok")
		case cmd == "QUIT":
			s.quits.Add(1)
			say("221 2.0.0 bye")
			w.Flush()
			return
		default:
			say("500 5.5.2 what")
		}
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	return testcert.New(t, "sink.test")
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestRunCountsMessagesAndSessions(t *testing.T) {
	s := newSink(t, 0, false)
	var progress atomic.Int64
	rep, err := Run(ctx(t), Options{Addr: s.addr(), From: "a@x.test", To: []string{"b@y.test"},
		Concurrency: 3, Messages: 10, Size: 1024, PerConnection: 2,
		Progress: func(Progress) { progress.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent != 10 || rep.Failed != 0 || len(rep.Errors) != 0 {
		t.Fatalf("sent %d failed %d errors %v", rep.Sent, rep.Failed, rep.Errors)
	}
	// Each session carries at most two messages; a worker whose second
	// claim fails ends its session after one.
	if rep.Sessions < 5 || rep.Sessions > 8 {
		t.Errorf("sessions = %d, want 5..8", rep.Sessions)
	}
	if got := s.accepted.Load(); got != 10 {
		t.Errorf("sink accepted %d", got)
	}
	if got := s.quits.Load(); got != int64(rep.Sessions) {
		t.Errorf("sink saw %d QUITs, report has %d sessions", got, rep.Sessions)
	}
	if rep.Message.Count != 10 || rep.Session.Count != rep.Sessions || rep.Message.P50 <= 0 || rep.Message.Max < rep.Message.P99 {
		t.Errorf("latency summaries: %+v / %+v", rep.Message, rep.Session)
	}
	if rep.Size != 1024 || rep.MessagesPerSec <= 0 || progress.Load() < 1 {
		t.Errorf("size %d rate %v progress calls %d", rep.Size, rep.MessagesPerSec, progress.Load())
	}
	var out strings.Builder
	rep.WriteText(&out)
	for _, want := range []string{"10 sent, 0 failed", "message latency", "session latency", "p99"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRunErrorsByCode(t *testing.T) {
	s := newSink(t, 3, false)
	rep, err := Run(ctx(t), Options{Addr: s.addr(), From: "a@x.test", To: []string{"b@y.test"},
		Concurrency: 2, Messages: 12, Size: 300})
	if err != nil {
		t.Fatal(err)
	}
	// Every third body gets 451; the session goes on after it.
	if rep.Sent != 8 || rep.Failed != 4 || rep.Errors["451"] != 4 || len(rep.Errors) != 1 {
		t.Fatalf("sent %d failed %d errors %v", rep.Sent, rep.Failed, rep.Errors)
	}
	if !strings.Contains(rep.ErrorSamples["451"], "scripted failure") {
		t.Errorf("sample = %q", rep.ErrorSamples["451"])
	}
	if s.conns.Load() != 2 || rep.Sessions != 2 {
		t.Errorf("unlimited per connection: %d connections, %d sessions, want 2", s.conns.Load(), rep.Sessions)
	}

	rep, err = Run(ctx(t), Options{Addr: s.addr(), From: "a@x.test", To: []string{"nobody@y.test"}, Messages: 3})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent != 0 || rep.Failed != 3 || rep.Errors["550"] != 3 {
		t.Errorf("refused recipient: sent %d failed %d errors %v", rep.Sent, rep.Failed, rep.Errors)
	}
}

func TestRunStartTLSOnePerConnection(t *testing.T) {
	s := newSink(t, 0, true)
	rep, err := Run(ctx(t), Options{Addr: s.addr(), TLS: tlspolicy.ModeStartTLS,
		TLSConfig: &tls.Config{InsecureSkipVerify: true}, From: "a@x.test", To: []string{"b@y.test"},
		Concurrency: 2, Messages: 6, PerConnection: 1, Size: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent != 6 || rep.Sessions != 6 || s.tlsDone.Load() != 6 || s.conns.Load() != 6 {
		t.Errorf("sent %d sessions %d handshakes %d conns %d errors %v", rep.Sent, rep.Sessions, s.tlsDone.Load(), s.conns.Load(), rep.Errors)
	}
	// A certificate that does not verify fails every session with "tls".
	rep, err = Run(ctx(t), Options{Addr: s.addr(), TLS: tlspolicy.ModeStartTLS, TLSConfig: &tls.Config{ServerName: "sink.test"},
		From: "a@x.test", To: []string{"b@y.test"}, Messages: 2, PerConnection: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent != 0 || rep.Errors["tls"] != 2 {
		t.Errorf("unverified certificate: sent %d errors %v", rep.Sent, rep.Errors)
	}
}

func TestRunRefusedConnectionsEnd(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	rep, err := Run(ctx(t), Options{Addr: addr, To: []string{"b@y.test"}, Messages: 3, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 3 || rep.Errors["network"] != 3 || rep.Sessions != 0 {
		t.Errorf("failed %d errors %v sessions %d", rep.Failed, rep.Errors, rep.Sessions)
	}
}

func TestRunTimed(t *testing.T) {
	s := newSink(t, 0, false)
	rep, err := Run(ctx(t), Options{Addr: s.addr(), To: []string{"b@y.test"}, Duration: 200 * time.Millisecond, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent == 0 || rep.Elapsed < 200*time.Millisecond || int64(rep.Sent) != s.accepted.Load() {
		t.Errorf("timed run: sent %d in %v, sink accepted %d", rep.Sent, rep.Elapsed, s.accepted.Load())
	}
}

func TestRunOptions(t *testing.T) {
	for _, o := range []Options{
		{To: []string{"b@y.test"}, Messages: 1},
		{Addr: "127.0.0.1:1", To: []string{"b@y.test"}},
		{Addr: "127.0.0.1:1", Messages: 1},
		{Addr: "127.0.0.1:1", To: []string{"b@y.test"}, Messages: 1, TLS: tlspolicy.ModeStartTLS},
	} {
		if _, err := Run(context.Background(), o); err == nil {
			t.Errorf("Run(%+v) accepted", o)
		}
	}
}

func TestIdle(t *testing.T) {
	s := newSink(t, 0, false)
	var atHold int64
	rep, err := Idle(ctx(t), Options{Addr: s.addr(), Concurrency: 4}, 9, 10*time.Millisecond, func(r IdleReport) {
		atHold = s.ehlos.Load()
		if r.Held != 9 {
			t.Errorf("held %d at the callback", r.Held)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Held != 9 || rep.Failed != 0 || atHold != 9 {
		t.Errorf("held %d failed %d, sink saw %d EHLOs at the hold", rep.Held, rep.Failed, atHold)
	}
	if s.quits.Load() != 9 {
		t.Errorf("sink saw %d QUITs after the hold", s.quits.Load())
	}
	var out strings.Builder
	rep.WriteText(&out)
	if !strings.Contains(out.String(), "9 of 9 connections held") {
		t.Errorf("idle text: %q", out.String())
	}
}
