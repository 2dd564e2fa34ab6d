package delivery

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"smtpkit/internal/client"
	"smtpkit/internal/dkim"
	"smtpkit/internal/dns"
	"smtpkit/internal/dns/dnstest"
	"smtpkit/internal/queue"
	"smtpkit/internal/route"
	"smtpkit/internal/smtp"
	"smtpkit/internal/tlspolicy"
	"smtpkit/internal/tlsrpt"
)

const testBody = "From: a@local.example\r\nTo: x@remote.example\r\nSubject: hi\r\n\r\n.leading dot\r\nbody\r\n"

// mxZone is remote.example with two MX hosts: mx1 (preference 10) on
// 127.0.0.2 and mx2 (preference 20) on 127.0.0.3; one.example has mx1 only.
var mxZone = []string{
	"remote.example. MX 20 mx2.remote.example.",
	"remote.example. MX 10 mx1.remote.example.",
	"mx1.remote.example. A 127.0.0.2",
	"mx2.remote.example. A 127.0.0.3",
	"null.example. MX 0 .",
	"one.example. MX 10 mx1.remote.example.",
}

// env is a Remote courier wired to a loopback DNS server and MX port.
type env struct {
	remote *Remote
	port   int
}

type envOpts struct {
	policy tlspolicy.Policy
	roots  *x509.CertPool
	routes []route.Static
	idle   time.Duration
	log    *slog.Logger
	// zone replaces the DNS the courier sees (mxZone and more), served
	// with the AD bit when authentic; dane and sts turn those on.
	zone    *dnstest.Zone
	dane    bool
	sts     route.STSLookup
	reports tlsrpt.Recorder
	signer  *dkim.Signer
}

func newEnv(t *testing.T, port int, o envOpts) *env {
	t.Helper()
	zone := dnstest.Zone{Records: mxZone}
	if o.zone != nil {
		zone = *o.zone
	}
	res, err := dns.New(dns.Options{Servers: []string{dnstest.Start(t, zone).Addr}, Timeout: 2 * time.Second, EDNS0: true})
	if err != nil {
		t.Fatal(err)
	}
	router := route.New(res, o.routes, route.Options{DefaultPort: port, AllowLoopback: true, DANE: o.dane, STS: o.sts})
	to := 5 * time.Second
	r := NewRemote(RemoteOptions{
		Router: router, Policy: o.policy, LocalName: "out.local.example", Roots: o.roots,
		Timeouts:    client.Timeouts{Connect: to, Greeting: to, Mail: to, Rcpt: to, DataInit: to, DataBlock: to, DataEnd: to, Command: to},
		IdleTimeout: o.idle, Logger: o.log, Reports: o.reports, Signer: o.signer,
	})
	t.Cleanup(r.Close)
	return &env{remote: r, port: port}
}

func delivery(domain string, rcpts ...string) *queue.Attempt {
	return &queue.Attempt{
		ID: "msg1", From: "a@local.example", Domain: domain, Recipients: rcpts, Size: int64(len(testBody)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(testBody)), nil },
	}
}

func (e *env) deliver(t *testing.T, d *queue.Attempt) []queue.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res := e.remote.Deliver(ctx, d)
	if len(res) != len(d.Recipients) {
		t.Fatalf("%d results for %d recipients: %+v", len(res), len(d.Recipients), res)
	}
	for i, r := range res {
		if r.Rcpt != d.Recipients[i] {
			t.Errorf("result %d is for %q, want %q", i, r.Rcpt, d.Recipients[i])
		}
	}
	return res
}

// outcome classifies a result: "ok", "temp 451 4.7.4", "perm 550 5.1.1",
// or "temp (not an smtp.Error)".
func outcome(r queue.Result) string {
	if r.Err == nil {
		return "ok"
	}
	var se *smtp.Error
	if !errors.As(r.Err, &se) {
		return "temp (not an smtp.Error)"
	}
	kind := "temp"
	if se.Permanent() {
		kind = "perm"
	}
	return kind + " " + strings.TrimSpace(strconv.Itoa(se.Reply.Code)+" "+string(se.Reply.Enhanced))
}

