package server

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// step is one command of a scripted dialogue and the reply it must get.
type step struct {
	send string // sent as is, plus CRLF unless raw
	want string // expected reply prefix
}

func runScript(t *testing.T, addr string, steps []step) *client {
	t.Helper()
	c := dial(t, addr)
	for _, s := range steps {
		c.cmd(s.send, s.want)
	}
	return c
}

func TestDialogues(t *testing.T) {
	ts := startServer(t, Limits{MessageSize: 1000, Errors: 50}, Listener{Role: RoleMX, TLS: TLSOpportunistic})
	mx := ts.addrs[0]
	tests := []struct {
		name  string
		steps []step
	}{
		{"MAIL before EHLO", []step{{"MAIL FROM:<a@b.example>", "503 Send EHLO"}}},
		{"RCPT before MAIL", []step{{"EHLO c", "250-"}, {"RCPT TO:<alice@example.com>", "503 5.5.1"}}},
		{"DATA before RCPT", []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example>", "250 2.1.0"}, {"DATA", "503 5.5.1"}}},
		{"nested MAIL", []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example>", "250"}, {"MAIL FROM:<a@b.example>", "503 5.5.1"}}},
		{"verbs are case-insensitive", []step{{"ehlo c", "250-"}, {"mAiL FROM:<a@b.example>", "250 2.1.0"}, {"rcpt to:<alice@example.com>", "250 2.1.5"}}},
		{"unknown verb", []step{{"EHLO c", "250-"}, {"FOO bar", "500 5.5.2"}}},
		{"no enhanced codes before EHLO", []step{{"FOO", "500 Command"}, {"HELO c", "250 mx.example.com"}, {"NOOP", "250 OK"}}},
		{"HELO without name", []step{{"HELO", "501"}}},
		{"NOOP RSET", []step{{"EHLO c", "250-"}, {"NOOP", "250 2.0.0"}, {"RSET", "250 2.0.0"}, {"RSET x", "501 5.5.4"}}},
		{"VRFY does not enumerate", []step{{"EHLO c", "250-"}, {"VRFY alice", "252 2.5.0"}, {"VRFY nobody", "252 2.5.0"}}},
		{"EXPN", []step{{"EHLO c", "250-"}, {"EXPN list", "502 5.5.1"}}},
		{"HELP", []step{{"EHLO c", "250-"}, {"HELP", "214-2.0.0"}}},
		{"unknown local user", []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<bob@example.com>", "550 5.1.1"}}},
		{"relay denied", []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<x@elsewhere.example>", "550 5.7.1"}}},
		{"percent hack", []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<x%elsewhere.example@example.com>", "550 5.7.1"}}},
		{"bang path", []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<elsewhere.example!x@example.com>", "550 5.7.1"}}},
		{"quoted at", []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example>", "250"}, {`RCPT TO:<"x@elsewhere.example"@example.com>`, "550 5.7.1"}}},
		{"source route", []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<@example.com:x@elsewhere.example>", "550 5.7.1"}}},
		{"postmaster without domain", []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<Postmaster>", "250 2.1.5"}}},
		{"SIZE over limit", []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example> SIZE=1001", "552 5.3.4"}}},
		{"SIZE within limit", []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example> SIZE=999", "250 2.1.0"}}},
		{"unknown MAIL parameter", []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example> FOO=1", "555 5.5.4"}}},
		{"AUTH parameter accepted", []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example> AUTH=<>", "250 2.1.0"}}},
		{"UTF-8 sender without SMTPUTF8", []step{{"EHLO c", "250-"}, {"MAIL FROM:<jö@b.example>", "553 5.6.7"}}},
		{"UTF-8 sender with SMTPUTF8", []step{{"EHLO c", "250-"}, {"MAIL FROM:<jö@b.example> SMTPUTF8", "250 2.1.0"}}},
		{"BODY=8BITMIME", []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example> BODY=8BITMIME", "250 2.1.0"}}},
		{"BODY=7BIT", []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example> BODY=7BIT", "250 2.1.0"}}},
		// RFC 3030 §3: BINARYMIME is taken, but its data only by BDAT: DATA
		// gets 503 and the transaction stays.
		{"BODY=BINARYMIME then DATA", []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example> BODY=BINARYMIME", "250 2.1.0"}, {"RCPT TO:<alice@example.com>", "250"}, {"DATA", "503 5.5.1"}, {"MAIL FROM:<a@b.example>", "503 5.5.1"}}},
		{"BODY=binarymime lower case", []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example> BODY=binarymime", "250 2.1.0"}}},
		{"BODY=BINARYMIME with SIZE", []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example> SIZE=10 BODY=BINARYMIME", "250 2.1.0"}}},
		{"BODY=BINARY unknown", []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example> BODY=BINARY", "501"}}},
		{"AUTH before TLS", []step{{"EHLO c", "250-"}, {"AUTH PLAIN", "502 5.5.1"}}},
		{"STARTTLS with argument", []step{{"EHLO c", "250-"}, {"STARTTLS now", "501 5.5.4"}}},
		{"DATA with argument", []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<alice@example.com>", "250"}, {"DATA x", "501 5.5.4"}}},
		{"QUIT", []step{{"EHLO c", "250-"}, {"QUIT", "221 2.0.0"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runScript(t, mx, tt.steps) })
	}
}

func TestEHLOAdvertises(t *testing.T) {
	ts := startServer(t, Limits{MessageSize: 12345}, Listener{Role: RoleMX, TLS: TLSOpportunistic}, Listener{Role: RoleSubmission, TLS: TLSRequired, Auth: true})
	c := dial(t, ts.addrs[0])
	got := c.cmd("EHLO c", "250-")
	for _, kw := range []string{"PIPELINING", "SIZE 12345", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING", "BINARYMIME", "STARTTLS"} {
		if !strings.Contains(got, "250-"+kw+"\r\n") && !strings.Contains(got, "250 "+kw+"\r\n") {
			t.Errorf("EHLO lacks %s:\n%s", kw, got)
		}
	}
	if strings.Contains(got, "AUTH") {
		t.Errorf("mx listener offers AUTH:\n%s", got)
	}
	sub := dial(t, ts.addrs[1])
	if got := sub.cmd("EHLO c", "250-"); strings.Contains(got, "AUTH") {
		t.Errorf("AUTH offered before TLS:\n%s", got)
	}
	sub.startTLS()
	got = sub.cmd("EHLO c", "250-")
	if !strings.Contains(got, "AUTH PLAIN LOGIN SCRAM-SHA-256") {
		t.Errorf("AUTH not offered inside TLS:\n%s", got)
	}
	if strings.Contains(got, "STARTTLS") {
		t.Errorf("STARTTLS offered again inside TLS:\n%s", got)
	}
}

func TestDeliveryDotUnstuffing(t *testing.T) {
	ts := startServer(t, Limits{}, Listener{Role: RoleMX, TLS: TLSNone})
	c := runScript(t, ts.addrs[0], []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<alice@example.com>", "250"}, {"DATA", "354"}})
	c.cmd("Subject: t\r\n\r\n..leading dot\r\nline\r\n.", "250 2.0.0")
	msgs := ts.backend.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages stored, want 1", len(msgs))
	}
	body := string(msgs[0].data)
	if !strings.HasPrefix(body, "Received: from c ([127.0.0.1])\r\n\tby mx.example.com (smtpkit) with ESMTP id ") {
		t.Errorf("bad trace header:\n%s", body)
	}
	if !strings.HasSuffix(body, "\r\nSubject: t\r\n\r\n.leading dot\r\nline\r\n") {
		t.Errorf("body not byte-exact after unstuffing:\n%q", body)
	}
}

// TestSmuggling sends the CVE-2023-51764 family of fake terminators: none
// may end the data, each must be refused after the real CRLF.CRLF, and the
// smuggled MAIL must never become a second message.
func TestSmuggling(t *testing.T) {
	ts := startServer(t, Limits{}, Listener{Role: RoleMX, TLS: TLSNone})
	for _, fake := range []string{"\n.\n", "\n.\r\n", "\r.\r", "\r\n.\n", "\r\n.\r", "\r\n.\rX"} {
		c := runScript(t, ts.addrs[0], []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<alice@example.com>", "250"}, {"DATA", "354"}})
		c.send("Subject: x\r\n\r\nbody" + fake + "MAIL FROM:<evil@b.example>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nsmuggled\r\n.\r\n")
		got := c.reply()
		if !strings.HasPrefix(got, "500 5.5.2") && !strings.HasPrefix(got, "550") {
			t.Errorf("fake terminator %q: got %q, want a 5xx bare CR/LF refusal", fake, got)
		}
		c.cmd("NOOP", "250")
	}
	if n := len(ts.backend.messages()); n != 0 {
		t.Errorf("%d messages stored from smuggling attempts, want 0", n)
	}
}

func TestBareLFInCommand(t *testing.T) {
	ts := startServer(t, Limits{}, Listener{Role: RoleMX, TLS: TLSNone})
	c := dial(t, ts.addrs[0])
	c.send("EHLO c\n")
	c.expect("500 Bare LF")
	c.cmd("EHLO c", "250-")
}

func TestCommandLineTooLong(t *testing.T) {
	ts := startServer(t, Limits{}, Listener{Role: RoleMX, TLS: TLSNone})
	c := dial(t, ts.addrs[0])
	c.send("NOOP " + strings.Repeat("x", 10000) + "\r\n")
	c.expect("500 Line too long")
	c.cmd("NOOP", "250")
}

func TestOversizedBodyRefused(t *testing.T) {
	ts := startServer(t, Limits{MessageSize: 100}, Listener{Role: RoleMX, TLS: TLSNone})
	c := runScript(t, ts.addrs[0], []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<alice@example.com>", "250"}, {"DATA", "354"}})
	c.cmd(strings.Repeat("0123456789\r\n", 20)+".", "552 5.3.4")
	c.cmd("NOOP", "250")
	if n := len(ts.backend.messages()); n != 0 {
		t.Errorf("oversized message stored")
	}
}

func TestPipeliningInOneWrite(t *testing.T) {
	ts := startServer(t, Limits{}, Listener{Role: RoleMX, TLS: TLSNone})
	c := dial(t, ts.addrs[0])
	c.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<nobody@example.com>\r\nRCPT TO:<postmaster@example.com>\r\nDATA\r\n")
	for _, want := range []string{"250-", "250 2.1.0", "250 2.1.5", "550 5.1.1", "250 2.1.5", "354"} {
		c.expect(want)
	}
	c.cmd("hi\r\n.", "250 2.0.0")
	msgs := ts.backend.messages()
	if len(msgs) != 1 || len(msgs[0].env.Recipients) != 2 {
		t.Fatalf("want one message for two recipients, got %+v", msgs)
	}
}

func TestTooManyRecipients(t *testing.T) {
	ts := startServer(t, Limits{Recipients: 100}, Listener{Role: RoleMX, TLS: TLSNone})
	c := runScript(t, ts.addrs[0], []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example>", "250"}})
	var b strings.Builder
	for i := range 101 {
		fmt.Fprintf(&b, "RCPT TO:<alice+%d@example.com>\r\n", i)
	}
	c.send(b.String())
	for range 100 {
		c.expect("250 2.1.5")
	}
	c.expect("452 4.5.3")
	c.cmd("RCPT TO:<alice+1@example.com>", "250 2.1.5 Recipient OK (duplicate)")
}

func TestStartTLSInjection(t *testing.T) {
	ts := startServer(t, Limits{}, Listener{Role: RoleMX, TLS: TLSOpportunistic})
	c := dial(t, ts.addrs[0])
	c.cmd("EHLO c", "250-")
	c.send("STARTTLS\r\nRSET\r\n")
	c.expect("220 2.0.0")
	tc := tlsClient(t, c)
	// The injected RSET must not be answered inside TLS: the first reply
	// we get is the one to our own NOOP.
	tc.cmd("NOOP", "250 OK") // no enhanced code: the session started over (no EHLO yet)
	tc.cmd("MAIL FROM:<a@b.example>", "503 Send EHLO")
}

func TestSubmissionRequiresTLSThenAuth(t *testing.T) {
	ts := startServer(t, Limits{}, Listener{Role: RoleSubmission, TLS: TLSRequired, Auth: true})
	c := runScript(t, ts.addrs[0], []step{{"EHLO c", "250-"}, {"MAIL FROM:<alice@example.com>", "530 5.7.0"}, {"AUTH PLAIN", "538 5.7.11"}})
	c.startTLS()
	c.cmd("EHLO c", "250-")
	c.cmd("MAIL FROM:<alice@example.com>", "530 5.7.0 Authentication required")
	bad := base64.StdEncoding.EncodeToString([]byte("\x00alice@example.com\x00wrong"))
	c.cmd("AUTH PLAIN "+bad, "535 5.7.8")
	good := base64.StdEncoding.EncodeToString([]byte("\x00alice@example.com\x00secret"))
	c.cmd("AUTH PLAIN "+good, "235 2.7.0")
	c.cmd("AUTH PLAIN "+good, "503 5.5.1")
	c.cmd("MAIL FROM:<mallory@example.com>", "553 5.7.1")
	c.cmd("MAIL FROM:<alice@example.com>", "250")
	c.cmd("RCPT TO:<friend@elsewhere.example>", "250")
	c.cmd("DATA", "354")
	c.cmd("Subject: s\r\n\r\nbody\r\n.", "250 2.0.0")
	msgs := ts.backend.messages()
	if len(msgs) != 1 {
		t.Fatalf("want 1 message, got %d", len(msgs))
	}
	got := string(msgs[0].data)
	for _, want := range []string{" with ESMTPSA id ", "(using TLS 1.3 with cipher ", "\r\nSubject: s\r\nMessage-ID: <", "\r\nDate: ", "\r\n\r\nbody\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("submitted message lacks %q:\n%s", want, got)
		}
	}
}

func TestAuthExchange(t *testing.T) {
	ts := startServer(t, Limits{}, Listener{Role: RoleSubmissions, TLS: TLSImplicit, Auth: true})
	tests := []struct {
		name  string
		steps []step
	}{
		{"LOGIN", []step{{"AUTH LOGIN", "334 VXNlcm5hbWU6"}, {b64("alice@example.com"), "334 UGFzc3dvcmQ6"}, {b64("secret"), "235 2.7.0"}}},
		{"PLAIN no initial response", []step{{"AUTH PLAIN", "334 "}, {b64("\x00alice@example.com\x00secret"), "235 2.7.0"}}},
		{"cancel", []step{{"AUTH LOGIN", "334"}, {"*", "501 5.0.0"}}},
		{"bad base64", []step{{"AUTH PLAIN !!!", "501 5.5.2"}}},
		{"unknown mechanism", []step{{"AUTH CRAM-MD5", "504 5.5.4"}}},
		{"empty initial response", []step{{"AUTH PLAIN =", "501 5.5.2"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tlsDial(t, ts.addrs[0])
			c.cmd("EHLO c", "250-")
			for _, s := range tt.steps {
				c.cmd(s.send, s.want)
			}
		})
	}
}

func TestAuthThrottleDisconnects(t *testing.T) {
	ts := startServer(t, Limits{}, Listener{Role: RoleSubmissions, TLS: TLSImplicit, Auth: true})
	c := tlsDial(t, ts.addrs[0])
	c.cmd("EHLO c", "250-")
	bad := "AUTH PLAIN " + b64("\x00alice@example.com\x00nope")
	c.cmd(bad, "535 5.7.8")
	c.cmd(bad, "535 5.7.8")
	c.send(bad + "\r\n")
	c.expect("535 5.7.8")
	c.expect("421 4.7.0")
	c.closed()
}

func TestHTTPRequestClosed(t *testing.T) {
	ts := startServer(t, Limits{}, Listener{Role: RoleMX, TLS: TLSNone})
	c := dial(t, ts.addrs[0])
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	c.closed()
}

func TestTooManyErrors(t *testing.T) {
	ts := startServer(t, Limits{Errors: 3}, Listener{Role: RoleMX, TLS: TLSNone})
	c := dial(t, ts.addrs[0])
	c.cmd("FOO", "500")
	c.cmd("FOO", "500")
	c.send("FOO\r\n")
	c.expect("500")
	c.expect("421 mx.example.com too many errors")
	c.closed()
}

func TestDisconnectMidDataStoresNothing(t *testing.T) {
	ts := startServer(t, Limits{}, Listener{Role: RoleMX, TLS: TLSNone})
	c := runScript(t, ts.addrs[0], []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<alice@example.com>", "250"}, {"DATA", "354"}})
	c.send("Subject: half\r\n\r\npartial")
	c.conn.Close()
	// A new session proves the server handled the drop; then nothing may be stored.
	dial(t, ts.addrs[0]).cmd("QUIT", "221")
	if n := len(ts.backend.messages()); n != 0 {
		t.Errorf("partial message stored")
	}
}

func TestBDAT(t *testing.T) {
	ts := startServer(t, Limits{MessageSize: 50}, Listener{Role: RoleMX, TLS: TLSNone})
	c := runScript(t, ts.addrs[0], []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<alice@example.com>", "250"}})
	c.send("BDAT 5\r\nhello")
	c.expect("250 2.0.0")
	c.send("BDAT 8 LAST\r\n world\r\n")
	c.expect("250 2.0.0 OK")
	msgs := ts.backend.messages()
	if len(msgs) != 1 || !strings.HasSuffix(string(msgs[0].data), "\r\nhello world\r\n") {
		t.Fatalf("BDAT message wrong: %+v", msgs)
	}
	// BDAT data is text too (without BODY=BINARYMIME): a bare LF is refused at
	// LAST, and the chunk's bytes are still consumed.
	c.cmd("MAIL FROM:<a@b.example>", "250")
	c.cmd("RCPT TO:<alice@example.com>", "250")
	c.send("BDAT 9 LAST\r\nx\n.\nMAIL ")
	c.expect("500 5.5.2 Bare LF")
	c.cmd("NOOP", "250")
	c.cmd("MAIL FROM:<a@b.example>", "250")
	c.cmd("RCPT TO:<alice@example.com>", "250")
	c.send("BDAT 60 LAST\r\n" + strings.Repeat("x", 60))
	c.expect("552 5.3.4")
	c.cmd("DATA", "503 5.5.1")
	if n := len(ts.backend.messages()); n != 1 {
		t.Errorf("oversized BDAT stored")
	}
}

// TestNUL sends NUL octets in DATA and BDAT: text may not hold them
// (RFC 5322 §2.1), and a next hop that strips them would read
// "\r\n\x00.\r\n" as an end of data. Each is refused with 554 5.6.0 after
// the real end of the data, nothing is stored, and the session stays in
// step.
func TestNUL(t *testing.T) {
	ts := startServer(t, Limits{}, Listener{Role: RoleMX, TLS: TLSNone})
	c := runScript(t, ts.addrs[0], []step{{"EHLO c", "250-"}})
	smuggled := "MAIL FROM:<evil@b.example>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nsmuggled\r\n"
	for _, body := range []string{
		"Subject: x\r\n\r\nbody\r\n\x00.\r\n" + smuggled,
		"Subject: x\r\n\r\nbody\r\n.\x00\r\n" + smuggled,
		"Subject: x\r\n\r\nbo\x00dy\r\n",
		"\x00\r\n",
	} {
		c.cmd("MAIL FROM:<a@b.example>", "250")
		c.cmd("RCPT TO:<alice@example.com>", "250")
		c.cmd("DATA", "354")
		c.send(body + ".\r\n")
		c.expect("554 5.6.0 NUL")
		c.cmd("NOOP", "250 2.0.0")
	}
	c.cmd("MAIL FROM:<a@b.example>", "250")
	c.cmd("RCPT TO:<alice@example.com>", "250")
	c.send("BDAT 8\r\na\r\n\x00.\r\nX")
	c.expect("554 5.6.0 NUL") // the chunk is read whole, the message refused
	c.send("BDAT 3 LAST\r\nb\r\n")
	c.expect("554 5.6.0 NUL")
	c.cmd("NOOP", "250 2.0.0")
	if n := len(ts.backend.messages()); n != 0 {
		t.Errorf("%d messages with NUL stored", n)
	}
}

func TestConnectionLimitPerIP(t *testing.T) {
	ts := startServer(t, Limits{ConnectionsPerIP: 2}, Listener{Role: RoleMX, TLS: TLSNone})
	dial(t, ts.addrs[0])
	dial(t, ts.addrs[0])
	c := rawDial(t, ts.addrs[0])
	c.expect("421 4.7.0")
}

func TestShutdownSays421(t *testing.T) {
	ts := startServer(t, Limits{}, Listener{Role: RoleMX, TLS: TLSNone})
	c := dial(t, ts.addrs[0])
	c.cmd("EHLO c", "250-")
	done := make(chan struct{})
	go func() {
		ctx, cancel := contextWithTimeout(5 * time.Second)
		defer cancel()
		ts.srv.Shutdown(ctx)
		close(done)
	}()
	c.expect("421 4.3.2")
	<-done
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestAuthThrottleTable(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th := newAuthThrottle(func() time.Time { return now }, 100*time.Millisecond)
	tests := []struct {
		keys      []string
		wantDelay time.Duration
	}{
		{[]string{"ip a", "user x"}, 100 * time.Millisecond},
		{[]string{"ip a", "user x"}, 200 * time.Millisecond},
		{[]string{"ip b", "user x"}, 400 * time.Millisecond}, // a new IP, same account: the account's count wins
		{[]string{"ip c"}, 100 * time.Millisecond},
	}
	for i, tt := range tests {
		if got := th.failure(tt.keys...); got != tt.wantDelay {
			t.Errorf("failure %d: delay %v, want %v", i, got, tt.wantDelay)
		}
	}
	for range 20 {
		th.failure("user y")
	}
	if d := th.failure("user y"); d != maxAuthDelay {
		t.Errorf("delay not capped: %v", d)
	}
	if !th.blocked("user y") || th.blocked("user x") {
		t.Errorf("blocking wrong")
	}
	now = now.Add(authWindow + time.Second)
	if th.blocked("user y") {
		t.Errorf("block outlived the window")
	}
}

func TestSessionRecipientLimit(t *testing.T) {
	ts := startServer(t, Limits{Recipients: 100, SessionRcpts: 150}, Listener{Role: RoleMX, TLS: TLSNone})
	c := runScript(t, ts.addrs[0], []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example>", "250"}})
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, "RCPT TO:<alice+%d@example.com>\r\n", i)
	}
	c.send(b.String())
	for range 100 {
		c.expect("250")
	}
	c.cmd("RSET", "250")
	c.cmd("MAIL FROM:<a@b.example>", "250")
	b.Reset()
	for i := range 51 {
		fmt.Fprintf(&b, "RCPT TO:<alice+x%d@example.com>\r\n", i)
	}
	c.send(b.String())
	for range 50 {
		c.expect("250")
	}
	c.expect("452 4.5.3 Too many recipients in this session")
}

func TestConnectionRatePerIP(t *testing.T) {
	ts := startServer(t, Limits{ConnectionRate: 3}, Listener{Role: RoleMX, TLS: TLSNone})
	for range 3 {
		dial(t, ts.addrs[0]).cmd("QUIT", "221")
	}
	rawDial(t, ts.addrs[0]).expect("421 4.7.0 mx.example.com connecting too fast")
}

// TestConnectionRateImplicitTLS: over the limit on an implicit-TLS
// listener the connection is closed without a plaintext 421, which a TLS
// client could only read as a broken record.
func TestConnectionRateImplicitTLS(t *testing.T) {
	ts := startServer(t, Limits{ConnectionRate: 2}, Listener{Role: RoleSubmissions, TLS: TLSImplicit, Auth: true})
	for range 2 {
		tlsDial(t, ts.addrs[0]).cmd("QUIT", "221")
	}
	c := rawDial(t, ts.addrs[0])
	b, err := io.ReadAll(c.r)
	if len(b) != 0 || err != nil {
		t.Fatalf("refused implicit-TLS connection got %q (%v), want a close without a word", b, err)
	}
	tc := tls.Client(rawDial(t, ts.addrs[0]).conn, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err == nil || strings.Contains(err.Error(), "first record") {
		t.Fatalf("handshake on a refused connection: %v, want an EOF-like failure", err)
	}
}

func TestHeaderTooLargeRefused(t *testing.T) {
	ts := startServer(t, Limits{HeaderSize: 1000}, Listener{Role: RoleMX, TLS: TLSNone})
	c := runScript(t, ts.addrs[0], []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<alice@example.com>", "250"}, {"DATA", "354"}})
	c.cmd("X-Big: "+strings.Repeat("a", 900)+"\r\nX-Big2: "+strings.Repeat("b", 900)+"\r\n\r\nbody\r\n.", "552 5.3.4")
	c.cmd("NOOP", "250")
	if n := len(ts.backend.messages()); n != 0 {
		t.Errorf("message with a huge header stored")
	}
}

func TestSinkListenerDiscards(t *testing.T) {
	ts := startServer(t, Limits{}, Listener{Role: RoleSink, TLS: TLSNone, Backend: Discard{}})
	c := runScript(t, ts.addrs[0], []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example>", "250"},
		{"RCPT TO:<anyone@anywhere.example>", "250 2.1.5"}, {"DATA", "354"}})
	c.cmd("Subject: x\r\n\r\nbody\r\n.", "250 2.0.0")
	// The protocol rules still hold on a sink: smuggling is refused.
	c.cmd("MAIL FROM:<a@b.example>", "250")
	c.cmd("RCPT TO:<x@y.example>", "250")
	c.cmd("DATA", "354")
	c.cmd("x\n.\nMAIL FROM:<e@x>\r\n.", "500 5.5.2")
	if n := len(ts.backend.messages()); n != 0 {
		t.Errorf("sink stored %d messages in the server backend", n)
	}
}

// TestPipelinedAfterData: commands in the same write as the end of data
// are read from the large data reader before the session returns to its
// small command buffer; nothing is lost or run twice.
func TestPipelinedAfterData(t *testing.T) {
	ts := startServer(t, Limits{}, Listener{Role: RoleMX, TLS: TLSNone})
	c := runScript(t, ts.addrs[0], []step{{"EHLO c", "250-"}, {"MAIL FROM:<a@b.example>", "250"}, {"RCPT TO:<alice@example.com>", "250"}, {"DATA", "354"}})
	c.send("Subject: one\r\n\r\n" + strings.Repeat(strings.Repeat("x", 70)+"\r\n", 600) + ".\r\nMAIL FROM:<c@d.example>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n")
	for _, want := range []string{"250 2.0.0", "250 2.1.0", "250 2.1.5", "354"} {
		c.expect(want)
	}
	c.cmd("Subject: two\r\n\r\nshort\r\n.", "250 2.0.0")
	c.cmd("NOOP", "250")
	msgs := ts.backend.messages()
	if len(msgs) != 2 || !strings.Contains(string(msgs[1].data), "Subject: two") {
		t.Fatalf("want two messages, got %d", len(msgs))
	}
}

// TestLongCommandLine: lines longer than the small command buffer but
// within Limits.CommandLine are read whole (an AUTH initial response).
func TestLongCommandLine(t *testing.T) {
	ts := startServer(t, Limits{CommandLine: 4096}, Listener{Role: RoleMX, TLS: TLSNone})
	c := dial(t, ts.addrs[0])
	c.cmd("EHLO c", "250-")
	c.cmd("NOOP "+strings.Repeat("a", 3000), "250")
	c.cmd("NOOP "+strings.Repeat("b", 5000), "500 5.5.2 Line too long")
	c.cmd("NOOP", "250")
}
