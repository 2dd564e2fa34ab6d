package interop

// send_test.go: `smtpkit send` and `smtpkit sendmail` deliver into our own
// server (mx with STARTTLS, submission with each AUTH mechanism, implicit
// TLS) and into Postfix's smtp-sink; every delivered message is checked
// byte for byte, or parsed back field by field when it was composed.

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cmdRun is one run of the smtpkit binary.
type cmdRun struct {
	Stdout, Stderr string
	Code           int
}

// runSmtpkit runs the built binary with stdin and extra environment
// variables, bounded by peerTimeout.
func runSmtpkit(t *testing.T, stdin []byte, env []string, args ...string) cmdRun {
	t.Helper()
	bin, err := smtpkitBinary.build()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	r := cmdRun{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("smtpkit %s: still running after %v\n%s%s", strings.Join(args, " "), peerTimeout, r.Stdout, r.Stderr)
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return r
}

// mustSmtpkit is runSmtpkit that wants exit code want.
func mustSmtpkit(t *testing.T, want int, stdin []byte, env []string, args ...string) cmdRun {
	t.Helper()
	r := runSmtpkit(t, stdin, env, args...)
	if r.Code != want {
		t.Fatalf("smtpkit %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s",
			strings.Join(args, " "), r.Code, want, r.Stdout, r.Stderr)
	}
	return r
}

// sendArgs are the arguments of a `smtpkit send` to addr with STARTTLS
// verified against the server's self-signed certificate.
func sendArgs(s *Server, addr, from string, to ...string) []string {
	args := []string{"send", "--server", addr, "--from", from, "--ca", s.CertPath,
		"--servername", testHostname, "--ehlo", "client.b.example", "--timeout", "20s"}
	for _, r := range to {
		args = append(args, "--to", r)
	}
	return args
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSendData(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	const pw = "correct horse battery staple"
	s.AddUser(t, "user@test.example", pw)
	pwFile := writeFile(t, "pw", []byte(pw+"\n"))

	t.Run("STARTTLS on mx, --data file", func(t *testing.T) {
		msg := testMessage("send-mx")
		r := mustSmtpkit(t, 0, nil, nil, append(sendArgs(s, s.MX, "a@b.example", "user@test.example"), "--data", writeMessage(t, msg))...)
		if !strings.Contains(r.Stdout, "with TLS 1.3") || !strings.Contains(r.Stdout, "<user@test.example>: accepted") ||
			!strings.Contains(r.Stdout, "message accepted: 250") {
			t.Errorf("progress output:\n%s", r.Stdout)
		}
		checkDelivered(t, s.WaitMessages(t, "user@test.example", 1)[0], msg, "a@b.example")
	})

	t.Run("--insecure, --data from stdin, -v", func(t *testing.T) {
		msg := testMessage("send-insecure")
		args := []string{"send", "--server", s.MX, "--from", "a@b.example", "--to", "user@test.example",
			"--insecure", "--data", "-", "-v"}
		r := mustSmtpkit(t, 0, msg, nil, args...)
		if !strings.Contains(r.Stderr, "C: STARTTLS") || !strings.Contains(r.Stderr, "C: <message data") {
			t.Errorf("no transcript on stderr:\n%s", r.Stderr)
		}
		checkDelivered(t, s.WaitMessages(t, "user@test.example", 2)[1], msg, "a@b.example")
	})

	for i, mech := range []string{"plain", "login", "scram-sha-256"} {
		t.Run("submission AUTH "+mech, func(t *testing.T) {
			msg := testMessage("send-auth-" + mech)
			args := append(sendArgs(s, s.Submission, "user@test.example", "user@test.example"),
				"--auth-user", "user@test.example", "--auth-mech", mech, "--password-file", pwFile, "-v", "--data", writeMessage(t, msg))
			r := mustSmtpkit(t, 0, nil, nil, args...)
			if !strings.Contains(r.Stdout, "with "+strings.ToUpper(mech)) {
				t.Errorf("progress output:\n%s", r.Stdout)
			}
			if strings.Contains(r.Stderr, pw) || strings.Contains(r.Stderr, base64.StdEncoding.EncodeToString([]byte("\x00user@test.example\x00"+pw))) {
				t.Errorf("transcript shows the password:\n%s", r.Stderr)
			}
			checkDelivered(t, s.WaitMessages(t, "user@test.example", 3+i)[2+i], msg, "user@test.example")
		})
	}

	t.Run("implicit TLS on submissions, password from the environment, best mechanism", func(t *testing.T) {
		msg := testMessage("send-implicit")
		args := append(sendArgs(s, s.Submissions, "user@test.example", "user@test.example"),
			"--tls", "implicit", "--auth-user", "user@test.example", "--data", writeMessage(t, msg))
		r := mustSmtpkit(t, 0, nil, []string{"SMTPKIT_PASSWORD=" + pw}, args...)
		// Inside TLS the best is SCRAM-SHA-256-PLUS, bound to the channel
		// (tls-exporter on this TLS 1.3 connection).
		if !strings.Contains(r.Stdout, "with SCRAM-SHA-256-PLUS") {
			t.Errorf("did not pick SCRAM-SHA-256-PLUS:\n%s", r.Stdout)
		}
		checkDelivered(t, s.WaitMessages(t, "user@test.example", 6)[5], msg, "user@test.example")
	})

	t.Run("wrong password exits 4", func(t *testing.T) {
		args := append(sendArgs(s, s.Submission, "user@test.example", "user@test.example"),
			"--auth-user", "user@test.example", "--data", writeMessage(t, testMessage("x")))
		mustSmtpkit(t, 4, nil, []string{"SMTPKIT_PASSWORD=wrong"}, args...)
	})

	t.Run("unverifiable certificate exits 3", func(t *testing.T) {
		args := []string{"send", "--server", s.MX, "--from", "a@b.example", "--to", "user@test.example",
			"--servername", testHostname, "--data", writeMessage(t, testMessage("x"))}
		r := mustSmtpkit(t, 3, nil, nil, args...)
		if !strings.Contains(r.Stderr, "certificate") {
			t.Errorf("stderr does not name the certificate:\n%s", r.Stderr)
		}
	})

	t.Run("refused recipient exits 1, the others get the message", func(t *testing.T) {
		msg := testMessage("send-partial")
		r := mustSmtpkit(t, 1, nil, nil, append(sendArgs(s, s.MX, "a@b.example", "nobody@test.example", "user@test.example"),
			"--data", writeMessage(t, msg))...)
		if !strings.Contains(r.Stdout, "<nobody@test.example>: refused: 550 5.1.1") {
			t.Errorf("progress output:\n%s", r.Stdout)
		}
		checkDelivered(t, s.WaitMessages(t, "user@test.example", 7)[6], msg, "a@b.example")
	})

	t.Run("usage error exits 2", func(t *testing.T) {
		mustSmtpkit(t, 2, nil, nil, "send", "--server", s.MX, "--from", "a@b.example")
	})
}

func TestSendCompose(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	s.AddUser(t, "user@test.example", "pw pw pw pw pw")
	s.AddUser(t, "carol@test.example", "pw pw pw pw pw")
	s.AddUser(t, "dave@test.example", "pw pw pw pw pw")
	binary := make([]byte, 5000)
	for i := range binary {
		binary[i] = byte(i*31 + i/7)
	}
	dir := t.TempDir()
	files := map[string][]byte{"image.png": binary, "Überblick März.txt": []byte("Grüße\n"), "no-extension": {0, 1, 2, 3}}
	var args []string
	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--attach", path)
	}
	subject := "Grüße aus Köln: " + strings.Repeat("a long subject ", 8)
	body := "Hello Wörld,\n.\n" + strings.Repeat("x", 1200) + "\nend\n"
	args = append(sendArgs(s, s.MX, "Jörg Müller <a@b.example>", "User <user@test.example>"),
		append(args, "--cc", "carol@test.example", "--bcc", "dave@test.example", "--subject", subject,
			"--body", body, "--header", "X-Test: send compose")...)
	mustSmtpkit(t, 0, nil, nil, args...)

	for _, rcpt := range []string{"user@test.example", "carol@test.example", "dave@test.example"} {
		raw := StripTrace(s.WaitMessages(t, rcpt, 1)[0])
		if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
			t.Errorf("%s: bare LF in the delivered message", rcpt)
		}
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		checkComposedHeader(t, m, subject)
		checkComposedBody(t, m, strings.ReplaceAll(body, "\n", "\r\n"), files)
	}
}

