package inbound

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"

	"smtpkit/internal/server"
	"smtpkit/internal/smtp"
)

// TestTrustedRelay: a client in the trusted networks may relay on mx
// without AUTH (issue #15), through the same queue, recorded as
// relay="trusted"; an untrusted one is refused 550 5.7.1; authenticated
// submission is relay="auth" and forwarding through an alias
// relay="forward".
func TestTrustedRelay(t *testing.T) {
	remote := &net.TCPAddr{IP: net.ParseIP("127.15.1.7"), Port: 4000}
	tests := []struct {
		name  string
		s     *server.SessionInfo
		rcpt  string
		code  int    // of Recipient
		relay string // queue.Meta.Relay of the queued copy
	}{
		{"trusted on mx", &server.SessionInfo{Role: server.RoleMX, Remote: remote, Trusted: true}, "dave@far.example", 0, "trusted"},
		{"untrusted on mx", &server.SessionInfo{Role: server.RoleMX, Remote: remote}, "dave@far.example", 550, ""},
		{"authenticated", &server.SessionInfo{Role: server.RoleSubmission, Remote: remote, AuthUser: "alice@example.com"}, "dave@far.example", 0, "auth"},
		{"authenticated and trusted", &server.SessionInfo{Role: server.RoleSubmission, Remote: remote, AuthUser: "alice@example.com", Trusted: true}, "dave@far.example", 0, "auth"},
		{"untrusted, alias to outside", &server.SessionInfo{Role: server.RoleMX, Remote: remote}, "team@example.com", 0, "forward"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			relay := &memRelay{}
			b, _ := newBackend(t, relay)
			from := addr("app@example.com")
			if err := b.Sender(context.Background(), tt.s, from); err != nil && tt.s.AuthUser == "" {
				t.Fatalf("Sender: %v", err) // any sender on mx, trusted or not
			}
			err := b.Recipient(context.Background(), tt.s, from, addr(tt.rcpt))
			if got := code(err); got != tt.code {
				t.Fatalf("Recipient: %v, want %d", err, tt.code)
			}
			if err != nil {
				var se *smtp.Error
				if !errors.As(err, &se) || se.Reply.Enhanced != "5.7.1" {
					t.Errorf("refusal %v, want 5.7.1", err)
				}
				return
			}
			env := &server.Envelope{ID: "ID1", Session: tt.s, From: from, Recipients: []smtp.Address{addr(tt.rcpt)}}
			w, err := b.Begin(context.Background(), env)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(w, "From: app@example.com\r\n\r\nbody\r\n")
			if _, err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			if relay.meta.Relay != tt.relay || relay.meta.ReceivedFrom != remote.String() {
				t.Errorf("queued with relay %q from %q, want %q from %s", relay.meta.Relay, relay.meta.ReceivedFrom, tt.relay, remote)
			}
		})
	}
}
