package interop

// LMTP (RFC 2033) to Dovecot: smtpkit's mx takes a message for five
// mailboxes of a domain whose final delivery is Dovecot's LMTP
// (dovecot-lmtpd, its own instance on 127.17.4.0/24: the domain over a
// Unix socket, one account over TCP, one account kept in smtpkit's
// Maildir). The message goes into the queue (durable before the 250) and
// from there to Dovecot, whose replies after the data differ per
// recipient: delivered (alice, NOTIFY=SUCCESS: a "delivered" notice),
// over quota for good (bob: 552 5.2.2, bounced), over quota for now
// (carol, quota_full_tempfail: 452 4.2.2, deferred), unknown to Dovecot
// (dave: 550 5.1.1 at RCPT, bounced). What arrived is read in Dovecot's
// Maildirs.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/client"
	"smtpkit/internal/pgtest"
	"smtpkit/internal/smtp"
)

// lmtpDovecotIP is Dovecot's TCP LMTP listener; smtpkit listens on .21.
const (
	lmtpDovecotIP = "127.17.4.20"
	lmtpServerIP  = "127.17.4.21"
	lmtpDomain    = "mbox.example"
)

// dovecotLMTP is a running Dovecot with an LMTP socket and a TCP listener.
type dovecotLMTP struct {
	dir    string // base of the instance: run/, mail/, dovecot.log
	socket string // the LMTP Unix socket
	tcp    string // host:port of the TCP LMTP listener
}

