package delivery

import (
	"context"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"

	"smtpkit/internal/queue"
	"smtpkit/internal/smtp"
)

// mailboxesFunc adapts a function to Mailboxes.
type mailboxesFunc func(ctx context.Context, id string, from smtp.Address, boxes []string, body io.Reader) error

func (f mailboxesFunc) Deliver(ctx context.Context, id string, from smtp.Address, boxes []string, body io.Reader) error {
	return f(ctx, id, from, boxes, body)
}

func TestLocalOutcomes(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string // outcome of every recipient
	}{
		{"stored", nil, "ok"},
		{"disk full is temporary", smtp.Wrap(smtp.R(452, "4.3.1", "Insufficient system storage"), syscall.ENOSPC), "temp 452"},
		{"unknown errors are temporary", errors.New("surprise"), "temp 451"},
		{"not a local mailbox any more", smtp.E(550, smtp.EnhBadMailbox, "not a local mailbox"), "perm 550"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			l := NewLocal(mailboxesFunc(func(_ context.Context, id string, from smtp.Address, boxes []string, body io.Reader) error {
				b, _ := io.ReadAll(body)
				got = id + " " + from.String() + " " + strings.Join(boxes, ",") + " " + string(b)
				return tt.err
			}), nil)
			d := &queue.Attempt{ID: "Q1", From: "s@x.example", Domain: "example.com", Recipients: []string{"a@example.com", "b@example.com"},
				Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("body")), nil }}
			res := l.Deliver(context.Background(), d)
			if want := "Q1 s@x.example a@example.com,b@example.com body"; got != want {
				t.Errorf("stored %q, want %q", got, want)
			}
			wantOutcomes(t, res, tt.want, tt.want)
		})
	}
}
