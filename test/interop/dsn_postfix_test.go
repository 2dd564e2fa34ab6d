package interop

// DSN (RFC 3461) relayed to Postfix as the next hop. Postfix offers DSN, so
// smtpkit passes RET, ENVID, NOTIFY and ORCPT on (§5.2) and sends no
// "relayed" notice itself (§6.2.1.2 is for a next hop without DSN).
// Postfix's smtpd puts the message on hold (check_sender_access
// static:HOLD), so it stays in Postfix's queue and postcat(1) shows what
// Postfix recorded: dsn_envid, dsn_ret, and per recipient the notify
// flags and dsn_orig_rcpt. Addresses: 127.16.6.0/24.

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"smtpkit/internal/client"
	"smtpkit/internal/sasl"
	"smtpkit/internal/smtp"
)

// startHoldPostfix starts the relay Postfix of postfix_relay_test.go on ip
// with every accepted message put on hold and the extra virtual mailboxes
// rcpts, and returns it and its config directory.
func startHoldPostfix(t *testing.T, ip string, rcpts ...string) (*relayPostfix, relayConfig) {
	t.Helper()
	postfix := Need(t, "postfix")
	saslpasswd2 := Need(t, "saslpasswd2")
	if os.Geteuid() != 0 {
		missing(t, "root (for a private Postfix instance)", errors.New("not root"))
	}
	c := writeRelayPostfixOn(t, saslpasswd2, ip, func(conf []byte) []byte {
		// HOLD is evaluated before permit_sasl_authenticated ends the list; it
		// does not decide, it only marks the message for the hold queue.
		return bytes.Replace(conf, []byte("smtpd_recipient_restrictions = permit_sasl_authenticated, reject\n"),
			[]byte("smtpd_recipient_restrictions = check_sender_access static:HOLD, permit_sasl_authenticated, reject\n"), 1)
	})
	vmailbox := relayRcpt + " " + relayDomain + "/bob/\n"
	for _, r := range rcpts {
		local, _, _ := strings.Cut(r, "@")
		vmailbox += r + " " + relayDomain + "/" + local + "/\n"
	}
	if err := os.WriteFile(filepath.Join(c.Conf, "vmailbox"), []byte(vmailbox), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &relayPostfix{addr: c.Addr, cert: c.Cert, mail: c.Mail, logs: runPostfix(t, postfix, c.Conf, c.Addr)}
	return p, c
}

// submitEnv submits msg with env (From is outSender) on s's submission
// port, every recipient accepted.
func submitEnv(t *testing.T, s *Server, msg []byte, env client.Envelope) {
	t.Helper()
	c := dialHello(t, s.Submission, "submitter.example")
	defer c.Close()
	if err := c.StartTLS(&tls.Config{ServerName: testHostname, RootCAs: rootsFromFile(t, s.CertPath)}); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", outSender, outPassword)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), outWait)
	defer cancel()
	env.From = outSender
	res, err := c.Send(ctx, env, bytes.NewReader(msg))
	if err != nil || res.Data != nil {
		t.Fatalf("submitting: %v / %v (rcpts %v)", err, res.Data, res.Rcpt)
	}
	c.Quit()
}

func TestDSNRelayPostfix(t *testing.T) {
	const (
		carol = "carol@" + relayDomain
		dave  = "dave@" + relayDomain
	)
	p, c := startHoldPostfix(t, "127.16.6.2", carol, dave)
	postcat := Need(t, "postcat")
	pw := filepath.Join(t.TempDir(), "relay.pw")
	if err := os.WriteFile(pw, []byte(relayPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := StartServer(t, ServerOptions{IP: "127.16.6.3", ExtraTOML: outConf{routes: []outRoute{{
		domain: relayDomain, host: p.addr, tls: "required", user: relayUser, pwFile: pw,
	}}}.toml()})
	a.AddUser(t, outSender, outPassword)

	env := client.Envelope{Ret: smtp.RetHdrs, EnvID: "pf dsn+1", To: []string{relayRcpt, carol, dave},
		DSN: []smtp.RcptDSN{
			{Notify: smtp.NotifySuccess | smtp.NotifyFailure, ORCPT: smtp.ORCPT{Type: "rfc822", Addr: "orig-bob@far.example"}},
			{Notify: smtp.NotifyNever, ORCPT: smtp.ORCPT{Type: "rfc822", Addr: "orig-carol@far.example"}},
			{}, // no NOTIFY, no ORCPT: Postfix must record none
		}}
	submitEnv(t, a, []byte("From: <"+outSender+">\r\nSubject: dsn to postfix\r\n\r\nhi\r\n"), env)

	var held []string
	eventually(t, "the message in Postfix's hold queue", func() bool {
		held, _ = filepath.Glob(filepath.Join(c.Queue, "hold", "*"))
		return len(held) == 1
	})
	eventually(t, "smtpkit's queue to empty", func() bool { return queued(t, a) == 0 })
	out, err := exec.Command(postcat, "-c", c.Conf, "-e", held[0]).CombinedOutput()
	if err != nil {
		t.Fatalf("postcat: %v\n%s", err, out)
	}
	t.Logf("postcat -e %s:\n%s", filepath.Base(held[0]), out)
	env2, rcpts := postcatEnvelope(string(out))
	if env2["envelope_id"] != "pf dsn+1" || env2["ret_flags"] != "2" { // Postfix's DSN_RET_HDRS
		t.Errorf("message attributes %v, want envelope_id=pf dsn+1 ret_flags=2", env2)
	}
	// Postfix's notify flags: NEVER 1, SUCCESS 2, FAILURE 4, DELAY 8. A
	// recipient without ORCPT gets Postfix's own rfc822;<recipient>.
	for _, w := range []struct{ rcpt, notify, orcpt string }{
		{relayRcpt, "6", "rfc822;orig-bob@far.example"},
		{carol, "1", "rfc822;orig-carol@far.example"},
		{dave, "", "rfc822;" + dave},
	} {
		got, ok := rcpts[w.rcpt]
		if !ok {
			t.Errorf("no recipient record for %s in %v", w.rcpt, rcpts)
			continue
		}
		if got["notify_flags"] != w.notify || got["dsn_orig_rcpt"] != w.orcpt {
			t.Errorf("%s: notify_flags=%q dsn_orig_rcpt=%q, want %q %q", w.rcpt, got["notify_flags"], got["dsn_orig_rcpt"], w.notify, w.orcpt)
		}
	}
	// Postfix took the NOTIFY=SUCCESS on: no "relayed" notice from us.
	if n := a.CountFiles(t, outSender, "new"); n != 0 {
		t.Errorf("%d notices to the sender; Postfix offers DSN and took NOTIFY itself", n)
	}
	if strings.Contains(a.Logs(), "DSN handed off") {
		t.Errorf("smtpkit sent a notice:\n%s", a.Logs())
	}
}

// postcatEnvelope reads `postcat -e` output: the named attributes before
// the sender record (the message's), and for each recipient record the
// named attributes since the previous recipient (Postfix writes them
// ahead of the recipient they belong to).
func postcatEnvelope(out string) (msg map[string]string, rcpts map[string]map[string]string) {
	msg, rcpts = map[string]string{}, map[string]map[string]string{}
	cur, sender := map[string]string{}, false
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if !ok {
			continue
		}
		switch k {
		case "named_attribute":
			if name, val, ok := strings.Cut(v, "="); ok {
				cur[name] = val
			}
		case "sender":
			msg, cur, sender = cur, map[string]string{}, true
		case "recipient":
			if sender {
				rcpts[v], cur = cur, map[string]string{}
			}
		}
	}
	return msg, rcpts
}
