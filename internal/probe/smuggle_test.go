package probe

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"smtpkit/internal/server"
	"smtpkit/internal/smtp"
	"smtpkit/internal/tlspolicy"
)

// lenientServer is a deliberately vulnerable SMTP server for the
// smuggling self-test, on 127.13.6.1: it splits lines at a bare LF (and,
// with BareCR, at a bare CR too), so that "." alone between such line ends
// ends the data; with KeepBuffer it keeps what it read ahead before
// STARTTLS and executes it inside TLS (CVE-2011-0411).
type lenientServer struct {
	BareCR     bool
	KeepBuffer bool
	cert       tls.Certificate

	mu       sync.Mutex
	accepted []int // messages accepted, per connection
}

func (f *lenientServer) start(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	f.cert = cert
	ln, err := net.Listen("tcp", "127.13.6.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.accepted = append(f.accepted, 0)
			n := len(f.accepted) - 1
			f.mu.Unlock()
			go f.serve(nc, n)
		}
	}()
	return ln.Addr().String()
}

// readLine reads to LF (or CR with BareCR, CRLF counting once) and
// returns the line without its end; io.EOF at the end.
func (f *lenientServer) readLine(r *bufio.Reader) (string, error) {
	var b []byte
	for len(b) < 4096 {
		c, err := r.ReadByte()
		if err != nil {
			return "", err
		}
		switch {
		case c == '\n':
			return string(bytes.TrimSuffix(b, []byte("\r"))), nil
		case c == '\r' && f.BareCR:
			if next, err := r.Peek(1); err == nil && next[0] == '\n' {
				r.ReadByte()
			}
			return string(b), nil
		}
		b = append(b, c)
	}
	return string(b), nil
}

func (f *lenientServer) serve(nc net.Conn, n int) {
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	w := io.Writer(nc)
	r := bufio.NewReader(nc)
	io.WriteString(w, "220 lenient.probe.test ESMTP\r\n")
	for {
		line, err := f.readLine(r)
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			io.WriteString(w, "250-lenient.probe.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
		case "STARTTLS":
			io.WriteString(w, "220 2.0.0 go ahead\r\n")
			tc := tls.Server(nc, &tls.Config{Certificates: []tls.Certificate{f.cert}})
			var src io.Reader = tc
			if f.KeepBuffer {
				ahead, _ := r.Peek(r.Buffered())
				src = io.MultiReader(bytes.NewReader(bytes.Clone(ahead)), tc)
			}
			if tc.Handshake() != nil {
				return
			}
			w, r = tc, bufio.NewReader(src)
		case "MAIL", "RCPT", "NOOP", "RSET":
			io.WriteString(w, "250 2.0.0 ok\r\n")
		case "DATA":
			io.WriteString(w, "354 go ahead\r\n")
			for {
				l, err := f.readLine(r)
				if err != nil {
					return
				}
				if l == "." {
					break
				}
			}
			f.mu.Lock()
			f.accepted[n]++
			f.mu.Unlock()
			io.WriteString(w, "250 2.0.0 queued\r\n")
		case "QUIT":
			io.WriteString(w, "221 2.0.0 bye\r\n")
			return
		default:
			io.WriteString(w, "500 5.5.2 what?\r\n")
		}
	}
}

// maxAccepted is the most messages the server accepted on one connection.
func (f *lenientServer) maxAccepted() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := 0
	for _, a := range f.accepted {
		m = max(m, a)
	}
	return m
}

// TestSmuggleVulnerable: against the lenient server every ending it
// splits lines at is reported vulnerable, the others as content, the
// STARTTLS injection as vulnerable — and it never accepted two messages
// on one connection.
func TestSmuggleVulnerable(t *testing.T) {
	lfOnly := map[string]bool{"\n.\n": true, "\n.\r\n": true, "\r\n.\n": true}
	withCR := map[string]bool{"\n.\n": true, "\n.\r\n": true, "\r\n.\n": true, "\n.\r": true, "\r.\r": true, "\r.\r\n": true, "\r\n.\r": true}
	tests := []struct {
		name       string
		srv        *lenientServer
		vulnerable map[string]bool
		injection  string
	}{
		{"bare LF ends lines", &lenientServer{}, lfOnly, "safe"},
		{"bare CR and LF end lines, buffer kept across STARTTLS", &lenientServer{BareCR: true, KeepBuffer: true}, withCR, SmuggleVulnerable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := tt.srv.start(t, fakeCert(t))
			host, port := splitAddr(t, addr)
			rep := Smuggle(context.Background(), host, port, "postmaster@probe.test", testOptions())
			if !rep.Vulnerable || rep.Mode != "starttls" || len(rep.Endings) != len(Endings()) {
				t.Fatalf("%+v", rep)
			}
			for i, e := range Endings() {
				r := rep.Endings[i]
				want := SmuggleContent
				if tt.vulnerable[e] {
					want = SmuggleVulnerable
				}
				if r.Outcome != want {
					t.Errorf("ending %q: %s (%s, %s), want %s", e, r.Outcome, r.Reply, r.Detail, want)
				}
			}
			if rep.Injection == nil || rep.Injection.Outcome != tt.injection {
				t.Errorf("injection %+v, want %s", rep.Injection, tt.injection)
			}
			if m := tt.srv.maxAccepted(); m > 1 {
				t.Errorf("the vulnerable server accepted %d messages on one connection", m)
			}
			if t.Failed() || testing.Verbose() {
				t.Logf("transcript:\n%s", strings.Join(rep.Transcript, "\n"))
			}
		})
	}
}

func splitAddr(t *testing.T, addr string) (string, int) {
	t.Helper()
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := net.LookupPort("tcp", p)
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}