func wantOutcomes(t *testing.T, res []queue.Result, want ...string) {
	t.Helper()
	for i, r := range res {
		if got := outcome(r); !strings.HasPrefix(got, want[i]) {
			t.Errorf("%s: outcome %q, want %q (err %v, detail %q)", r.Rcpt, got, want[i], r.Err, r.Detail())
		}
	}
}

// twoMX starts scripted servers as mx1 and mx2 of remote.example; a nil
// script leaves that host without a listener (connection refused).
func twoMX(t *testing.T, s1, s2 *script) (*fakeServer, *fakeServer, int) {
	t.Helper()
	port, ls := listenSamePort(t, "127.0.0.2", "127.0.0.3")
	var f1, f2 *fakeServer
	if s1 != nil {
		f1 = serveFake(t, ls[0], *s1)
	} else {
		ls[0].Close()
	}
	if s2 != nil {
		f2 = serveFake(t, ls[1], *s2)
	} else {
		ls[1].Close()
	}
	return f1, f2, port
}

func TestRemoteMXOrder(t *testing.T) {
	f1, f2, port := twoMX(t, &script{}, &script{})
	e := newEnv(t, port, envOpts{policy: tlspolicy.Opportunistic})
	res := e.deliver(t, delivery("remote.example", "x@remote.example", "y@remote.example"))
	wantOutcomes(t, res, "ok", "ok")
	if !strings.HasPrefix(res[0].Detail(), "mx1.remote.example[127.0.0.2] said: 250") {
		t.Errorf("detail %q, want it to name mx1 and its 250", res[0].Detail())
	}
	msgs := f1.Messages()
	if len(msgs) != 1 || f2.Accepts() != 0 {
		t.Fatalf("mx1 got %v, mx2 had %d connections; want the lowest preference only", msgs, f2.Accepts())
	}
	m := msgs[0]
	if m.From != "a@local.example" || strings.Join(m.Rcpts, ",") != "x@remote.example,y@remote.example" || m.Body != testBody {
		t.Errorf("received %v", m)
	}
}

func TestRemoteFallback(t *testing.T) {
	tests := []struct {
		name string
		mx1  *script
	}{
		{"connection refused", nil},
		{"421 greeting", &script{greeting: "421 4.3.2 not now"}},
		{"554 greeting", &script{greeting: "554 5.7.1 go away"}},
		{"4xx MAIL", &script{mail: "451 4.3.0 try later"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f1, f2, port := twoMX(t, tc.mx1, &script{})
			e := newEnv(t, port, envOpts{policy: tlspolicy.Opportunistic})
			res := e.deliver(t, delivery("remote.example", "x@remote.example"))
			wantOutcomes(t, res, "ok")
			if f1 != nil && len(f1.Messages()) != 0 {
				t.Errorf("mx1 took a message: %v", f1.Messages())
			}
			if n := len(f2.Messages()); n != 1 {
				t.Errorf("mx2 got %d messages, want 1", n)
			}
			if !strings.HasPrefix(res[0].Detail(), "mx2.remote.example[127.0.0.3]") {
				t.Errorf("detail %q, want mx2", res[0].Detail())
			}
		})
	}
}

