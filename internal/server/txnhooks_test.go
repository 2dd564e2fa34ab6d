package server

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"smtpkit/internal/smtp"
)

// txnBackend is memBackend with TransactionHooks: it records Mail (with
// its parameters) and Reset, and refuses senders at Mail when told to.
type txnBackend struct {
	memBackend
	refuse string // a sender refused at Mail

	mu    sync.Mutex
	calls []string
}

func (b *txnBackend) record(call string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, call)
}

func (b *txnBackend) Mail(_ context.Context, _ *SessionInfo, from smtp.Address, params []string) error {
	b.record("mail " + from.String() + " " + strings.Join(params, " "))
	if from.String() == b.refuse {
		return smtp.E(smtp.CodeMailboxUnavail, smtp.EnhNotAuthorized, "Command rejected")
	}
	return nil
}

func (b *txnBackend) Reset(*SessionInfo) { b.record("reset") }

// TestTransactionHooks: Mail sees MAIL's parameters after Sender and its
// error is MAIL's reply; Reset comes when a started transaction is
// dropped (RSET, EHLO, a refused DATA, the end of the session), not after
// a message or when no transaction was open.
func TestTransactionHooks(t *testing.T) {
	b := &txnBackend{refuse: "spam@example.net"}
	srv := New(Options{
		Hostname: "mx.example.com", PostmasterDomain: "example.com",
		Listeners: []Listener{{Address: "127.15.5.1:0", Role: RoleMX}}, Backend: b,
	})
	serve(t, srv)
	c := dialNoGreeting(t, srv.Addrs()[0].String())
	c.expect("220 ")
	for _, step := range [][2]string{
		{"EHLO a.example", "250-"},
		{"MAIL FROM:<spam@example.net>", "550 5.7.1 Command rejected"},
		{"RSET", "250 "},
		{"MAIL FROM:<a@example.net> SIZE=100 BODY=8BITMIME", "250 "},
		{"RSET", "250 "},
		{"MAIL FROM:<b@example.net>", "250 "},
		{"EHLO a.example", "250-"},
		{"MAIL FROM:<c@example.net>", "250 "},
		{"RCPT TO:<alice@example.com>", "250 "},
		{"DATA", "354 "},
		{"Subject: x\r\n\r\nhi\r\n.", "250 "},
		{"MAIL FROM:<d@example.net>", "250 "},
		{"QUIT", "221 "},
	} {
		c.cmd(step[0], step[1])
	}
	want := []string{"mail spam@example.net ", "mail a@example.net BODY=8BITMIME SIZE=100", "reset",
		"mail b@example.net ", "reset", "mail c@example.net ", "mail d@example.net ", "reset"}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		got := strings.Join(b.calls, "|")
		b.mu.Unlock()
		if got == strings.Join(want, "|") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls %q\nwant  %q", got, strings.Join(want, "|"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
