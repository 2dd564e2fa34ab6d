package cli

import (
	"errors"
	"net/mail"
	"reflect"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/client"
	"smtpkit/internal/config"
	"smtpkit/internal/smtp"
)

func TestParseSendmailArgs(t *testing.T) {
	tests := []struct {
		args []string
		want sendmailOpts
		err  bool
	}{
		{nil, sendmailOpts{dotEnds: true}, false},
		{[]string{"-t", "-i"}, sendmailOpts{headerRcpts: true}, false},
		{[]string{"-oi", "-t", "a@x"}, sendmailOpts{headerRcpts: true, rcpts: []string{"a@x"}}, false},
		{[]string{"-f", "s@x", "-F", "Full Name", "a@x", "-b@x"}, sendmailOpts{dotEnds: true, from: "s@x", fullName: "Full Name", rcpts: []string{"a@x", "-b@x"}}, false},
		{[]string{"-fs@x", "-FName"}, sendmailOpts{dotEnds: true, from: "s@x", fullName: "Name"}, false},
		{[]string{"-r", "s@x"}, sendmailOpts{dotEnds: true, from: "s@x"}, false},
		{[]string{"-config", "/c.toml", "-password-file", "/p"}, sendmailOpts{dotEnds: true, configPath: "/c.toml", passwordFile: "/p"}, false},
		{[]string{"-oem", "-odb", "-bm", "-B", "8BITMIME", "-N", "never", "-v", "--", "-t"}, sendmailOpts{dotEnds: true, verbose: true, rcpts: []string{"-t"}}, false},
		{[]string{"-bs"}, sendmailOpts{}, true},
		{[]string{"-bp"}, sendmailOpts{}, true},
		{[]string{"-q"}, sendmailOpts{}, true},
		{[]string{"-f"}, sendmailOpts{}, true},
		{[]string{"-config"}, sendmailOpts{}, true},
	}
	for _, tt := range tests {
		got, err := parseSendmailArgs(tt.args)
		if tt.err {
			if err == nil || !errors.As(err, new(sendmailArgError)) {
				t.Errorf("%q: err %v, want a usage error", tt.args, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: %+v, %v; want %+v", tt.args, got, err, tt.want)
		}
	}
}

func TestPrepareSendmail(t *testing.T) {
	d := destination{sender: "me@host.example", domain: "local.example"}
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		opts   sendmailOpts
		in     string
		from   string
		rcpts  []string
		header []string // fields that must be in the result
		absent []string
		err    bool
	}{
		{
			name: "-t with arguments, duplicates, groups, Bcc removed",
			opts: sendmailOpts{headerRcpts: true, rcpts: []string{"Extra <x@e.example>, y@e.example"}},
			in:   "To: a@t.example, \"B\" <b@t.example>\r\nCc: list:c@t.example, A@t.example;\r\nBcc: d@t.example\r\nFrom: f@t.example\r\n\r\nbody\r\n",
			from: "me@host.example", rcpts: []string{"x@e.example", "y@e.example", "a@t.example", "b@t.example", "c@t.example", "d@t.example"},
			header: []string{"From: f@t.example\r\n", "Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n", "Message-ID: <"}, absent: []string{"Bcc"},
		},
		{
			name: "arguments only, -t absent: header recipients ignored, local names qualified",
			opts: sendmailOpts{from: "s@x.example", fullName: "Jörg", rcpts: []string{"root"}},
			in:   "To: a@t.example\r\nSubject: x\r\n\r\n",
			from: "s@x.example", rcpts: []string{"root@local.example"},
			header: []string{"From: =?utf-8?q?J=C3=B6rg?= <s@x.example>\r\n", "@x.example>\r\n"},
		},
		{name: "null sender", opts: sendmailOpts{from: "<>", rcpts: []string{"a@t.example"}}, in: "\r\n", from: "", rcpts: []string{"a@t.example"},
			header: []string{"From: <me@host.example>\r\n"}},
		{name: "-t with local names", opts: sendmailOpts{headerRcpts: true}, in: "To: root, admin\r\nCc: x@t.example\r\n\r\n", from: "me@host.example",
			rcpts: []string{"root@local.example", "admin@local.example", "x@t.example"}},
		{name: "no recipients", opts: sendmailOpts{headerRcpts: true}, in: "Subject: x\r\n\r\n", err: true},
		{name: "bad header address", opts: sendmailOpts{headerRcpts: true}, in: "To: <a@\r\n\r\n", err: true},
		{name: "bad sender", opts: sendmailOpts{from: "not an address", rcpts: []string{"a@t.example"}}, in: "\r\n", err: true},
		{name: "bad recipient", opts: sendmailOpts{rcpts: []string{"a@@b"}}, in: "\r\n", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, msg, err := prepareSendmail([]byte(tt.in), tt.opts, d, now)
			if tt.err {
				if err == nil {
					t.Errorf("no error; env %+v", env)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if env.From != tt.from || !reflect.DeepEqual(env.To, tt.rcpts) {
				t.Errorf("envelope %q → %q, want %q → %q", env.From, env.To, tt.from, tt.rcpts)
			}
			head := string(msg[:strings.Index(string(msg), "\r\n\r\n")+2])
			for _, h := range tt.header {
				if !strings.Contains(head, h) {
					t.Errorf("header lacks %q:\n%s", h, head)
				}
			}
			for _, h := range tt.absent {
				if strings.Contains(head, h) {
					t.Errorf("header has %q:\n%s", h, head)
				}
			}
			if _, err := mail.ReadMessage(strings.NewReader(string(msg))); err != nil {
				t.Errorf("result does not parse: %v", err)
			}
		})
	}
}

func TestLocalDestination(t *testing.T) {
	cfg := config.DevDefault()
	cfg.DataDir = t.TempDir()
	cfg.Domains = []config.Domain{{Name: "example.org"}}
	for _, tt := range []struct{ addr, tls, wantAddr, wantMode string }{
		{":25", config.TLSOpportunistic, "127.0.0.1:25", tlsNone}, // no readable certificate: plaintext on loopback
		{"0.0.0.0:2500", config.TLSRequired, "127.0.0.1:2500", tlsStartTLS},
		{"[::]:2500", config.TLSImplicit, "127.0.0.1:2500", tlsImplicit},
		{"127.0.0.2:10025", config.TLSNone, "127.0.0.2:10025", tlsNone},
	} {
		cfg.Listeners = []config.Listener{{Address: "127.0.0.1:587", Role: config.RoleSubmission}, {Address: tt.addr, Role: config.RoleMX, TLS: tt.tls}}
		d, err := localDestination(cfg)
		if err != nil || d.target.addr != tt.wantAddr || d.target.tlsMode != tt.wantMode || d.domain != "example.org" {
			t.Errorf("%s %s: %+v %v", tt.addr, tt.tls, d.target, err)
		}
	}
	cfg.Listeners = cfg.Listeners[:1]
	if _, err := localDestination(cfg); err == nil {
		t.Error("no mx listener accepted")
	}
}

func TestSubmitDestination(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	d, err := sendmailDestination(sendmailOpts{}, env(map[string]string{
		"SMTPKIT_SUBMIT": "mail.example:465", "SMTPKIT_USER": "me@example.org", "SMTPKIT_PASSWORD": "pw"}))
	if err != nil || d.target.tlsMode != tlsImplicit || d.sender != "me@example.org" || d.target.password != "pw" ||
		d.target.tlsConfig.ServerName != "mail.example" {
		t.Errorf("%+v %v", d, err)
	}
	for _, bad := range []map[string]string{
		{"SMTPKIT_SUBMIT": "mail.example"},
		{"SMTPKIT_SUBMIT": "mail.example:587"},
		{"SMTPKIT_SUBMIT": "mail.example:587", "SMTPKIT_USER": "me"},
		{"SMTPKIT_SUBMIT": "mail.example:587", "SMTPKIT_USER": "me", "SMTPKIT_PASSWORD": "x", "SMTPKIT_TLS": "maybe"},
		{"SMTPKIT_SUBMIT": "mail.example:587", "SMTPKIT_USER": "me", "SMTPKIT_PASSWORD": "x", "SMTPKIT_CA": "/nonexistent"},
	} {
		if _, err := sendmailDestination(sendmailOpts{}, env(bad)); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestSendmailExit(t *testing.T) {
	perm := smtp.E(550, "5.1.1", "no")
	temp := smtp.E(450, "4.2.0", "later")
	tests := []struct {
		o    outcome
		want int
	}{
		{outcome{rcpt: []error{nil}}, exOK},
		{outcome{rcpt: []error{nil, perm}}, exNoUser},
		{outcome{rcpt: []error{temp, perm}, data: client.ErrNoRecipients}, exNoUser},
		{outcome{rcpt: []error{nil, temp}}, exTempFail},
		{outcome{rcpt: []error{nil}, data: smtp.E(554, "5.6.0", "bad")}, exUnavailable},
		{outcome{rcpt: []error{nil}, data: smtp.E(451, "4.3.0", "oops")}, exTempFail},
		{outcome{err: perm, rcpt: []error{perm}}, exUnavailable},
		{outcome{err: temp, rcpt: []error{temp}}, exTempFail},
		{outcome{err: errors.New("connection reset"), rcpt: []error{nil}}, exTempFail},
	}
	for i, tt := range tests {
		if got := tt.o.sendmailExit(); got != tt.want {
			t.Errorf("%d: %d, want %d", i, got, tt.want)
		}
	}
	if got := sessionExit(&authError{smtp.E(535, "5.7.8", "bad")}); got != exNoPerm {
		t.Errorf("auth 535: %d", got)
	}
	if got := sessionExit(errors.New("dial: refused")); got != exTempFail {
		t.Errorf("dial: %d", got)
	}
}