// TestRemoteAllHopsFail: when no hop takes the message, the report is the
// most informative failure — a reply or a TLS decision over a connection
// that could not be made — and among equals the last one.
func TestRemoteAllHopsFail(t *testing.T) {
	tests := []struct {
		name     string
		mx1, mx2 *script
		policy   tlspolicy.Policy
		want     string
		detail   string
		said     bool // the reported failure is the server's reply (not a TLS decision or a failed connection)
	}{
		{"421 then refused", &script{greeting: "421 4.3.2 busy"}, nil, tlspolicy.Opportunistic,
			"temp 421 4.3.2", "mx1.remote.example[127.0.0.2] said: 421 4.3.2 busy", true},
		{"no STARTTLS under required, then refused", &script{}, nil, tlspolicy.Required,
			"temp 451 4.7.4", "mx1.remote.example[127.0.0.2]: ", false},
		{"refused then 421", nil, &script{greeting: "421 4.3.2 busy"}, tlspolicy.Opportunistic,
			"temp 421 4.3.2", "mx2.remote.example[127.0.0.3] said: 421 4.3.2 busy", true},
		{"two 4xx MAIL", &script{mail: "451 4.3.0 one"}, &script{mail: "452 4.3.1 two"}, tlspolicy.None,
			"temp 452 4.3.1", "mx2.remote.example[127.0.0.3] said: 452 4.3.1 two", true},
		{"both refused", nil, nil, tlspolicy.None,
			"temp 451 4.4.1", "mx2.remote.example[127.0.0.3]: ", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, port := twoMX(t, tc.mx1, tc.mx2)
			e := newEnv(t, port, envOpts{policy: tc.policy})
			res := e.deliver(t, delivery("remote.example", "x@remote.example", "y@remote.example"))
			wantOutcomes(t, res, tc.want, tc.want)
			if !strings.HasPrefix(res[0].Detail(), tc.detail) {
				t.Errorf("detail %q, want it to start with %q", res[0].Detail(), tc.detail)
			}
			if res[0].Said() != tc.said || res[0].Remote.Host == "" {
				t.Errorf("said %v (reply %v) by %v, want said %v", res[0].Said(), res[0].Reply, res[0].Remote, tc.said)
			}
		})
	}
}

// TestRemoteRefusalIsOurs: a message the client refuses itself because the
// server cannot take it is smtpkit's refusal: the result names the server
// it talked to but no reply of its, the session ended with QUIT and no
// MAIL, and the queue will report it without a Remote-MTA. A server's own
// refusal, for contrast, is its reply.
func TestRemoteRefusalIsOurs(t *testing.T) {
	tests := []struct {
		name string
		edit func(d *queue.Attempt)
		want string
	}{
		{"SMTPUTF8 not offered", func(d *queue.Attempt) { d.SMTPUTF8 = true }, "perm 553 5.6.7"},
		{"over the SIZE limit", func(d *queue.Attempt) { d.Size = 2000000 }, "perm 552 5.3.4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f1, _, port := twoMX(t, &script{}, nil)
			e := newEnv(t, port, envOpts{policy: tlspolicy.None})
			d := delivery("remote.example", "x@remote.example")
			tc.edit(d)
			res := e.deliver(t, d)
			wantOutcomes(t, res, tc.want)
			r := res[0]
			if r.Said() || !errors.Is(r.Err, client.ErrRefused) {
				t.Errorf("reply %v, err %v: want no server reply and the client's own refusal", r.Reply, r.Err)
			}
			if r.Remote.Host != "mx1.remote.example" || r.Remote.Addr.String() != "127.0.0.2" {
				t.Errorf("remote %v, want mx1.remote.example[127.0.0.2]", r.Remote)
			}
			if strings.Contains(r.Detail(), "said") {
				t.Errorf("detail %q says a server said it", r.Detail())
			}
			deadline := time.Now().Add(10 * time.Second)
			for !f1.sawVerb("QUIT") && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if !f1.sawVerb("QUIT") || f1.sawVerb("MAIL") {
				t.Errorf("server saw %q, want the session ended with QUIT before any MAIL", f1.Commands())
			}
		})
	}
	t.Run("server refusal", func(t *testing.T) {
		_, _, port := twoMX(t, &script{rcpt: map[string]string{"x@remote.example": "550 5.1.1 no such user"}}, nil)
		e := newEnv(t, port, envOpts{policy: tlspolicy.None})
		res := e.deliver(t, delivery("remote.example", "x@remote.example"))
		wantOutcomes(t, res, "perm 550 5.1.1")
		if r := res[0]; !r.Said() || r.Reply.Code != 550 || r.Remote.Host != "mx1.remote.example" ||
			r.Detail() != "mx1.remote.example[127.0.0.2] said: 550 5.1.1 no such user" {
			t.Errorf("reply %v by %v, detail %q", r.Reply, r.Remote, r.Detail())
		}
	})
}