func checkComposedHeader(t *testing.T, m *mail.Message, subject string) {
	t.Helper()
	dec := new(mime.WordDecoder)
	if got, err := dec.DecodeHeader(m.Header.Get("Subject")); err != nil || got != subject {
		t.Errorf("Subject %q (%v), want %q", got, err, subject)
	}
	from, err := m.Header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != "Jörg Müller" || from[0].Address != "a@b.example" {
		t.Errorf("From %v %v", from, err)
	}
	if to := m.Header.Get("To"); to != `"User" <user@test.example>` {
		t.Errorf("To %q", to)
	}
	if cc := m.Header.Get("Cc"); cc != "<carol@test.example>" {
		t.Errorf("Cc %q", cc)
	}
	if m.Header.Get("Bcc") != "" {
		t.Error("Bcc in the header")
	}
	if id := m.Header.Get("Message-Id"); !strings.HasSuffix(id, "@b.example>") {
		t.Errorf("Message-ID %q", id)
	}
	if _, err := m.Header.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	if m.Header.Get("X-Test") != "send compose" || m.Header.Get("Mime-Version") != "1.0" {
		t.Errorf("X-Test %q, MIME-Version %q", m.Header.Get("X-Test"), m.Header.Get("Mime-Version"))
	}
}

func checkComposedBody(t *testing.T, m *mail.Message, body string, files map[string][]byte) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("Content-Type %q: %v", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	text, err := mr.NextPart() // decodes quoted-printable
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(text); string(b) != body {
		t.Errorf("text part %q, want %q", b, body)
	}
	seen := 0
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		want, ok := files[p.FileName()]
		if !ok {
			t.Errorf("unexpected attachment %q", p.FileName())
			continue
		}
		got, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, p))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("attachment %q: %d octets (%v), want %d", p.FileName(), len(got), err, len(want))
		}
		seen++
	}
	if seen != len(files) {
		t.Errorf("%d attachments, want %d", seen, len(files))
	}
}

