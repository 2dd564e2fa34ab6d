package inbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"smtpkit/internal/sendlimit"
	"smtpkit/internal/server"
	"smtpkit/internal/smtp"
)

// TestAccountLimits: an authenticated account over its limits gets 451
// 4.7.1 at MAIL (messages) and RCPT (distinct recipients), with a warning
// naming the account and the limit and an Events call; clients without
// an account (mx, trusted networks) are never counted.
func TestAccountLimits(t *testing.T) {
	authed := &server.SessionInfo{ID: "S1", Role: server.RoleSubmission, AuthUser: "alice@example.com"}
	anon := &server.SessionInfo{ID: "S2", Role: server.RoleMX}
	trusted := &server.SessionInfo{ID: "S3", Role: server.RoleMX, Trusted: true}
	type call struct {
		s    *server.SessionInfo
		rcpt string // "" = MAIL
		want string // "" = accepted, else the enhanced code and text of the refusal
	}
	const (
		msgLimit  = "4.7.1 Sending limit reached for this account (2 messages per hour), try again later"
		rcptLimit = "4.7.1 Sending limit reached for this account (2 distinct recipients per hour), try again later"
	)
	tests := []struct {
		name   string
		calls  []call
		events []string
	}{
		{"messages", []call{{authed, "", ""}, {authed, "", ""}, {authed, "", msgLimit}, {authed, "", msgLimit}},
			[]string{"limited:messages_per_hour", "limited:messages_per_hour"}},
		{"distinct recipients, local and remote", []call{
			{authed, "bob@example.com", ""}, {authed, "dave@far.example", ""},
			{authed, "Bob@example.com", ""}, // counted already
			{authed, "erin@far.example", rcptLimit},
		}, []string{"limited:recipients_per_hour"}},
		{"no account, no count", []call{
			{anon, "", ""}, {anon, "", ""}, {anon, "", ""}, {trusted, "", ""}, {trusted, "", ""},
			{anon, "alice@example.com", ""}, {anon, "bob@example.com", ""}, {anon, "postmaster@example.com", ""},
			{trusted, "a@far.example", ""}, {trusted, "b@far.example", ""}, {trusted, "c@far.example", ""},
		}, nil},
		{"a refused recipient is not counted", []call{
			{authed, "nobody@example.com", "5.1.1"}, {authed, "bob@example.com", ""}, {authed, "alice@example.com", ""},
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := newBackend(t, &memRelay{})
			var logs bytes.Buffer
			b.opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			limits, err := sendlimit.Open(sendlimit.Options{Limits: sendlimit.Limits{MessagesPerHour: 2, RecipientsPerHour: 2}})
			if err != nil {
				t.Fatal(err)
			}
			b.opts.AccountLimits = limits
			ev := &countEvents{}
			b.opts.Events = ev
			for i, c := range tt.calls {
				var err error
				if c.rcpt == "" {
					err = b.Sender(context.Background(), c.s, addr("alice@example.com"))
				} else {
					err = b.Recipient(context.Background(), c.s, addr("alice@example.com"), addr(c.rcpt))
				}
				got := ""
				var se *smtp.Error
				if errors.As(err, &se) {
					got = string(se.Reply.Enhanced)
					if strings.HasPrefix(c.want, "4.7.1") {
						got = fmt.Sprintf("%s %s", se.Reply.Enhanced, strings.Join(se.Reply.Lines, " "))
						if se.Reply.Code != 451 {
							t.Errorf("call %d: code %d, want 451", i, se.Reply.Code)
						}
					}
				} else if err != nil {
					got = err.Error()
				}
				if got != c.want {
					t.Fatalf("call %d (%s %q): %q, want %q", i, c.s.ID, c.rcpt, got, c.want)
				}
			}
			var events []string
			for k, n := range ev.counts {
				for range n {
					events = append(events, k)
				}
			}
			if strings.Join(events, ",") != strings.Join(tt.events, ",") {
				t.Errorf("events %q, want %q", events, tt.events)
			}
			warns := strings.Count(logs.String(), `level=WARN msg="account over its sending limit" conn=S1 account=alice@example.com limit=`)
			if warns != len(tt.events) {
				t.Errorf("%d warnings, want %d:\n%s", warns, len(tt.events), logs.String())
			}
		})
	}
}
