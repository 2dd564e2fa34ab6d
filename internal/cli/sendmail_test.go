package cli

import (
	"errors"
	"io"
	"reflect"
	"testing"

	"smtpkit/internal/client"
	"smtpkit/internal/config"
	"smtpkit/internal/smtp"
	"smtpkit/internal/submit"
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

func TestLocalDestination(t *testing.T) {
	cfg := config.DevDefault()
	cfg.DataDir = t.TempDir()
	cfg.Domains = []config.Domain{{Name: "example.org"}}
	for _, tt := range []struct {
		addr, tls, wantAddr string
		wantMode            submit.TLSMode
	}{
		{":25", config.TLSOpportunistic, "127.0.0.1:25", submit.TLSNone}, // no readable certificate: plaintext on loopback
		{"0.0.0.0:2500", config.TLSRequired, "127.0.0.1:2500", submit.TLSStartTLS},
		{"[::]:2500", config.TLSImplicit, "127.0.0.1:2500", submit.TLSImplicit},
		{"127.0.0.2:10025", config.TLSNone, "127.0.0.2:10025", submit.TLSNone},
	} {
		cfg.Listeners = []config.Listener{{Address: "127.0.0.1:587", Role: config.RoleSubmission}, {Address: tt.addr, Role: config.RoleMX, TLS: tt.tls}}
		d, err := localDestination(cfg)
		if err != nil || d.target.Addr != tt.wantAddr || d.target.TLSMode != tt.wantMode || d.domain != "example.org" {
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
		"SMTPKIT_SUBMIT": "mail.example:465", "SMTPKIT_USER": "me@example.org", "SMTPKIT_PASSWORD": "pw"}), io.Discard)
	if err != nil || d.target.TLSMode != submit.TLSImplicit || d.sender != "me@example.org" || d.target.Password != "pw" ||
		d.target.TLSConfig.ServerName != "mail.example" {
		t.Errorf("%+v %v", d, err)
	}
	for _, bad := range []map[string]string{
		{"SMTPKIT_SUBMIT": "mail.example"},
		{"SMTPKIT_SUBMIT": "mail.example:587"},
		{"SMTPKIT_SUBMIT": "mail.example:587", "SMTPKIT_USER": "me"},
		{"SMTPKIT_SUBMIT": "mail.example:587", "SMTPKIT_USER": "me", "SMTPKIT_PASSWORD": "x", "SMTPKIT_TLS": "maybe"},
		{"SMTPKIT_SUBMIT": "mail.example:587", "SMTPKIT_USER": "me", "SMTPKIT_PASSWORD": "x", "SMTPKIT_CA": "/nonexistent"},
	} {
		if _, err := sendmailDestination(sendmailOpts{}, env(bad), io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestSendmailExit(t *testing.T) {
	perm := smtp.E(550, "5.1.1", "no")
	temp := smtp.E(450, "4.2.0", "later")
	tests := []struct {
		o    submit.Outcome
		want int
	}{
		{submit.Outcome{Rcpt: []error{nil}}, exOK},
		{submit.Outcome{Rcpt: []error{nil, perm}}, exNoUser},
		{submit.Outcome{Rcpt: []error{temp, perm}, Data: client.ErrNoRecipients}, exNoUser},
		{submit.Outcome{Rcpt: []error{nil, temp}}, exTempFail},
		{submit.Outcome{Rcpt: []error{nil}, Data: smtp.E(554, "5.6.0", "bad")}, exUnavailable},
		{submit.Outcome{Rcpt: []error{nil}, Data: smtp.E(451, "4.3.0", "oops")}, exTempFail},
		{submit.Outcome{Err: perm, Rcpt: []error{perm}}, exUnavailable},
		{submit.Outcome{Err: temp, Rcpt: []error{temp}}, exTempFail},
		{submit.Outcome{Err: errors.New("connection reset"), Rcpt: []error{nil}}, exTempFail},
	}
	for i, tt := range tests {
		if got := sendmailExit(tt.o); got != tt.want {
			t.Errorf("%d: %d, want %d", i, got, tt.want)
		}
	}
	if got := sessionExit(&submit.AuthError{Err: smtp.E(535, "5.7.8", "bad")}); got != exNoPerm {
		t.Errorf("auth 535: %d", got)
	}
	if got := sessionExit(errors.New("dial: refused")); got != exTempFail {
		t.Errorf("dial: %d", got)
	}
}