func TestRemoteRecipientOutcomes(t *testing.T) {
	tests := []struct {
		name string
		s    script
		want []string
		got  int // messages mx1 must have taken
	}{
		{"5xx and 4xx RCPT", script{rcpt: map[string]string{
			"b@remote.example": "550 5.1.1 no such user",
			"c@remote.example": "450 4.2.1 mailbox busy",
		}}, []string{"ok", "perm 550 5.1.1", "temp 450 4.2.1"}, 1},
		{"5xx DATA", script{data: "554 5.6.0 content rejected", rcpt: map[string]string{
			"b@remote.example": "550 5.1.1 no such user",
		}}, []string{"perm 554 5.6.0", "perm 550 5.1.1", "perm 554 5.6.0"}, 0},
		{"4xx DATA", script{data: "452 4.3.1 disk full"}, []string{"temp 452 4.3.1", "temp 452 4.3.1", "temp 452 4.3.1"}, 0},
		{"5xx MAIL", script{mail: "550 5.7.1 sender refused"}, []string{"perm 550 5.7.1", "perm 550 5.7.1", "perm 550 5.7.1"}, 0},
		{"all RCPT refused", script{rcpt: map[string]string{
			"a@remote.example": "550 5.1.1 no", "b@remote.example": "551 5.1.6 moved", "c@remote.example": "452 4.2.2 full",
		}}, []string{"perm 550", "perm 551", "temp 452"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f1, f2, port := twoMX(t, &tc.s, &script{})
			e := newEnv(t, port, envOpts{policy: tlspolicy.None})
			res := e.deliver(t, delivery("remote.example", "a@remote.example", "b@remote.example", "c@remote.example"))
			wantOutcomes(t, res, tc.want...)
			if n := len(f1.Messages()); n != tc.got {
				t.Errorf("mx1 took %d messages, want %d", n, tc.got)
			}
			if f2.Accepts() != 0 {
				t.Errorf("mx2 was contacted although mx1 decided the transaction")
			}
			for _, r := range res {
				if r.Err != nil && !strings.HasPrefix(r.Detail(), "mx1.remote.example[127.0.0.2] said: ") {
					t.Errorf("%s: detail %q", r.Rcpt, r.Detail())
				}
			}
		})
	}
}

func TestRemoteDropMidData(t *testing.T) {
	f1, _, port := twoMX(t, &script{dropData: true}, nil)
	e := newEnv(t, port, envOpts{policy: tlspolicy.None})
	res := e.deliver(t, delivery("remote.example", "x@remote.example"))
	wantOutcomes(t, res, "temp")
	if len(f1.Messages()) != 0 {
		t.Errorf("a dropped message was recorded")
	}
}

