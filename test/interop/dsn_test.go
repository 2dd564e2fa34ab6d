package interop

// DSN (RFC 3461) end to end. Python smtplib sends MAIL … RET=HDRS ENVID=
// and RCPT … NOTIFY=SUCCESS ORCPT= to smtpkit's MX for a local mailbox: the
// sender (a local mailbox too) gets a "delivered" notice that Python's
// email module parses. Relaying through aiosmtpd: a next hop that offers
// DSN receives the parameters (its raw MAIL/RCPT arguments are checked)
// and no notice comes from us; one that does not gets none of them and
// the sender gets a "relayed" notice (§6.2.1.2). Addresses: 127.16.1.0/24.

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"smtpkit/internal/client"
	"smtpkit/internal/smtp"
)

// dsnPeerMsg is one message dsn_peer.py serve received.
type dsnPeerMsg struct {
	From        string   `json:"from"`
	Rcpt        []string `json:"rcpt"`
	MailOptions []string `json:"mail_options"`
	RcptOptions []string `json:"rcpt_options"`
}

type dsnPeer struct {
	addr string
	mu   sync.Mutex
	msgs []dsnPeerMsg
}

func (p *dsnPeer) messages() []dsnPeerMsg {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]dsnPeerMsg(nil), p.msgs...)
}

func needAiosmtpd(t *testing.T) string {
	t.Helper()
	python := NeedPython(t)
	if err := exec.Command(python, "-c", "import aiosmtpd").Run(); err != nil {
		missing(t, "python3-aiosmtpd", err)
	}
	return python
}

// startDSNPeer runs dsn_peer.py serve on ip, offering DSN when dsn is set.
func startDSNPeer(t *testing.T, ip string, dsn bool) *dsnPeer {
	t.Helper()
	args := []string{"testdata/dsn_peer.py", "serve", ip}
	if dsn {
		args = append(args, "--dsn")
	}
	cmd := exec.Command(needAiosmtpd(t), args...)
	p := &dsnPeer{}
	port := startScriptPeer(t, "aiosmtpd peer", cmd, func(line []byte) {
		var m dsnPeerMsg
		if json.Unmarshal(line, &m) == nil {
			p.mu.Lock()
			p.msgs = append(p.msgs, m)
			p.mu.Unlock()
		}
	})
	p.addr = ip + ":" + port
	return p
}

// parsedDSN is what dsn_peer.py parse reports of a notice.
type parsedDSN struct {
	Subject    string              `json:"subject"`
	ReportType string              `json:"report_type"`
	Blocks     []map[string]string `json:"blocks"`
	Parts      []string            `json:"parts"`
}

// parseDSN has Python's email module read the notice msg.
func parseDSN(t *testing.T, msg []byte) parsedDSN {
	t.Helper()
	f := filepath.Join(t.TempDir(), "dsn.eml")
	if err := os.WriteFile(f, msg, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(NeedPython(t), "testdata/dsn_peer.py", "parse", f)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("parsing the DSN: %v\n%s\n%s", err, stderr.Bytes(), msg)
	}
	var p parsedDSN
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Blocks) < 2 {
		t.Fatalf("DSN has %d field blocks:\n%s", len(p.Blocks), msg)
	}
	return p
}

