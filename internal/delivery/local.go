package delivery

import (
	"context"
	"errors"
	"io"

	"smtpkit/internal/queue"
	"smtpkit/internal/smtp"
)

// Mailboxes stores a message into local mailboxes (inbound.Backend). It
// is all or nothing: on error no mailbox holds the message.
type Mailboxes interface {
	DeliverLocal(ctx context.Context, id, from string, boxes []string, body io.Reader) error
}

// Local is the queue's courier for local recipients: the mailboxes the
// queue took over when their Maildir delivery failed as the message was
// received (queue.Writer.AddLocal). It implements queue.Courier.
type Local struct{ store Mailboxes }

// NewLocal returns a Local courier writing into store.
func NewLocal(store Mailboxes) *Local { return &Local{store: store} }

// Deliver stores the message once for all of d's recipients: they share
// one outcome. A storage failure is temporary (retried with backoff); a
// recipient that is no longer a local mailbox fails permanently.
func (l *Local) Deliver(ctx context.Context, d *queue.Attempt) []queue.Result {
	body, err := d.Open()
	if err == nil {
		err = l.store.DeliverLocal(ctx, d.ID, d.From, d.Recipients, body)
		body.Close()
	}
	detail := "delivered to the local Maildir"
	if err != nil {
		var se *smtp.Error
		if !errors.As(err, &se) {
			// Unknown errors are temporary (house rule 3).
			err = smtp.Wrap(smtp.R(smtp.CodeLocalError, smtp.EnhSystem.Temp(), "local delivery failed"), err)
		}
		detail = "local delivery: " + err.Error()
	}
	// One Maildir delivery for all: one outcome for all.
	return allFailed(d.Recipients, err, detail)
}

var _ queue.Courier = (*Local)(nil)
