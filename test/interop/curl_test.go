package interop

import (
	"regexp"
	"strings"
	"testing"
)

func TestCurl(t *testing.T) {
	curl := Need(t, "curl")
	s := StartServer(t, ServerOptions{})
	s.AddUser(t, "user@test.example", "correct horse battery staple")
	s.AddUser(t, "tls@test.example", "another correct horse")

	// send uploads msg with curl to addr's smtp:// URL, with extra flags.
	send := func(t *testing.T, addr, from, to string, msg []byte, extra ...string) peerRun {
		host, resolve := resolveArg(addr)
		args := append([]string{"-sS", "-v", "smtp://" + host, "--resolve", resolve,
			"--mail-from", from, "--mail-rcpt", to, "--upload-file", writeMessage(t, msg),
			"--max-time", "20"}, extra...)
		return mustRun(t, nil, curl, args...)
	}

	t.Run("plain on mx", func(t *testing.T) {
		msg := testMessage("curl-plain")
		send(t, s.MX, "a@b.example", "user@test.example", msg)
		checkDelivered(t, s.WaitMessages(t, "user@test.example", 1)[0], msg, "a@b.example")
	})

	t.Run("STARTTLS required", func(t *testing.T) {
		msg := testMessage("curl-starttls")
		r := send(t, s.MX, "tls@b.example", "tls@test.example", msg, "--ssl-reqd", "--cacert", s.CertPath)
		if !strings.Contains(r.Stderr, "> STARTTLS") {
			t.Errorf("curl did not use STARTTLS:\n%s", r.Stderr)
		}
		checkTLSVersion(t, r.Stderr)
		checkDelivered(t, s.WaitMessages(t, "tls@test.example", 1)[0], msg, "tls@b.example")
	})

	t.Run("smtps HELP on submissions", func(t *testing.T) {
		host, resolve := resolveArg(s.Submissions)
		// Without --mail-rcpt, curl sends the custom command given by -X
		// after EHLO and prints the reply.
		r := mustRun(t, nil, curl, "-sS", "-v", "smtps://"+host, "--resolve", resolve,
			"--cacert", s.CertPath, "-X", "HELP", "--max-time", "20")
		checkTLSVersion(t, r.Stderr)
		if !strings.Contains(r.Stderr, "> EHLO ") || !regexp.MustCompile(`(?m)^< 250[ -]`).MatchString(r.Stderr) {
			t.Errorf("no EHLO exchange:\n%s", r.Stderr)
		}
		if !regexp.MustCompile(`(?m)^< 214[ -]`).MatchString(r.Stderr) {
			t.Errorf("HELP did not get 214:\n%s", r.Stderr)
		}
	})
}

// checkTLSVersion checks curl's verbose log for a TLS 1.2 or 1.3 session.
func checkTLSVersion(t *testing.T, verbose string) {
	t.Helper()
	if !regexp.MustCompile(`SSL connection using TLSv1\.[23] `).MatchString(verbose) {
		t.Errorf("no TLS 1.2 or 1.3 session in curl's log:\n%s", verbose)
	}
}
