package interop

// Postfix as the AUTH relay host: smtpkit's [[route]] with auth_user and
// auth_password_file delivers through a private Postfix instance whose
// smtpd requires STARTTLS and then SASL AUTH (Cyrus SASL, sasldb), and
// which delivers relayed.example into Maildirs with virtual(8). Wrong
// credentials keep the message queued in smtpkit (4.7.8), without a bounce.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"smtpkit/internal/client"
	"smtpkit/internal/sasl"
	"smtpkit/internal/smtp"
)

const (
	relayDomain   = "relayed.example"              // delivered by Postfix itself
	relayRcpt     = "bob@" + relayDomain           // its one virtual mailbox
	relayLogin    = "relayuser"                    // the sasldb user...
	relayRealm    = "relay.example"                // ...in this realm
	relayUser     = relayLogin + "@" + relayRealm  // the SASL identity smtpkit uses
	relayPassword = "relay secret, 42 chars or so" // in sasldb and in smtpkit's password file
	relayHost     = "relay.test.example"           // Postfix's myhostname and certificate name
)

// relayPostfix is a running private Postfix instance (see startRelayPostfix).
type relayPostfix struct {
	addr string      // smtpd's loopback address
	cert string      // its self-signed certificate (PEM)
	mail string      // virtual_mailbox_base
	logs *syncBuffer // master's stdout/stderr: maillog_file = /dev/stdout
}

// relayConfig fills the templates in testdata/postfix_relay.
type relayConfig struct {
	Addr, Conf, Queue, Data, Mail, SASLDir, SASLDB, Cert, Key string
	UID, GID                                                  int
}

// startRelayPostfix starts `postfix -c DIR start-fg` with smtpd on a free
// loopback port, requiring STARTTLS before AUTH and AUTH before any
// recipient, with relayUser/relayPassword in a sasldb. It needs root
// (master starts the daemons as mail_owner) and saslpasswd2 (sasl2-bin).
func startRelayPostfix(t *testing.T) *relayPostfix {
	t.Helper()
	postfix := Need(t, "postfix")
	saslpasswd2 := Need(t, "saslpasswd2")
	if os.Geteuid() != 0 {
		missing(t, "root (for a private Postfix instance)", errors.New("not root"))
	}
	c := writeRelayPostfix(t, saslpasswd2)
	return &relayPostfix{addr: c.Addr, cert: c.Cert, mail: c.Mail, logs: runPostfix(t, postfix, c.Conf, c.Addr)}
}

// runPostfix runs `postfix -c conf start-fg` (master in the foreground;
// the instances' maillog_file = /dev/stdout goes to the returned buffer)
// until the test ends, and waits until smtpd answers on addr. Its log is
// shown when the test fails.
func runPostfix(t *testing.T, postfix, conf, addr string) *syncBuffer {
	t.Helper()
	logs := &syncBuffer{}
	cmd := exec.Command(postfix, "-c", conf, "start-fg")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopRelayPostfix(postfix, conf, cmd, logs)
		if t.Failed() || testing.Verbose() {
			t.Logf("postfix logs:\n%s", logs.String())
		}
	})
	probeWaitListening(t, addr, logs)
	return logs
}