// mailbox lists the messages in new/ of user's Dovecot Maildir.
func (d *dovecotLMTP) mailbox(t *testing.T, user string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, name := range listFiles(t, filepath.Join(d.dir, "mail", user, "Maildir", "new")) {
		b, err := os.ReadFile(filepath.Join(d.dir, "mail", user, "Maildir", "new", name))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// startDovecotLMTP runs Dovecot (protocols = lmtp) with users alice (no
// quota), bob (1 KiB quota) and carol (1 KiB quota, quota_full_tempfail);
// every other user is unknown.
func startDovecotLMTP(t *testing.T) *dovecotLMTP {
	t.Helper()
	dovecot := Need(t, "dovecot")
	if _, err := os.Stat("/usr/lib/dovecot/lmtp"); err != nil {
		missing(t, "dovecot-lmtpd", err)
	}
	dir, err := os.MkdirTemp("", "smtpkit-lmtp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mail := filepath.Join(dir, "mail")
	if err := os.Mkdir(mail, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(mail, dovecotUID, dovecotUID); err != nil {
		t.Fatal(err)
	}
	// passwd-file: user:password:uid:gid:gecos:home:shell:extra fields.
	users := ""
	for _, u := range []struct{ name, extra string }{
		{"alice", ""},
		{"bob", "userdb_quota_rule=*:storage=1K"},
		{"carol", "userdb_quota_rule=*:storage=1K userdb_quota_full_tempfail=yes"},
	} {
		users += fmt.Sprintf("%[1]s@%[2]s::%[3]d:%[3]d::%[4]s/%[1]s::%[5]s\n", u.name, lmtpDomain, dovecotUID, mail, u.extra)
	}
	if err := os.WriteFile(filepath.Join(dir, "users"), []byte(users), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", lmtpDovecotIP+":0") // a free port, released for Dovecot
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols = lmtp
listen = %[2]s
ssl = no
mail_location = maildir:~/Maildir:INBOX=~/Maildir
mail_home = %[3]s/%%n
mail_plugins = quota
lmtp_save_to_detail_mailbox = no
lmtp_rcpt_check_quota = no
passdb {
  driver = passwd-file
  args = username_format=%%u %[1]s/users
}
userdb {
  driver = passwd-file
  args = username_format=%%u %[1]s/users
}
service lmtp {
  unix_listener lmtp {
    mode = 0666
  }
  inet_listener lmtp {
    address = %[2]s
    port = %[4]d
  }
}
plugin {
  quota = maildir:User quota
}
`, dir, lmtpDovecotIP, mail, port)
	t.Cleanup(runDovecot(t, dovecot, dir, conf, "dovecot"))
	d := &dovecotLMTP{dir: dir, socket: filepath.Join(dir, "run", "lmtp"), tcp: fmt.Sprintf("%s:%d", lmtpDovecotIP, port)}
	eventually(t, "Dovecot's LMTP listeners", func() bool {
		for _, a := range [][2]string{{"unix", d.socket}, {"tcp", d.tcp}} {
			c, err := net.DialTimeout(a[0], a[1], time.Second)
			if err != nil {
				return false
			}
			c.Close()
		}
		return true
	})
	return d
}

// TestLMTPDovecot: per-recipient LMTP replies mapped onto each
// recipient's state, through the queue (see the file comment).
//
// It runs on both queue back-ends: the files, and cluster mode (the
// queue and the accounts in a throwaway PostgreSQL on 127.17.4.3), where
// the LMTP hand-off is made from the shared queue.
func TestLMTPDovecot(t *testing.T) {
	t.Run("files", func(t *testing.T) { lmtpDovecot(t, false) })
	t.Run("postgres", func(t *testing.T) { lmtpDovecot(t, true) })
}

func lmtpDovecot(t *testing.T, cluster bool) {
	needAiosmtpd(t) // dsn_peer.py parses the notices
	d := startDovecotLMTP(t)
	extra := fmt.Sprintf(`[[domain]]
name = %q
lmtp = "unix:%s"
lmtp_accounts = { carol = %q, keep = "maildir" }
`, lmtpDomain, d.socket, d.tcp)
	var pg *pgtest.Server
	if cluster {
		pg = pgtest.Start(t, pgtest.Options{Addr: "127.17.4.3:0"})
		extra += fmt.Sprintf("\n[cluster]\ndatabase = %q\nnode = \"lmtp1\"\n", pg.DSN())
	}
	s := StartServer(t, ServerOptions{IP: lmtpServerIP, ExtraTOML: extra})
	s.AddUser(t, outSender, outPassword)
	rcpts := []string{"alice", "bob", "carol", "dave", "keep"}
	for i, r := range rcpts {
		rcpts[i] = r + "@" + lmtpDomain
		s.AddUser(t, rcpts[i], "pw "+r)
	}
	if cluster {
		// The node reads the accounts from the database every 5 s.
		// One probe every 250 ms: the mx limits connections per minute.
		for deadline := time.Now().Add(outWait); !rcptAccepted(t, s.MX, rcpts[len(rcpts)-1]); {
			if time.Now().After(deadline) {
				t.Fatal("the node did not learn the new accounts from the database")
			}
			time.Sleep(250 * time.Millisecond) // polling a condition, bounded above
		}
	}
	body := "From: <" + outSender + ">\r\nTo: <alice@" + lmtpDomain + ">\r\nSubject: lmtp interop\r\n\r\n" +
		strings.Repeat("a line of text that makes the message larger than one KiB\r\n", 40)
	c := dialHello(t, s.MX, "client.example")
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), outWait)
	defer cancel()
	env := client.Envelope{From: outSender, To: rcpts,
		DSN: []smtp.RcptDSN{{Notify: smtp.NotifySuccess | smtp.NotifyFailure}}}
	res, err := c.Send(ctx, env, strings.NewReader(body))
	if err != nil || res.Data != nil {
		t.Fatalf("send: %v %+v", err, res)
	}
	for i, e := range res.Rcpt {
		if e != nil {
			t.Fatalf("RCPT %s refused by smtpkit: %v", rcpts[i], e)
		}
	}
	c.Quit()

	// alice: in Dovecot's INBOX, with the Return-Path Dovecot adds.
	eventually(t, "alice's message in Dovecot", func() bool { return len(d.mailbox(t, "alice")) == 1 })
	if m := d.mailbox(t, "alice")[0]; !bytes.Contains(m, []byte("Subject: lmtp interop")) ||
		bytes.Count(m, []byte("Return-Path:")) != 1 || !bytes.Contains(m, []byte("Return-Path: <"+outSender+">")) {
		t.Errorf("alice's message in Dovecot:\n%.600s", m)
	}
	// keep: smtpkit's own Maildir, at once (lmtp_accounts = "maildir").
	if got := s.WaitMessages(t, "keep@"+lmtpDomain, 1); !bytes.Contains(got[0], []byte("Subject: lmtp interop")) {
		t.Errorf("keep's message:\n%.400s", got[0])
	}
	// The sender: alice's "delivered" notice, and one failure report for
	// bob (552 after the data) and dave (550 at RCPT).
	notices := s.WaitMessages(t, outSender, 2)
	var success, failure *parsedDSN
	for _, n := range notices {
		p := parseDSN(t, n)
		switch p.Subject {
		case "Successful Mail Delivery Report":
			success = &p
		default:
			failure = &p
		}
	}
	if success == nil || failure == nil {
		t.Fatalf("notices: want one success and one failure report:\n%s\n----\n%s", notices[0], notices[1])
	}
	if r := success.Blocks[1]; len(success.Blocks) != 2 || r["Action"] != "delivered" || r["Final-Recipient"] != "rfc822; alice@"+lmtpDomain {
		t.Errorf("success notice %+v", success.Blocks)
	}
	failed := map[string]map[string]string{}
	for _, b := range failure.Blocks[1:] {
		failed[b["Final-Recipient"]] = b
	}
	if b := failed["rfc822; bob@"+lmtpDomain]; b["Action"] != "failed" || b["Status"] != "5.2.2" || !strings.Contains(b["Diagnostic-Code"], "552") {
		t.Errorf("bob in the failure report: %v", b)
	}
	if b := failed["rfc822; dave@"+lmtpDomain]; b["Action"] != "failed" || b["Status"] != "5.1.1" || !strings.Contains(b["Diagnostic-Code"], "550") {
		t.Errorf("dave in the failure report: %v", b)
	}
	if len(failed) != 2 {
		t.Errorf("failure report names %d recipients, want bob and dave: %v", len(failed), failure.Blocks)
	}
	// carol: deferred with Dovecot's 452, still queued; nothing of hers
	// or bob's in Dovecot.
	var show string
	if cluster {
		eventually(t, "carol deferred in the database", func() bool {
			out, _ := pg.Exec(`SELECT state, last_reply FROM recipients WHERE addr = 'carol@` + lmtpDomain + `'`)
			show = out
			return strings.HasPrefix(out, "deferred|")
		})
	} else {
		show = queueShowCarol(t, s)
	}
	if !strings.Contains(show, "452") || !strings.Contains(show, "4.2.2") {
		t.Errorf("carol in the queue:\n%s", show)
	}
	for _, u := range []string{"bob", "carol"} {
		if n := len(d.mailbox(t, u)); n != 0 {
			t.Errorf("%s has %d messages in Dovecot", u, n)
		}
	}
	if n := s.CountFiles(t, "alice@"+lmtpDomain, "new"); n != 0 {
		t.Errorf("alice's message also in smtpkit's Maildir (%d)", n)
	}
}

// queueShowCarol is the env file record of carol's recipient state.
func queueShowCarol(t *testing.T, s *Server) string {
	t.Helper()
	var rec string
	eventually(t, "carol deferred in the queue", func() bool {
		envs, _ := filepath.Glob(filepath.Join(s.DataDir, "queue", "env", "*.json"))
		for _, e := range envs {
			b, err := os.ReadFile(e)
			if err != nil {
				continue
			}
			var env struct {
				Rcpts []json.RawMessage `json:"rcpts"`
			}
			if json.Unmarshal(b, &env) != nil {
				continue
			}
			for _, r := range env.Rcpts {
				if strings.Contains(string(r), "carol@") && strings.Contains(string(r), "452") {
					rec = string(r)
					return true
				}
			}
		}
		return false
	})
	return rec
}

// rcptAccepted reports whether the mx at addr accepts RCPT TO:<rcpt> (the
// transaction is reset, nothing is sent).
func rcptAccepted(t *testing.T, addr, rcpt string) bool {
	c := dialHello(t, addr, "client.example")
	defer c.Close()
	if rep, err := c.Cmd("MAIL FROM:<" + outSender + ">"); err != nil || rep.Code != smtp.CodeOK {
		return false
	}
	rep, err := c.Cmd("RCPT TO:<" + rcpt + ">")
	c.Reset()
	c.Quit()
	return err == nil && rep.Code == smtp.CodeOK
}
