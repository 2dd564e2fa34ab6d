package cli

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"smtpkit/internal/client"
	"smtpkit/internal/smtp"
	"smtpkit/internal/submit"
)

func TestSendFlags(t *testing.T) {
	base := []string{"--server", "mail.example:587", "--from", "a@b.example", "--to", "c@d.example"}
	tests := []struct {
		args    []string
		wantTLS string
		err     string
	}{
		{base, string(submit.TLSStartTLS), ""},
		{[]string{"--server", "mail.example:465", "--from", "a@b.example", "--bcc", "c@d.example"}, string(submit.TLSImplicit), ""},
		{append(base, "--tls", "opportunistic", "--auth-mech", "SCRAM-SHA-256"), string(submit.TLSOpportunistic), ""},
		{append(base, "--tls", "maybe"), "", "--tls"},
		{append(base, "--auth-mech", "cram-md5"), "", "--auth-mech"},
		{[]string{"--from", "a@b.example", "--to", "c@d.example"}, "", "--server"},
		{[]string{"--server", "mail.example", "--from", "a@b.example", "--to", "c@d.example"}, "", "--server"},
		{[]string{"--server", "m:25", "--to", "c@d.example"}, "", "--from"},
		{[]string{"--server", "m:25", "--from", "a@b.example"}, "", "--to"},
		{append(base, "--body", "x", "--body-file", "y"), "", "--body"},
		{append(base, "--data", "-", "--subject", "x"), "", "--data"},
		{append(base, "--timeout", "0s"), "", "--timeout"},
		{append(base, "extra"), "", "unexpected"},
		{append(base, "--require-tls"), string(submit.TLSStartTLS), ""},
		{append(base, "--require-tls", "--tls", "implicit"), string(submit.TLSImplicit), ""},
		{append(base, "--require-tls", "--tls", "none"), "", "--require-tls"},
		{append(base, "--require-tls", "--tls", "opportunistic"), "", "--require-tls"},
		{append(base, "--require-tls", "--insecure"), "", "--insecure"},
		{append(base, "--data", "-", "--binary"), string(submit.TLSStartTLS), ""},
		{append(base, "--body", "x", "--binary"), "", "--binary needs --data"},
	}
	for _, tt := range tests {
		f, err := parseSendFlags(tt.args, io.Discard)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err %v, want one about %s", tt.args, err, tt.err)
			}
			continue
		}
		if err != nil || f.tlsMode != tt.wantTLS {
			t.Errorf("%q: tls %q, %v; want %q", tt.args, f.tlsMode, err, tt.wantTLS)
		}
	}
}

func TestSendEnvelope(t *testing.T) {
	f, err := parseSendFlags([]string{"--server", "m:25", "--from", "Jörg <j@b.example>", "--to", "X <x@d.example>, y@d.example",
		"--cc", "c@d.example", "--bcc", "z@d.example"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	env, err := f.envelope()
	if err != nil || env.From != "j@b.example" || strings.Join(env.To, " ") != "x@d.example y@d.example c@d.example z@d.example" {
		t.Errorf("%+v %v", env, err)
	}
	if env.RequireTLS {
		t.Error("RequireTLS without --require-tls")
	}
	rt, err := parseSendFlags([]string{"--server", "m:25", "--from", "a@b.example", "--to", "c@d.example", "--require-tls"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if env, err := rt.envelope(); err != nil || !env.RequireTLS {
		t.Errorf("--require-tls: %+v %v", env, err)
	}
	f.to = append(f.to, "<broken")
	if _, err := f.envelope(); err == nil {
		t.Error("broken address accepted")
	}
}

func TestSendExit(t *testing.T) {
	tests := []struct {
		o    submit.Outcome
		want int
	}{
		{submit.Outcome{Rcpt: []error{nil, nil}}, sendExitOK},
		{submit.Outcome{Rcpt: []error{nil, smtp.E(550, "5.1.1", "no")}}, sendExitRefused},
		{submit.Outcome{Rcpt: []error{nil}, Data: smtp.E(554, "5.6.0", "no")}, sendExitRefused},
		{submit.Outcome{Rcpt: []error{smtp.E(450, "4.2.0", "later")}, Data: client.ErrNoRecipients}, sendExitRefused},
		{submit.Outcome{Err: smtp.E(553, "5.7.1", "not yours")}, sendExitRefused},
		{submit.Outcome{Err: errors.New("broken pipe"), Data: errors.New("broken pipe")}, sendExitConnect},
	}
	for i, tt := range tests {
		if got := sendExit(tt.o); got != tt.want {
			t.Errorf("%d: %d, want %d", i, got, tt.want)
		}
	}
}

func TestRunSendUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"send", "--server", "m:25"}, Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}); code != sendExitUsage {
		t.Errorf("exit %d", code)
	}
	if code := Main([]string{"send", "-h"}, Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}); code != 0 || !strings.Contains(errb.String(), "-auth-mech string") {
		t.Errorf("-h: exit %d\n%s", code, errb.String())
	}
	errb.Reset()
	missing := []string{"send", "--server", "127.0.0.1:1", "--from", "a@b.example", "--to", "c@d.example", "--attach", "/nonexistent/file"}
	if code := Main(missing, Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}); code != sendExitUsage {
		t.Errorf("missing attachment: exit %d", code)
	}
}