func TestDSNLocalSuccessSmtplib(t *testing.T) {
	python := needAiosmtpd(t)
	s := StartServer(t, ServerOptions{IP: "127.16.1.2"})
	const bob = "bob@" + testDomain
	s.AddUser(t, outSender, outPassword)
	s.AddUser(t, bob, "bob pw")
	host, port, _ := strings.Cut(s.MX, ":")
	out, err := exec.Command(python, "testdata/dsn_peer.py", "send", host, port, outSender, bob).CombinedOutput()
	if err != nil {
		t.Fatalf("smtplib: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `"dsn"`) {
		t.Errorf("smtplib saw no DSN in EHLO: %s", out)
	}
	if got := s.WaitMessages(t, bob, 1); !strings.Contains(string(got[0]), "Subject: dsn interop") {
		t.Errorf("bob's message:\n%s", got[0])
	}
	notice := s.WaitMessages(t, outSender, 1)[0]
	p := parseDSN(t, notice)
	if p.Subject != "Successful Mail Delivery Report" || p.ReportType != "delivery-status" {
		t.Errorf("subject %q report-type %q", p.Subject, p.ReportType)
	}
	if p.Blocks[0]["Original-Envelope-Id"] != "interop+1" {
		t.Errorf("per-message fields %v", p.Blocks[0])
	}
	r := p.Blocks[1]
	if r["Action"] != "delivered" || r["Status"] != "2.0.0" || r["Original-Recipient"] != "rfc822;orig+box@client.example" ||
		r["Final-Recipient"] != "rfc822; "+bob {
		t.Errorf("recipient fields %v", r)
	}
	if !slices.Contains(p.Parts, "text/rfc822-headers") {
		t.Errorf("parts %v: RET=HDRS returns the headers", p.Parts)
	}
	eventually(t, "the queue to empty", func() bool { return queued(t, s) == 0 })
}

func TestDSNRelayAiosmtpd(t *testing.T) {
	for _, tt := range []struct {
		name, ip, serverIP string
		dsn                bool
	}{
		{"next hop offers DSN", "127.16.1.3", "127.16.1.4", true},
		{"next hop without DSN", "127.16.1.5", "127.16.1.6", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := startDSNPeer(t, tt.ip, tt.dsn)
			a := StartServer(t, ServerOptions{IP: tt.serverIP,
				ExtraTOML: outConf{routes: []outRoute{{domain: "*", host: p.addr, tls: "none"}}}.toml()})
			a.AddUser(t, outSender, outPassword)
			env := client.Envelope{Ret: smtp.RetHdrs, EnvID: "relay 1",
				DSN: []smtp.RcptDSN{{Notify: smtp.NotifySuccess | smtp.NotifyFailure, ORCPT: smtp.ORCPT{Type: "rfc822", Addr: "orig@far.example"}}}}
			submitBody(t, a, []byte("From: <"+outSender+">\r\nSubject: relay dsn\r\n\r\nhi\r\n"), "x@far.example", env)
			eventually(t, "the message at aiosmtpd", func() bool { return len(p.messages()) >= 1 })
			m := p.messages()[0]
			if tt.dsn {
				if !slices.Contains(m.MailOptions, "RET=HDRS") || !slices.Contains(m.MailOptions, "ENVID=RELAY+201") ||
					!slices.Contains(m.RcptOptions, "NOTIFY=SUCCESS,FAILURE") || !slices.Contains(m.RcptOptions, "ORCPT=RFC822;ORIG@FAR.EXAMPLE") {
					t.Errorf("parameters at the next hop: MAIL %v RCPT %v", m.MailOptions, m.RcptOptions)
				}
				eventually(t, "the queue to empty", func() bool { return queued(t, a) == 0 })
				if n := a.CountFiles(t, outSender, "new"); n != 0 {
					t.Errorf("%d notices to the sender; the next hop took NOTIFY itself", n)
				}
				return
			}
			if slices.ContainsFunc(append(m.MailOptions, m.RcptOptions...), isDSNParam) {
				t.Errorf("parameters sent to a next hop without DSN: MAIL %v RCPT %v", m.MailOptions, m.RcptOptions)
			}
			d := parseDSN(t, a.WaitMessages(t, outSender, 1)[0])
			r := d.Blocks[1]
			if d.Subject != "Successful Mail Delivery Report" || r["Action"] != "relayed" || r["Original-Recipient"] != "rfc822;orig@far.example" ||
				d.Blocks[0]["Original-Envelope-Id"] != "relay 1" {
				t.Errorf("relayed notice %+v", d)
			}
			eventually(t, "the queue to empty", func() bool { return queued(t, a) == 0 })
		})
	}
}

// isDSNParam reports whether a raw MAIL or RCPT parameter is one of RFC 3461's.
func isDSNParam(p string) bool {
	k, _, _ := strings.Cut(strings.ToUpper(p), "=")
	return k == "RET" || k == "ENVID" || k == "NOTIFY" || k == "ORCPT"
}