// countingBackend accepts everything and counts committed messages.
type countingBackend struct {
	mu        sync.Mutex
	committed int
}

func (*countingBackend) Sender(context.Context, *server.SessionInfo, smtp.Address) error { return nil }
func (*countingBackend) Recipient(context.Context, *server.SessionInfo, smtp.Address, smtp.Address) error {
	return nil
}
func (b *countingBackend) Begin(_ context.Context, env *server.Envelope) (server.MessageWriter, error) {
	return &countingWriter{b: b, id: env.ID}, nil
}

type countingWriter struct {
	b  *countingBackend
	id string
}

func (*countingWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *countingWriter) Commit() (string, error) {
	w.b.mu.Lock()
	w.b.committed++
	w.b.mu.Unlock()
	return w.id, nil
}
func (*countingWriter) Abort() {}

// ownServer runs smtpkit's own server (internal/server) on 127.13.6.2
// with STARTTLS, or implicit TLS, or none, and a backend that counts the
// messages it accepts.
func ownServer(t *testing.T, mode server.TLSMode) (string, *countingBackend) {
	t.Helper()
	cert := fakeCert(t)
	b := &countingBackend{}
	srv := server.New(server.Options{
		Hostname: "own.probe.test",
		Listeners: []server.Listener{{Address: "127.13.6.2:0", Role: server.RoleMX, TLS: mode,
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}},
		Backend: b,
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv.Addrs()[0].String(), b
}

// TestSmuggleOwnServer: smtpkit's own server is safe on every ending and
// against the injection, over STARTTLS, implicit TLS and plaintext, and
// accepted no more messages than the endings it took as content (none,
// as it refuses bare CR and LF).
func TestSmuggleOwnServer(t *testing.T) {
	tests := []struct {
		name string
		mode server.TLSMode
		opt  tlspolicy.Mode
		want string // the report's mode
	}{
		{"STARTTLS", server.TLSOpportunistic, tlspolicy.ModeAuto, "starttls"},
		{"implicit TLS", server.TLSImplicit, tlspolicy.ModeImplicit, "implicit"},
		{"plaintext", server.TLSNone, tlspolicy.ModeNone, "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, b := ownServer(t, tt.mode)
			host, port := splitAddr(t, addr)
			opts := testOptions()
			opts.Mode = tt.opt
			rep := Smuggle(context.Background(), host, port, "postmaster@own.probe.test", opts)
			if rep.Vulnerable || rep.Mode != tt.want {
				t.Errorf("vulnerable %v, mode %s", rep.Vulnerable, rep.Mode)
			}
			content := 0
			for _, r := range rep.Endings {
				switch r.Outcome {
				case SmuggleContent:
					content++
				case SmuggleRejected:
				default:
					t.Errorf("ending %s: %s (%s)", r.Ending, r.Outcome, r.Detail)
				}
			}
			if (rep.Injection != nil) != (tt.mode == server.TLSOpportunistic) || rep.Injection != nil && rep.Injection.Outcome != "safe" {
				t.Errorf("injection %+v", rep.Injection)
			}
			b.mu.Lock()
			committed := b.committed
			b.mu.Unlock()
			if committed > content {
				t.Errorf("%d messages accepted, %d endings taken as content", committed, content)
			}
			t.Logf("%d of %d endings rejected, %d taken as content, %d messages committed", len(rep.Endings)-content, len(rep.Endings), content, committed)
			if t.Failed() {
				t.Logf("transcript:\n%s", strings.Join(rep.Transcript, "\n"))
			}
		})
	}
}

// TestSmuggleGolden pins the text and JSON of a vulnerable server's
// report (the port masked, no transcript).
func TestSmuggleGolden(t *testing.T) {
	srv := &lenientServer{BareCR: true, KeepBuffer: true}
	host, port := splitAddr(t, srv.start(t, fakeCert(t)))
	opts := testOptions()
	opts.Transcript = false
	rep := Smuggle(context.Background(), host, port, "postmaster@probe.test", opts)
	rep.Address = strings.ReplaceAll(rep.Address, ":"+portString(port), ":2525")
	var text bytes.Buffer
	if err := WriteSmuggleText(&text, []SmuggleReport{rep}, false); err != nil {
		t.Fatal(err)
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "smuggle.txt", text.Bytes())
	checkGolden(t, "smuggle.json", append(js, '\n'))
}

func TestSmuggleExit(t *testing.T) {
	safe := SmuggleReport{Endings: []EndingResult{{Outcome: SmuggleRejected}, {Outcome: SmuggleContent}}, Injection: &InjectionResult{Outcome: "safe"}}
	failed := SmuggleReport{Endings: []EndingResult{{Outcome: SmuggleError}}}
	injFailed := SmuggleReport{Endings: []EndingResult{{Outcome: SmuggleRejected}}, Injection: &InjectionResult{Outcome: SmuggleError}}
	vulnerable := SmuggleReport{Vulnerable: true, Endings: []EndingResult{{Outcome: SmuggleVulnerable}}}
	tests := []struct {
		reps []SmuggleReport
		want int
	}{
		{[]SmuggleReport{safe}, ExitOK},
		{[]SmuggleReport{safe, failed}, ExitFailure},
		{[]SmuggleReport{injFailed}, ExitFailure},
		{[]SmuggleReport{failed, vulnerable}, ExitVulnerable},
		{nil, ExitOK},
	}
	for i, tt := range tests {
		if got := SmuggleExit(tt.reps); got != tt.want {
			t.Errorf("%d: exit %d, want %d", i, got, tt.want)
		}
	}
}