func TestSendmail(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	for _, u := range []string{"user", "carol", "dave", "erin"} {
		s.AddUser(t, u+"@test.example", "pw pw pw pw pw")
	}
	sendmail := func(t *testing.T, want int, stdin string, args ...string) cmdRun {
		t.Helper()
		return mustSmtpkit(t, want, []byte(stdin), nil, append([]string{"sendmail", "-config", s.ConfigPath}, args...)...)
	}
	header := "From: Alice <alice@b.example>\nDate: Mon, 02 Mar 2026 10:00:00 +0000\nMessage-ID: <sm@b.example>\n"

	t.Run("-t: To, Cc and Bcc, Bcc removed, LF to CRLF", func(t *testing.T) {
		in := header + "To: user@test.example\nCc: Carol <carol@test.example>\nBcc: dave@test.example\nSubject: -t\n\nline\n..two\n"
		sendmail(t, 0, in, "-t", "-f", "alice@b.example", "erin@test.example")
		want := strings.ReplaceAll(strings.Replace(in, "Bcc: dave@test.example\n", "", 1), "\n", "\r\n")
		for _, rcpt := range []string{"user@test.example", "carol@test.example", "dave@test.example", "erin@test.example"} {
			checkDelivered(t, s.WaitMessages(t, rcpt, 1)[0], []byte(want), "alice@b.example")
		}
	})

	t.Run("recipient arguments, a dot line ends the message", func(t *testing.T) {
		in := header + "Subject: dot\n\nbefore\n.\nafter\n"
		r := sendmail(t, 0, in, "-v", "-f", "alice@b.example", "user@test.example")
		// The local mx listener offers STARTTLS; sendmail trusts the
		// server's generated certificate for its hostname.
		if !strings.Contains(r.Stderr, "C: STARTTLS") || !strings.Contains(r.Stderr, "with TLS 1.3") {
			t.Errorf("sendmail did not use STARTTLS:\n%s", r.Stderr)
		}
		want := strings.ReplaceAll(header+"Subject: dot\n\nbefore\n", "\n", "\r\n")
		checkDelivered(t, s.WaitMessages(t, "user@test.example", 2)[1], []byte(want), "alice@b.example")
	})

	t.Run("-i: a dot line is data", func(t *testing.T) {
		in := header + "Subject: -i\n\nbefore\n.\nafter\n"
		sendmail(t, 0, in, "-i", "-f", "alice@b.example", "--", "user@test.example")
		checkDelivered(t, s.WaitMessages(t, "user@test.example", 3)[2], []byte(strings.ReplaceAll(in, "\n", "\r\n")), "alice@b.example")
	})

	t.Run("-oi, -F: From, Date and Message-ID added", func(t *testing.T) {
		sendmail(t, 0, "Subject: bare\n\n.\nbody\n", "-oi", "-fcron@b.example", "-F", "Cron Daemon", "carol@test.example")
		raw := StripTrace(s.WaitMessages(t, "carol@test.example", 2)[1])
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if from := m.Header.Get("From"); from != `"Cron Daemon" <cron@b.example>` {
			t.Errorf("From %q", from)
		}
		if _, err := m.Header.Date(); err != nil || !strings.HasSuffix(m.Header.Get("Message-Id"), "@b.example>") {
			t.Errorf("Date (%v) or Message-ID %q", err, m.Header.Get("Message-Id"))
		}
		if b, _ := io.ReadAll(m.Body); string(b) != ".\r\nbody\r\n" {
			t.Errorf("body %q", b)
		}
	})

	// issue #19: names without a domain beside addresses, and in angle
	// brackets, as scripts write them; qualified in envelope and header.
	t.Run("-t: local names get the local domain", func(t *testing.T) {
		in := "From: Alice <alice@b.example>\nTo: dave, erin@test.example\nCc: Carol <carol>\nSubject: local names\n\nhi\n"
		sendmail(t, 0, in, "-t", "-f", "alice@b.example")
		for rcpt, n := range map[string]int{"dave@test.example": 2, "erin@test.example": 2, "carol@test.example": 3} {
			raw := StripTrace(s.WaitMessages(t, rcpt, n)[n-1])
			m, err := mail.ReadMessage(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			if to, cc := m.Header.Get("To"), m.Header.Get("Cc"); to != "<dave@test.example>, <erin@test.example>" || cc != `"Carol" <carol@test.example>` {
				t.Errorf("%s: To %q, Cc %q", rcpt, to, cc)
			}
		}
	})

	t.Run("exit codes", func(t *testing.T) {
		sendmail(t, 67, header+"\nx\n", "-f", "alice@b.example", "nobody@test.example")
		r := sendmail(t, 67, header+"\nx\n", "-f", "alice@b.example", "someone@remote.example")
		if !strings.Contains(r.Stderr, "5.7.1") {
			t.Errorf("relaying refusal not reported:\n%s", r.Stderr)
		}
		sendmail(t, 64, header+"\nx\n")
		sendmail(t, 64, header+"\nx\n", "-bs")
		sendmail(t, 65, "To: <broken\n\nx\n", "-t")
		mustSmtpkit(t, 78, []byte("x\n"), nil, "sendmail", "-config", writeFile(t, "bad.toml", []byte("nonsense = 1\n")), "user@test.example")
	})
}

// startSinkDump runs Postfix's smtp-sink on a free loopback port, dumping
// each message into a file of the returned directory.
func startSinkDump(t *testing.T) (addr, dir string) {
	t.Helper()
	bin, err := exec.LookPath("smtp-sink")
	if err != nil {
		bin = Need(t, "/usr/sbin/smtp-sink")
	}
	// smtp-sink drops to nobody when run as root; nobody must be able to
	// create files in the dump directory (and reach it).
	dir, err = os.MkdirTemp("", "smtpkit-sink-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	addr = freeAddr(t)
	args := []string{"-d", filepath.Join(dir, "msg."), addr, "10"}
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "nobody"}, args...)
	}
	cmd := exec.Command(bin, args...)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(pollTimeout); ; {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			nc.Close()
			return addr, dir
		}
		if time.Now().After(deadline) {
			t.Fatalf("smtp-sink not listening on %s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(pollStep) // polling a listener, bounded above
	}
}