// writeRelayPostfixOn is writeRelayPostfix with smtpd on a free port of
// ip (a test's own range) and main.cf passed through edit.
func writeRelayPostfixOn(t *testing.T, saslpasswd2, ip string, edit func(mainCF []byte) []byte) relayConfig {
	t.Helper()
	c := writeRelayPostfix(t, saslpasswd2)
	c.Addr = freeAddrOn(t, ip)
	renderRelayTemplate(t, "master.cf", filepath.Join(c.Conf, "master.cf"), c)
	mainCF := filepath.Join(c.Conf, "main.cf")
	conf, err := os.ReadFile(mainCF)
	if err != nil {
		t.Fatal(err)
	}
	// smtpd listens on master.cf's address in the test's range.
	conf = bytes.Replace(conf, []byte("inet_interfaces = 127.0.0.1\n"), []byte("inet_interfaces = all\n"), 1)
	if err := os.WriteFile(mainCF, edit(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

// renderPostfixDir lays out a private instance from the templates in
// testdata/<templates> (main.cf, master.cf) rendered with data: conf,
// queue and data directories (data owned by the postfix user).
func renderPostfixDir(t *testing.T, templates, conf, queue, data string, values any) {
	t.Helper()
	for _, d := range []string{conf, queue, data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	uid, gid := relayPostfixIDs(t)
	if err := os.Chown(data, uid, gid); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"main.cf", "master.cf"} {
		tmpl := template.Must(template.ParseFiles(filepath.Join("testdata", templates, name)))
		var b bytes.Buffer
		if err := tmpl.Option("missingkey=error").Execute(&b, values); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(conf, name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// writeRelayPostfix lays out the instance in a new directory: config
// (rendered templates, the virtual mailbox map), sasldb, queue, data and
// mailbox directories, and a certificate for relayHost.
func writeRelayPostfix(t *testing.T, saslpasswd2 string) relayConfig {
	t.Helper()
	// Not t.TempDir (0700): the postfix user must walk into it.
	dir, err := os.MkdirTemp("", "smtpkit-postfix-relay-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	uid, gid := relayPostfixIDs(t)
	c := relayConfig{
		Addr: freeAddr(t), Conf: filepath.Join(dir, "conf"), Queue: filepath.Join(dir, "queue"),
		Data: filepath.Join(dir, "data"), Mail: filepath.Join(dir, "mail"),
		UID: uid, GID: gid,
	}
	// Debian's Postfix reads smtpd.conf from $config_directory/sasl whatever
	// cyrus_sasl_config_path says; main.cf names the same directory.
	c.SASLDir = filepath.Join(c.Conf, "sasl")
	c.SASLDB = filepath.Join(c.SASLDir, "sasldb2")
	for _, d := range []string{c.Conf, c.Queue, c.Data, c.Mail, c.SASLDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c.Cert, c.Key = probeCert(t, relayHost)

	// saslpasswd2 -p reads the password from stdin without prompting.
	r := runPeer(t, []byte(relayPassword), saslpasswd2, "-f", c.SASLDB, "-c", "-p", "-u", relayRealm, relayLogin)
	if r.Err != nil {
		t.Fatalf("saslpasswd2: %v\n%s%s", r.Err, r.Stdout, r.Stderr)
	}
	// smtpd runs as postfix: the sasldb is root's, readable by its group
	// (postfix-script warns about files in the config directory not owned
	// by root). data_directory and the mailboxes belong to postfix.
	if err := os.Chown(c.SASLDB, 0, gid); err != nil {
		t.Fatal(err)
	}
	os.Chmod(c.SASLDB, 0o640)
	for _, p := range []string{c.Data, c.Mail} {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	for name, dst := range map[string]string{
		"main.cf": filepath.Join(c.Conf, "main.cf"), "master.cf": filepath.Join(c.Conf, "master.cf"),
		"smtpd.conf": filepath.Join(c.SASLDir, "smtpd.conf"),
	} {
		renderRelayTemplate(t, name, dst, c)
	}
	vmailbox := relayRcpt + " " + relayDomain + "/bob/\n" // trailing slash: a Maildir
	if err := os.WriteFile(filepath.Join(c.Conf, "vmailbox"), []byte(vmailbox), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

// stopRelayPostfix runs `postfix stop` and waits for master to exit,
// killing it (by PID) after stopTimeout.
func stopRelayPostfix(postfix, conf string, master *exec.Cmd, logs *syncBuffer) {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	stop := exec.CommandContext(ctx, postfix, "-c", conf, "stop")
	stop.Stdout, stop.Stderr = logs, logs
	stop.Run()
	done := make(chan struct{})
	go func() { master.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(stopTimeout):
		master.Process.Kill()
		<-done
	}
}

// relayPostfixIDs returns the uid and gid of the postfix user.
func relayPostfixIDs(t *testing.T) (uid, gid int) {
	t.Helper()
	for _, id := range []struct {
		flag string
		dst  *int
	}{{"-u", &uid}, {"-g", &gid}} {
		r := runPeer(t, nil, "id", id.flag, "postfix")
		if r.Err != nil {
			missing(t, "the postfix user", r.Err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(r.Stdout))
		if err != nil {
			t.Fatalf("id %s postfix: %q: %v", id.flag, r.Stdout, err)
		}
		*id.dst = n
	}
	return uid, gid
}

// renderRelayTemplate executes testdata/postfix_relay/name into dst.
func renderRelayTemplate(t *testing.T, name, dst string, c relayConfig) {
	t.Helper()
	tmpl, err := template.ParseFiles(filepath.Join("testdata", "postfix_relay", name))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tmpl.Option("missingkey=error").Execute(&b, c); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// delivered returns the messages in the Maildir new/ of rcpt that contain
// marker.
func (p *relayPostfix) delivered(t *testing.T, rcpt, marker string) [][]byte {
	t.Helper()
	local, domain, _ := strings.Cut(rcpt, "@")
	dir := filepath.Join(p.mail, domain, local, "new")
	var out [][]byte
	for _, name := range listFiles(t, dir) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil && bytes.Contains(b, []byte(marker)) {
			out = append(out, b)
		}
	}
	return out
}

// relaySender starts smtpkit with a route for relayDomain to p, TLS
// required, authenticating as relayUser with password (in a file).
func relaySender(t *testing.T, p *relayPostfix, password string) *Server {
	t.Helper()
	pwFile := filepath.Join(t.TempDir(), "relay.pw")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return startSender(t, outConf{routes: []outRoute{{
		domain: relayDomain, host: p.addr, tls: "required", user: relayUser, pwFile: pwFile,
	}}})
}

func TestPostfixRelay(t *testing.T) {
	p := startRelayPostfix(t)

	t.Run("AUTH required by Postfix", func(t *testing.T) { relayNeedsAuth(t, p) })

	t.Run("delivered after AUTH", func(t *testing.T) {
		a := relaySender(t, p, relayPassword)
		msg := testMessage("postfix-relay-ok")
		outSubmit(t, a, msg, relayRcpt)
		eventually(t, "the message in Postfix's virtual mailbox", func() bool {
			return len(p.delivered(t, relayRcpt, "postfix-relay-ok")) >= 1
		})
		eventually(t, "smtpkit's queue to empty", func() bool { return queued(t, a) == 0 })
		got := p.delivered(t, relayRcpt, "postfix-relay-ok")
		if len(got) != 1 {
			t.Fatalf("%d copies delivered, want 1", len(got))
		}
		checkRelayed(t, got[0], msg)
		// smtpd logs the client's SASL identity on the line that queues it.
		eventually(t, "the SASL login in Postfix's log", func() bool {
			return strings.Contains(p.logs.String(), "sasl_method=PLAIN, sasl_username="+relayUser)
		})
		if n := a.CountFiles(t, outSender, "new"); n != 0 {
			t.Errorf("%d bounces for a delivered message", n)
		}
	})

	t.Run("wrong password stays queued", func(t *testing.T) {
		before := strings.Count(p.logs.String(), "SASL PLAIN authentication failed")
		a := relaySender(t, p, "not the relay password")
		outSubmit(t, a, testMessage("postfix-relay-badpw"), relayRcpt)
		waitLogCount(t, a, "delivery deferred", 2) // the first attempt and a retry
		eventually(t, "Postfix to log both failed logins", func() bool {
			return strings.Count(p.logs.String(), "SASL PLAIN authentication failed") >= before+2
		})
		list := relayQueueList(t, a)
		if len(list) != 1 || len(list[0].Recipients) != 1 {
			t.Fatalf("queue: %+v, want one message for one recipient", list)
		}
		r := list[0].Recipients[0]
		if r.Addr != relayRcpt || r.State != "deferred" || r.Status != "4.7.8" || r.Attempts < 2 {
			t.Errorf("recipient %+v, want deferred with 4.7.8 after 2+ attempts", r)
		}
		if !strings.Contains(r.LastReply, "535") {
			t.Errorf("last reply %q does not quote Postfix's 535", r.LastReply)
		}
		if n := len(p.delivered(t, relayRcpt, "postfix-relay-badpw")); n != 0 {
			t.Errorf("%d messages delivered with a wrong password", n)
		}
		if n := a.CountFiles(t, outSender, "new"); n != 0 {
			t.Errorf("%d bounces for wrong relay credentials", n)
		}
	})
}

// relayNeedsAuth checks the relay host's policy with smtpkit's client: no
// AUTH before STARTTLS, and no recipient accepted without AUTH — so the
// delivery above proves that smtpkit authenticated.
func relayNeedsAuth(t *testing.T, p *relayPostfix) {
	roots := rootsFromFile(t, p.cert)
	c := dialHello(t, p.addr, "anonymous.example")
	defer c.Close()
	if mechs, ok := c.Ext("AUTH"); ok {
		t.Errorf("AUTH %q offered before STARTTLS", mechs)
	}
	if err := c.StartTLS(&tls.Config{ServerName: relayHost, RootCAs: roots}); err != nil {
		t.Fatal(err)
	}
	if mechs, _ := c.Ext("AUTH"); !strings.Contains(mechs, "PLAIN") {
		t.Errorf("AUTH after STARTTLS: %q, want PLAIN", mechs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), outWait)
	defer cancel()
	res, err := c.Send(ctx, client.Envelope{From: "x@anonymous.example", To: []string{relayRcpt}},
		bytes.NewReader(testMessage("postfix-relay-anon")))
	if err != nil {
		t.Fatal(err)
	}
	var se *smtp.Error
	if !errors.As(res.Rcpt[0], &se) || !se.Permanent() {
		t.Errorf("RCPT without AUTH: %v, want a 5xx refusal", res.Rcpt[0])
	}
	// A wrong password is refused with 535 5.7.8 (RFC 4954 §6).
	err = c.Auth(sasl.NewPlainClient("", relayUser, "wrong"))
	if !errors.As(err, &se) || se.Reply.Code != 535 {
		t.Errorf("AUTH with a wrong password: %v, want 535", err)
	}
	c.Quit()
}

// checkRelayed checks a message Postfix's virtual(8) wrote: LF line ends
// (the Maildir is in UNIX format), Postfix's own trace fields on top —
// Return-Path, X-Original-To, Delivered-To, its Received showing an
// authenticated TLS session (ESMTPSA) — then smtpkit's Received, then sent
// byte for byte.
func checkRelayed(t *testing.T, got, sent []byte) {
	t.Helper()
	want := bytes.ReplaceAll(sent, []byte("\r\n"), []byte("\n"))
	if !bytes.HasSuffix(got, want) {
		t.Fatalf("message changed on the way:\n got %q\nwant suffix %q", got, want)
	}
	trace := string(got[:len(got)-len(want)])
	fields := relayTraceFields(trace)
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i], _, _ = strings.Cut(f, ":")
	}
	if strings.Join(names, ",") != "Return-Path,X-Original-To,Delivered-To,Received,Received" {
		t.Fatalf("trace fields %q, want Return-Path, X-Original-To, Delivered-To and two Received:\n%s", names, trace)
	}
	for i, want := range []string{"Return-Path: <" + outSender + ">", "X-Original-To: " + relayRcpt, "Delivered-To: " + relayRcpt,
		"by " + relayHost + " (Postfix) with ESMTPSA", "by " + testHostname + " (smtpkit) with ESMTPSA"} {
		if !strings.Contains(fields[i], want) {
			t.Errorf("trace field %d lacks %q:\n%s", i, want, fields[i])
		}
	}
}

// relayTraceFields splits a header block (LF line ends) into fields,
// joining folded continuation lines (RFC 5322 §2.2.3).
func relayTraceFields(block string) []string {
	var fields []string
	for _, line := range strings.SplitAfter(block, "\n") {
		switch {
		case line == "":
		case (line[0] == ' ' || line[0] == '\t') && len(fields) > 0:
			fields[len(fields)-1] += line
		default:
			fields = append(fields, line)
		}
	}
	return fields
}

// relayQueueEntry is the part of `smtpkit queue list -json` checked here.
type relayQueueEntry struct {
	ID         string `json:"id"`
	Recipients []struct {
		Addr      string `json:"addr"`
		State     string `json:"state"`
		Attempts  int    `json:"attempts"`
		Status    string `json:"status"`
		LastReply string `json:"last_reply"`
	} `json:"recipients"`
}

// relayQueueList runs `smtpkit queue list -json` against s.
func relayQueueList(t *testing.T, s *Server) []relayQueueEntry {
	t.Helper()
	r := runPeer(t, nil, s.bin, "queue", "list", "-json", "-config", s.ConfigPath)
	if r.Err != nil {
		t.Fatalf("smtpkit queue list: %v\n%s%s", r.Err, r.Stdout, r.Stderr)
	}
	var list []relayQueueEntry
	if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil {
		t.Fatalf("queue list -json: %v\n%s", err, r.Stdout)
	}
	return list
}
