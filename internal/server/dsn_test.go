package server

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/smtp"
)

// dsnAddr is in helper Q's loopback range for issue #16 (RFC 3461 tests).
const dsnAddr = "127.16.1.1:0"

// startDSNServer is startServer on dsnAddr with Options.DSN as given.
func startDSNServer(t *testing.T, dsn bool) *testServer {
	t.Helper()
	b := &memBackend{}
	srv := New(Options{
		Hostname: "mx.example.com", PostmasterDomain: "example.com",
		Listeners: []Listener{{Role: RoleMX, TLS: TLSNone, Address: dsnAddr}}, Backend: b,
		Limits: Limits{Errors: 50}, AuthFailureDelay: time.Millisecond, DSN: dsn,
	})
	serve(t, srv)
	return &testServer{srv: srv, backend: b, addrs: []string{srv.Addrs()[0].String()}}
}

// TestDSNParams checks RFC 3461 §4 on the receiving side: DSN is
// advertised only when offered, RET/ENVID on MAIL and NOTIFY/ORCPT on RCPT
// are parsed strictly (501 5.5.4 for bad values), refused 555 when not
// offered, other RCPT parameters stay 555, and the values reach the
// Backend's Envelope per recipient.
func TestDSNParams(t *testing.T) {
	on, off := startDSNServer(t, true), startDSNServer(t, false)
	if got := dial(t, on.addrs[0]).cmd("EHLO c", "250-"); !strings.Contains(got, "-DSN\r\n") {
		t.Errorf("DSN not advertised:\n%s", got)
	}
	if got := dial(t, off.addrs[0]).cmd("EHLO c", "250-"); strings.Contains(got, "DSN") {
		t.Errorf("DSN advertised without Options.DSN:\n%s", got)
	}
	const from, rcpt = "MAIL FROM:<a@b.example>", "RCPT TO:<alice@example.com>"
	tests := []struct {
		name  string
		ts    *testServer
		steps []step
	}{
		{"RET=HDRS", on, []step{{from + " RET=HDRS", "250 2.1.0"}}},
		{"RET=full lower case", on, []step{{from + " RET=full", "250 2.1.0"}}},
		{"RET bad", on, []step{{from + " RET=BODY", "501 5.5.4"}}},
		{"RET empty", on, []step{{from + " RET", "501 5.5.4"}}},
		{"RET twice", on, []step{{from + " RET=FULL RET=HDRS", "501 5.5.4"}}},
		{"ENVID", on, []step{{from + " ENVID=QQ+2B1", "250 2.1.0"}}},
		{"ENVID too long", on, []step{{from + " ENVID=" + strings.Repeat("x", 101), "501 5.5.4"}}},
		{"ENVID bad xtext", on, []step{{from + " ENVID=a+2x", "501 5.5.4"}}},
		{"NOTIFY=NEVER", on, []step{{from, "250"}, {rcpt + " NOTIFY=NEVER", "250 2.1.5"}}},
		{"NOTIFY list", on, []step{{from, "250"}, {rcpt + " NOTIFY=SUCCESS,DELAY ORCPT=rfc822;x@y", "250 2.1.5"}}},
		{"NOTIFY=NEVER,SUCCESS", on, []step{{from, "250"}, {rcpt + " NOTIFY=NEVER,SUCCESS", "501 5.5.4"}}},
		{"NOTIFY repeated", on, []step{{from, "250"}, {rcpt + " NOTIFY=DELAY,DELAY", "501 5.5.4"}}},
		{"ORCPT bad type", on, []step{{from, "250"}, {rcpt + " ORCPT=x400;a", "501 5.5.4"}}},
		{"unknown RCPT parameter", on, []step{{from, "250"}, {rcpt + " FOO=1", "555 5.5.4"}}},
		{"unknown RCPT parameter beside NOTIFY", on, []step{{from, "250"}, {rcpt + " NOTIFY=NEVER FOO", "555 5.5.4"}}},
		{"off: RET refused", off, []step{{from + " RET=HDRS", "555 5.5.4"}}},
		{"off: ENVID refused", off, []step{{from + " ENVID=x", "555 5.5.4"}}},
		{"off: NOTIFY refused", off, []step{{from, "250"}, {rcpt + " NOTIFY=NEVER", "555 5.5.4"}}},
		{"off: ORCPT refused", off, []step{{from, "250"}, {rcpt + " ORCPT=rfc822;a@b", "555 5.5.4"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runScript(t, tt.ts.addrs[0], append([]step{{"EHLO c", "250-"}}, tt.steps...))
		})
	}

	c := runScript(t, on.addrs[0], []step{{"EHLO c", "250-"},
		{from + " RET=HDRS ENVID=id+2B7", "250"},
		{rcpt + " NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;old+2Bx@example.net", "250"},
		{"RCPT TO:<postmaster@example.com>", "250"},
		{"RCPT TO:<alice@example.com> NOTIFY=NEVER", "250"}, // duplicate: the first one's parameters stay
		{"DATA", "354"}})
	c.cmd("Subject: t\r\n\r\nx\r\n.", "250 2.0.0")
	msgs := on.backend.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	env := msgs[0].env
	want := []smtp.RcptDSN{{Notify: smtp.NotifySuccess | smtp.NotifyFailure, ORCPT: smtp.ORCPT{Type: "rfc822", Addr: "old+x@example.net"}}, {}}
	if env.Ret != smtp.RetHdrs || env.EnvID != "id+7" || !reflect.DeepEqual(env.DSN, want) || len(env.Recipients) != 2 {
		t.Errorf("envelope Ret %q EnvID %q DSN %+v rcpts %v", env.Ret, env.EnvID, env.DSN, env.Recipients)
	}
}
