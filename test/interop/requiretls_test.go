package interop

// requiretls_test.go: REQUIRETLS (RFC 8689) end to end. The daemon offers
// it only inside TLS (swaks), refuses the MAIL parameter in plaintext and
// takes it after STARTTLS (Python smtplib), `smtpkit send --require-tls`
// gets a message in over STARTTLS, and a REQUIRETLS message in the queue
// keeps its tag across a restart, while one whose next hop cannot carry it
// bounces with a DSN that returns nothing of it.

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"smtpkit/internal/testcert"
)

// TestRequireTLSReceiving: the receiving side, with swaks, smtplib and
// smtpkit send as the clients.
func TestRequireTLSReceiving(t *testing.T) {
	swaks := Need(t, "swaks")
	s := StartServer(t, ServerOptions{})

	t.Run("swaks sees REQUIRETLS only after STARTTLS", func(t *testing.T) {
		plain := mustRun(t, nil, swaks, "--server", s.MX, "--helo", "client.b.example", "--quit-after", "EHLO", "--timeout", "20")
		if strings.Contains(plain.Stdout, "REQUIRETLS") {
			t.Errorf("REQUIRETLS advertised in plaintext:\n%s", plain.Stdout)
		}
		tls := mustRun(t, nil, swaks, "--server", s.MX, "--helo", "client.b.example", "-tls", "--tls-verify",
			"--tls-ca-path", s.CertPath, "--tls-sni", testHostname, "--quit-after", "EHLO", "--timeout", "20")
		// swaks marks what it reads inside TLS with "<~".
		if !regexp.MustCompile(`(?m)^<~ +250[- ]REQUIRETLS\r?$`).MatchString(tls.Stdout) {
			t.Errorf("REQUIRETLS not advertised after STARTTLS:\n%s", tls.Stdout)
		}
	})

	t.Run("smtplib: REQUIRETLS refused in plaintext, accepted after STARTTLS", func(t *testing.T) {
		python := NeedPython(t)
		host, port, _ := net.SplitHostPort(s.MX)
		msg := testMessage("requiretls-smtplib")
		out, err := exec.Command(python, "testdata/requiretls_smtplib.py", host, port, s.CertPath, testHostname,
			"postmaster@"+testDomain, writeMessage(t, msg)).Output()
		if err != nil {
			t.Fatalf("requiretls_smtplib.py: %v\n%s", err, out)
		}
		var r struct {
			EHLOPlain []string `json:"ehlo_plain"`
			EHLOTLS   []string `json:"ehlo_tls"`
			MailPlain [2]any   `json:"mail_plain"`
			MailTLS   [2]any   `json:"mail_tls"`
			Rcpt      [2]any   `json:"rcpt"`
			Data      [2]any   `json:"data"`
		}
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		t.Logf("smtplib: %s", out)
		if slices.Contains(r.EHLOPlain, "requiretls") || !slices.Contains(r.EHLOTLS, "requiretls") {
			t.Errorf("EHLO keywords: plaintext %v, TLS %v", r.EHLOPlain, r.EHLOTLS)
		}
		reply := func(x [2]any) string {
			code, _ := x[0].(float64)
			text, _ := x[1].(string)
			return strconv.Itoa(int(code)) + " " + text
		}
		if got := reply(r.MailPlain); !strings.HasPrefix(got, "530 5.7.10 ") {
			t.Errorf("plaintext MAIL ... REQUIRETLS: %q, want 530 5.7.10", got)
		}
		for what, x := range map[string][2]any{"MAIL in TLS": r.MailTLS, "RCPT": r.Rcpt, "DATA": r.Data} {
			if got := reply(x); !strings.HasPrefix(got, "250 ") {
				t.Errorf("%s: %q, want 250", what, got)
			}
		}
		got := s.WaitMessages(t, "postmaster@"+testDomain, 1)[0]
		if !strings.Contains(string(got), "requiretls-smtplib") {
			t.Errorf("delivered message is not the one sent:\n%s", got)
		}
	})

	t.Run("smtpkit send --require-tls over STARTTLS", func(t *testing.T) {
		args := append(sendArgs(s, s.MX, "a@b.example", "postmaster@"+testDomain),
			"--require-tls", "--subject", "requiretls-send", "--body", "over TLS only", "-v")
		r := mustSmtpkit(t, 0, nil, nil, args...)
		if !strings.Contains(r.Stderr, "C: MAIL FROM:<a@b.example>") || !strings.Contains(r.Stderr, " REQUIRETLS\n") {
			t.Errorf("no MAIL with REQUIRETLS in the transcript:\n%s", r.Stderr)
		}
		msgs := s.WaitMessages(t, "postmaster@"+testDomain, 2)
		if !strings.Contains(string(msgs[0])+string(msgs[1]), "Subject: requiretls-send") {
			t.Errorf("the message sent with --require-tls did not arrive")
		}
		// A command line that cannot carry it is a usage error.
		mustSmtpkit(t, 2, nil, nil, append(sendArgs(s, s.MX, "a@b.example", "postmaster@"+testDomain),
			"--require-tls", "--tls", "none", "--body", "x")...)
	})
}