// sinkMessage waits for the only dump file in dir and returns the message
// in it: after smtp-sink's own fields, which end with its three-line
// Received header, and without the empty line it appends. smtp-sink
// writes lines ending in LF.
func sinkMessage(t *testing.T, dir string) []byte {
	t.Helper()
	var data []byte
	for deadline := time.Now().Add(pollTimeout); ; {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) == 1 {
			if data, err = os.ReadFile(filepath.Join(dir, entries[0].Name())); err == nil && bytes.HasSuffix(data, []byte("\n\n")) {
				break
			}
		}
		if len(entries) > 1 || time.Now().After(deadline) {
			t.Fatalf("smtp-sink dump directory holds %d files, want 1", len(entries))
		}
		time.Sleep(pollStep) // polling a filesystem condition, bounded above
	}
	i := bytes.Index(data, []byte("\nReceived: "))
	if i < 0 {
		t.Fatalf("no Received header in the dump:\n%s", data)
	}
	rest := afterLine(data[i+1:])
	for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
		rest = afterLine(rest)
	}
	return bytes.TrimSuffix(rest, []byte("\n"))
}

func TestSendSmtpSink(t *testing.T) {
	msg := testMessage("sink")
	lf := bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n"))

	t.Run("send --data", func(t *testing.T) {
		addr, dir := startSinkDump(t)
		mustSmtpkit(t, 0, nil, nil, "send", "--server", addr, "--tls", "none", "--from", "a@b.example",
			"--to", "x@y.example", "--data", writeMessage(t, msg))
		if got := sinkMessage(t, dir); !bytes.Equal(got, lf) {
			t.Errorf("smtp-sink got\n%q\nwant\n%q", got, lf)
		}
	})

	t.Run("sendmail -t to an mx listener without TLS", func(t *testing.T) {
		addr, dir := startSinkDump(t)
		conf := "hostname = \"client.b.example\"\ndata_dir = " + `"` + t.TempDir() + `"` +
			"\n[[domain]]\nname = \"b.example\"\n[[listener]]\naddress = \"" + addr + "\"\nrole = \"mx\"\ntls = \"none\"\n"
		in := bytes.Replace(lf, []byte("To: <user@test.example>\n"), []byte("To: <x@y.example>\nBcc: z@y.example\n"), 1)
		mustSmtpkit(t, 0, in, nil, "sendmail", "-config", writeFile(t, "sink.toml", []byte(conf)), "-t", "-i", "-f", "a@b.example")
		want := bytes.Replace(lf, []byte("To: <user@test.example>\n"), []byte("To: <x@y.example>\n"), 1)
		if got := sinkMessage(t, dir); !bytes.Equal(got, want) {
			t.Errorf("smtp-sink got\n%q\nwant\n%q", got, want)
		}
	})
}