// TestRemoteConnectionLostAfterDot: a server that takes the final "." and
// closes without a reply may have delivered the message (RFC 1047). The
// attempt is a temporary failure marked as a possible duplicate, logged so,
// and the message is not sent at once to the next MX.
func TestRemoteConnectionLostAfterDot(t *testing.T) {
	_, f2, port := twoMX(t, &script{dropDot: true}, &script{})
	var logs strings.Builder
	var mu sync.Mutex
	e := newEnv(t, port, envOpts{policy: tlspolicy.None, log: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))})
	res := e.deliver(t, delivery("remote.example", "x@remote.example", "y@remote.example"))
	wantOutcomes(t, res, "temp", "temp")
	for _, r := range res {
		if !r.PossibleDuplicate {
			t.Errorf("%s: not marked as a possible duplicate: %+v", r.Rcpt, r)
		}
	}
	if n := f2.Accepts(); n != 0 {
		t.Errorf("the second MX got %d connections; a possible duplicate must wait for the retry", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "possible_duplicate=true") {
		t.Errorf("no possible_duplicate=true in the log:\n%s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestRemoteNullMX(t *testing.T) {
	e := newEnv(t, 2525, envOpts{policy: tlspolicy.Opportunistic})
	res := e.deliver(t, delivery("null.example", "x@null.example"))
	wantOutcomes(t, res, "perm 556 5.1.10")
	if !errors.Is(res[0].Err, route.ErrNullMX) {
		t.Errorf("err %v is not route.ErrNullMX", res[0].Err)
	}
}

func TestRemoteNoSuchDomain(t *testing.T) {
	e := newEnv(t, 2525, envOpts{policy: tlspolicy.Opportunistic})
	res := e.deliver(t, delivery("nonexistent.example", "x@nonexistent.example"))
	wantOutcomes(t, res, "perm 5")
}

func TestRemoteTLSPolicies(t *testing.T) {
	cert, pool := selfSigned(t, "mx1.remote.example")
	_, otherPool := selfSigned(t, "elsewhere.example")
	tests := []struct {
		name    string
		s       script
		policy  tlspolicy.Policy
		roots   *x509.CertPool
		want    string
		tls     bool // the message arrived under TLS
		accepts int  // connections mx1 saw
	}{
		{"opportunistic, TLS", script{tls: tlsConfig(cert)}, tlspolicy.Opportunistic, nil, "ok", true, 1},
		{"opportunistic, no STARTTLS", script{}, tlspolicy.Opportunistic, nil, "ok", false, 1},
		{"opportunistic, handshake fails", script{badTLS: true}, tlspolicy.Opportunistic, nil, "ok", false, 2},
		{"none, TLS offered", script{tls: tlsConfig(cert)}, tlspolicy.None, nil, "ok", false, 1},
		{"required, no STARTTLS", script{}, tlspolicy.Required, nil, "temp 451 4.7.4", false, 1},
		{"required, handshake fails", script{badTLS: true}, tlspolicy.Required, nil, "temp 451 4.7.5", false, 1},
		{"required, self-signed", script{tls: tlsConfig(cert)}, tlspolicy.Required, nil, "ok", true, 1},
		{"verify, self-signed", script{tls: tlsConfig(cert)}, tlspolicy.Verify, nil, "temp 451 4.7.5", false, 1},
		{"verify, wrong root", script{tls: tlsConfig(cert)}, tlspolicy.Verify, otherPool, "temp 451 4.7.5", false, 1},
		{"verify, trusted", script{tls: tlsConfig(cert)}, tlspolicy.Verify, pool, "ok", true, 1},
		{"verify, no STARTTLS", script{}, tlspolicy.Verify, pool, "temp 451 4.7.4", false, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f1, _, port := twoMX(t, &tc.s, nil)
			e := newEnv(t, port, envOpts{policy: tc.policy, roots: tc.roots})
			res := e.deliver(t, delivery("one.example", "x@one.example"))
			wantOutcomes(t, res, tc.want)
			msgs := f1.Messages()
			if tc.want != "ok" {
				if f1.sawVerb("MAIL") || len(msgs) != 0 {
					t.Errorf("the transaction started although TLS failed: %q", f1.Commands())
				}
				if !strings.HasPrefix(res[0].Detail(), "mx1.remote.example[127.0.0.2]: ") {
					t.Errorf("detail %q names no host", res[0].Detail())
				}
			} else if len(msgs) != 1 || msgs[0].TLS != tc.tls {
				t.Errorf("messages %v, want one with tls=%v", msgs, tc.tls)
			}
			if got := f1.Accepts(); got != tc.accepts {
				t.Errorf("mx1 saw %d connections, want %d", got, tc.accepts)
			}
		})
	}
}

// TestRemoteRequiredFallsBackToNextMX: TLS missing on the first MX under a
// required policy moves on to the next MX, which offers it.
func TestRemoteRequiredFallsBackToNextMX(t *testing.T) {
	cert, _ := selfSigned(t, "mx2.remote.example")
	f1, f2, port := twoMX(t, &script{}, &script{tls: tlsConfig(cert)})
	e := newEnv(t, port, envOpts{policy: tlspolicy.Required})
	wantOutcomes(t, e.deliver(t, delivery("remote.example", "x@remote.example")), "ok")
	if f1.sawVerb("MAIL") {
		t.Errorf("plaintext MAIL sent to mx1: %q", f1.Commands())
	}
	if m := f2.Messages(); len(m) != 1 || !m[0].TLS {
		t.Errorf("mx2 messages %v, want one under TLS", m)
	}
}

func TestRemoteConnectionReuse(t *testing.T) {
	f1, _, port := twoMX(t, &script{}, nil)
	e := newEnv(t, port, envOpts{policy: tlspolicy.Opportunistic})
	for i := range 3 {
		wantOutcomes(t, e.deliver(t, delivery("remote.example", "x@remote.example")), "ok")
		if n := len(f1.Messages()); n != i+1 {
			t.Fatalf("after delivery %d: %d messages", i+1, n)
		}
	}
	if n := f1.Accepts(); n != 1 {
		t.Errorf("%d connections for three messages, want 1 (reuse)", n)
	}

	// The peer ends the idle session: the next message notices and opens
	// a new connection instead of failing.
	f1.dropConns()
	wantOutcomes(t, e.deliver(t, delivery("remote.example", "y@remote.example")), "ok")
	if n, a := len(f1.Messages()), f1.Accepts(); n != 4 || a != 2 {
		t.Errorf("after the peer closed: %d messages over %d connections, want 4 over 2", n, a)
	}
}

func TestRemoteNoReuseAfterFailedData(t *testing.T) {
	f1, _, port := twoMX(t, &script{data: "554 5.6.0 no"}, nil)
	e := newEnv(t, port, envOpts{policy: tlspolicy.None})
	for range 2 {
		wantOutcomes(t, e.deliver(t, delivery("remote.example", "x@remote.example")), "perm 554")
	}
	if n := f1.Accepts(); n != 2 {
		t.Errorf("%d connections, want a fresh one after a refused message", n)
	}
}

func TestRemoteReuseDisabled(t *testing.T) {
	f1, _, port := twoMX(t, &script{}, nil)
	e := newEnv(t, port, envOpts{policy: tlspolicy.None, idle: -1})
	for range 2 {
		wantOutcomes(t, e.deliver(t, delivery("remote.example", "x@remote.example")), "ok")
	}
	if n := f1.Accepts(); n != 2 {
		t.Errorf("%d connections with reuse disabled, want 2", n)
	}
}

// relay starts a relay host with AUTH PLAIN and STARTTLS on 127.0.0.1 and
// returns a "*" static route to it with the given password in a file.
func relay(t *testing.T, password string, tlsMode string, offerTLS bool) (*fakeServer, route.Static) {
	t.Helper()
	cert, _ := selfSigned(t, "relay.example")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := script{authUser: "relayuser", authPass: "s3cret pass"}
	if offerTLS {
		s.tls = tlsConfig(cert)
	}
	f := serveFake(t, l, s)
	pwFile := filepath.Join(t.TempDir(), "relay.pw")
	if err := os.WriteFile(pwFile, []byte(password), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := route.ParseStatic("*", l.Addr().String(), tlsMode, "relayuser", pwFile)
	if err != nil {
		t.Fatal(err)
	}
	return f, st
}

func TestRemoteRelayAuth(t *testing.T) {
	tests := []struct {
		name     string
		password string
		tls      string
		noTLS    bool // the relay does not offer STARTTLS
		want     string
		ok, fail int
	}{
		{"right password, newline in file", "s3cret pass\n", "required", false, "ok", 1, 0},
		{"right password, route inherits opportunistic", "s3cret pass", "", false, "ok", 1, 0},
		{"wrong password", "wrong\n", "required", false, "temp 451 4.7.8", 0, 1},
		// Credentials are never sent in plaintext: AUTH raises the policy
		// to required.
		{"tls none raised to required", "s3cret pass", "none", false, "ok", 1, 0},
		{"no STARTTLS, inherits opportunistic", "s3cret pass", "", true, "temp 451 4.7.4", 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, st := relay(t, tc.password, tc.tls, !tc.noTLS)
			e := newEnv(t, 25, envOpts{policy: tlspolicy.Opportunistic, routes: []route.Static{st}})
			res := e.deliver(t, delivery("anywhere.example", "x@anywhere.example"))
			wantOutcomes(t, res, tc.want)
			f.mu.Lock()
			ok, fail := f.authOK, f.authFail
			f.mu.Unlock()
			if ok != tc.ok || fail != tc.fail {
				t.Errorf("AUTH ok %d, failed %d; want %d, %d", ok, fail, tc.ok, tc.fail)
			}
			msgs := f.Messages()
			if tc.want == "ok" {
				if len(msgs) != 1 || !msgs[0].TLS {
					t.Errorf("relay messages %v, want one under TLS", msgs)
				}
			} else if f.sawVerb("MAIL") {
				t.Errorf("MAIL sent without a successful AUTH: %q", f.Commands())
			}
			for _, c := range f.Commands() {
				if strings.HasPrefix(strings.ToUpper(c), "AUTH") {
					t.Errorf("AUTH sent in plaintext: %q", c)
				}
			}
		})
	}
}

func TestRemoteRelayPasswordFileMissing(t *testing.T) {
	f, st := relay(t, "x", "required", true)
	st.AuthPasswordFile = filepath.Join(t.TempDir(), "missing")
	e := newEnv(t, 25, envOpts{policy: tlspolicy.Opportunistic, routes: []route.Static{st}})
	wantOutcomes(t, e.deliver(t, delivery("anywhere.example", "x@anywhere.example")), "temp")
	if f.sawVerb("MAIL") {
		t.Errorf("MAIL sent without AUTH")
	}
}

func TestRemoteContextCancelled(t *testing.T) {
	_, _, port := twoMX(t, &script{}, &script{})
	e := newEnv(t, port, envOpts{policy: tlspolicy.None})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := e.remote.Deliver(ctx, delivery("remote.example", "x@remote.example"))
	wantOutcomes(t, res, "temp")
}

// TestRemoteReuseAfterPlaintextRetry: the plaintext connection made after
// a failed opportunistic handshake is reused by the next message to that
// host, instead of failing the handshake all over again.
func TestRemoteReuseAfterPlaintextRetry(t *testing.T) {
	f1, _, port := twoMX(t, &script{badTLS: true}, nil)
	e := newEnv(t, port, envOpts{policy: tlspolicy.Opportunistic})
	for range 2 {
		wantOutcomes(t, e.deliver(t, delivery("one.example", "x@one.example")), "ok")
	}
	if n, a := len(f1.Messages()), f1.Accepts(); n != 2 || a != 2 {
		t.Errorf("%d messages over %d connections, want 2 over 2 (failed handshake, then one plaintext session)", n, a)
	}
}

// TestRemoteIdleConnectionsClosed: a kept connection that no message
// reuses is closed with QUIT once idle, not held until Close.
func TestRemoteIdleConnectionsClosed(t *testing.T) {
	f1, _, port := twoMX(t, &script{}, nil)
	e := newEnv(t, port, envOpts{policy: tlspolicy.None, idle: 50 * time.Millisecond})
	wantOutcomes(t, e.deliver(t, delivery("one.example", "x@one.example")), "ok")
	for deadline := time.Now().Add(5 * time.Second); !f1.sawVerb("QUIT"); {
		if time.Now().After(deadline) {
			t.Fatalf("idle connection not closed after 5s: %q", f1.Commands())
		}
		time.Sleep(10 * time.Millisecond) // polling, bounded above
	}
}