// TestRequireTLSQueued: a REQUIRETLS message submitted with `smtpkit send
// --require-tls` waits in the queue for a next hop that is down with its
// tag on disk, in `smtpkit queue show`, and after a restart; the copy for
// a verified next hop that does not offer REQUIRETLS (aiosmtpd) is not sent
// there but bounced with 5.7.30, and the DSN returns nothing of the
// message (RFC 8689 §5).
func TestRequireTLSQueued(t *testing.T) {
	// The routes name their hosts by address, so that is the name verified.
	cert, key := testcert.WriteFiles(t, testcert.New(t, "127.0.0.1"), t.TempDir())
	p := startAio(t, "--tls", cert, key)
	a := startSender(t, outConf{caFile: cert, routes: []outRoute{
		{domain: "down.example", host: freeAddr(t), tls: "verify"},
		{domain: "aio.example", host: p.addr, tls: "verify"},
	}})
	const subject = "requiretls-queued secret subject"
	args := append(sendArgs(a, a.Submission, outSender, "x@down.example", "y@aio.example"),
		"--require-tls", "--auth-user", outSender, "--subject", subject, "--body", "secret body")
	r := mustSmtpkit(t, 0, nil, []string{"SMTPKIT_PASSWORD=" + outPassword}, args...)
	m := regexp.MustCompile(`queued as (\S+)`).FindStringSubmatch(r.Stdout)
	if m == nil {
		t.Fatalf("no queue id in:\n%s", r.Stdout)
	}
	id := m[1]

	// The copy for aiosmtpd (TLS verified, no REQUIRETLS): bounced, redacted.
	dsn := string(a.WaitMessages(t, outSender, 1)[0])
	checkBounce(t, []byte(dsn), "y@aio.example", "5.7.30")
	for _, leak := range []string{subject, "secret body", "text/rfc822-headers"} {
		if strings.Contains(dsn, leak) {
			t.Errorf("the DSN of a REQUIRETLS message carries %q:\n%s", leak, dsn)
		}
	}
	if n := len(p.messages()); n != 0 {
		t.Errorf("%d messages reached aiosmtpd, which does not offer REQUIRETLS", n)
	}

	// The copy for down.example: deferred, tagged on disk and in queue show.
	waitLogCount(t, a, "delivery deferred", 1)
	envPath := filepath.Join(a.DataDir, "queue", "env", id+".json")
	// A small message is a journal record until the next checkpoint
	// writes its env file (within a second).
	eventually(t, "the deferred message's env file", func() bool {
		_, err := os.Stat(envPath)
		return err == nil
	})
	checkTagged := func(when string) {
		t.Helper()
		raw, err := os.ReadFile(envPath)
		if err != nil || !strings.Contains(string(raw), `"requiretls": true`) {
			t.Errorf("%s: envelope of %s (%v):\n%s", when, id, err, raw)
		}
		show := mustSmtpkit(t, 0, nil, nil, "queue", "show", "-config", a.ConfigPath, id)
		if !regexp.MustCompile(`(?m)^Flags: .*REQUIRETLS`).MatchString(show.Stdout) {
			t.Errorf("%s: queue show lacks the REQUIRETLS flag:\n%s", when, show.Stdout)
		}
	}
	checkTagged("before the restart")
	a.Restart(t)
	checkTagged("after the restart")
	if n := queued(t, a); n != 1 {
		t.Errorf("%d messages queued, want 1", n)
	}
}
