package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"

	"smtpkit/internal/queue"
	"smtpkit/internal/smtp"
)

// Mailboxes stores a message into local mailboxes (local.Store). It is
// all or nothing: on error no mailbox holds the message.
type Mailboxes interface {
	Deliver(ctx context.Context, id string, from smtp.Address, boxes []string, body io.Reader) error
}

// Local is the queue's courier for local recipients: the mailboxes the
// queue took over when their Maildir delivery failed as the message was
// received (queue.Writer.AddLocal), those with NOTIFY=SUCCESS, and those
// delivered by LMTP. It implements queue.Courier.
type Local struct {
	store Mailboxes
	lmtp  *LMTP // nil: no mailbox goes to LMTP
}

// NewLocal returns a Local courier writing into store, and handing the
// mailboxes lmtp's routes name to lmtp (nil: none).
func NewLocal(store Mailboxes, lmtp *LMTP) *Local { return &Local{store: store, lmtp: lmtp} }

// Deliver hands the mailboxes of d that go to LMTP to the LMTP courier
// (each with its own result) and stores the message once for the others.
func (l *Local) Deliver(ctx context.Context, d *queue.Attempt) []queue.Result {
	if l.lmtp == nil {
		return l.maildir(ctx, d)
	}
	var handed, kept []int
	for i, box := range d.Recipients {
		if l.lmtp.Routes().Handed(box) {
			handed = append(handed, i)
		} else {
			kept = append(kept, i)
		}
	}
	if len(handed) == 0 {
		return l.maildir(ctx, d)
	}
	out := make([]queue.Result, len(d.Recipients))
	for _, part := range []struct {
		idx     []int
		deliver func(context.Context, *queue.Attempt) []queue.Result
	}{{handed, l.lmtp.Deliver}, {kept, l.maildir}} {
		if len(part.idx) == 0 {
			continue
		}
		sub := *d
		sub.Recipients = make([]string, len(part.idx))
		sub.DSN = nil
		for k, i := range part.idx {
			sub.Recipients[k] = d.Recipients[i]
		}
		for k, res := range part.deliver(ctx, &sub) {
			out[part.idx[k]] = res
		}
	}
	return out
}

// maildir stores the message once for all of d's recipients: they share
// one outcome. A storage failure is temporary (retried with backoff); a
// recipient that is no longer a local mailbox fails permanently.
func (l *Local) maildir(ctx context.Context, d *queue.Attempt) []queue.Result {
	from, err := reversePath(d.From)
	if err == nil {
		var body io.ReadCloser
		if body, err = d.Open(); err == nil {
			err = l.store.Deliver(ctx, d.ID, from, d.Recipients, body)
			body.Close()
		}
	}
	if err != nil {
		var se *smtp.Error
		if !errors.As(err, &se) {
			// Unknown errors are temporary (house rule 3).
			err = smtp.Wrap(smtp.R(smtp.CodeLocalError, smtp.EnhSystem.Temp(), "local delivery failed"), err)
		}
	}
	// One Maildir delivery for all: one outcome for all. No server said
	// it: the outcome is smtpkit's own.
	return allFailed(d.Recipients, queue.Result{Err: err})
}

var _ queue.Courier = (*Local)(nil)

// reversePath parses the reverse-path the queue keeps as a string ("" is
// the null sender). The queue wrote it from an smtp.Address, so it parses
// back; if it does not, the error is an unknown one: temporary.
func reversePath(from string) (smtp.Address, error) {
	if from == "" {
		return smtp.Address{}, nil
	}
	a, err := smtp.ParseAddress(from)
	if err != nil {
		return smtp.Address{}, fmt.Errorf("queued reverse-path %q: %v", from, err) // %v: not its 501
	}
	return a, nil
}
