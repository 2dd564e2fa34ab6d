package interop

import (
	"bytes"
	"regexp"
	"testing"
)

// swaksArgs are the arguments of every swaks run: STARTTLS required, the
// certificate verified against the server's self-signed one.
func swaksArgs(s *Server, addr, from, to string) []string {
	return []string{
		"--server", addr, "--from", from, "--to", to, "--helo", "client.b.example",
		"-tls", "--tls-verify", "--tls-ca-path", s.CertPath, "--tls-sni", testHostname,
		"--timeout", "20",
	}
}

// swaksData returns msg as a swaks --data file. swaks ends the data with
// CRLF "." CRLF itself, so the file leaves out the final CRLF.
func swaksData(t *testing.T, msg []byte) string {
	t.Helper()
	return "@" + writeMessage(t, bytes.TrimSuffix(msg, []byte("\r\n")))
}

func TestSwaks(t *testing.T) {
	swaks := Need(t, "swaks")
	s := StartServer(t, ServerOptions{})
	s.AddUser(t, "user@test.example", "correct horse battery staple")
	s.AddUser(t, "dots@test.example", "another correct horse")

	t.Run("STARTTLS on mx", func(t *testing.T) {
		msg := testMessage("swaks-tls")
		args := append(swaksArgs(s, s.MX, "a@b.example", "user@test.example"), "--data", swaksData(t, msg))
		r := mustRun(t, nil, swaks, args...)
		if !regexp.MustCompile(`=== TLS started with cipher TLSv1\.[23]:`).MatchString(r.Stdout) {
			t.Errorf("no TLS 1.2 or 1.3 session in the swaks transcript:\n%s", r.Stdout)
		}
		checkDelivered(t, s.WaitMessages(t, "user@test.example", 1)[0], msg, "a@b.example")
	})

	t.Run("pipelining", func(t *testing.T) {
		msg := testMessage("swaks-pipeline")
		args := append(swaksArgs(s, s.MX, "pipe@b.example", "postmaster@test.example"),
			"--pipeline", "--data", swaksData(t, msg))
		r := mustRun(t, nil, swaks, args...)
		// With PIPELINING swaks sends MAIL, RCPT and DATA before reading
		// a reply, so the transcript shows the three commands in a row.
		pipelined := regexp.MustCompile(`(?m)^ ~> MAIL FROM:.*\n ~> RCPT TO:.*\n ~> DATA`)
		if !pipelined.MatchString(r.Stdout) {
			t.Errorf("swaks did not pipeline MAIL, RCPT and DATA:\n%s", r.Stdout)
		}
		checkDelivered(t, s.WaitMessages(t, "postmaster@test.example", 1)[0], msg, "pipe@b.example")
	})

	t.Run("dot-stuffing round trip", func(t *testing.T) {
		// swaks stuffs the dot-only line to ".." on the wire; the server
		// must unstuff it and not take it for the end of the data.
		msg := []byte("Subject: dots\r\n\r\nbefore\r\n.\r\nafter\r\n..\r\n. \r\n")
		args := append(swaksArgs(s, s.MX, "dots@b.example", "dots@test.example"), "--data", swaksData(t, msg))
		r := mustRun(t, nil, swaks, args...)
		if !regexp.MustCompile(`(?m)^ ~> \.\.\r?$`).MatchString(r.Stdout) {
			t.Errorf("swaks did not send a stuffed dot line:\n%s", r.Stdout)
		}
		checkDelivered(t, s.WaitMessages(t, "dots@test.example", 1)[0], msg, "dots@b.example")
	})
}
