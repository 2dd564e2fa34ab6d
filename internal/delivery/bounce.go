package delivery

import (
	"bytes"
	"context"

	"smtpkit/internal/local"
	"smtpkit/internal/queue"
	"smtpkit/internal/smtp"
)

// LocalStore is what Bounces needs of local delivery (local.Store).
type LocalStore interface {
	Mailboxes
	IsLocal(domain string) bool
	Resolve(rcpts []smtp.Address) (local.Destinations, error)
}

// Enqueuer queues a DSN for remote delivery (queue.Queue).
type Enqueuer interface {
	EnqueueBounce(ctx context.Context, b queue.Bounce) error
}

// Bounces hands the queue's DSNs to their recipient, the original
// sender (queue.Options.Bounce): a sender in a local domain gets it in
// its mailboxes at once, from the null reverse-path (RFC 3464 §2; RFC
// 5321 §4.5.5), through local delivery; any other sender gets it through
// the queue.
type Bounces struct {
	Local LocalStore
	// Queue takes the DSNs for remote senders. It is the queue whose
	// Options.Bounce this is, so it is set once the queue is open (the
	// queue hands nothing off before Run).
	Queue Enqueuer
	// SRS, when set, decodes a DSN to one of our SRS addresses (a
	// forwarded message bounced here) to the original sender first, as
	// the mx does for bounces from outside (inbound).
	SRS SRS
}

// SRS decodes our SRS addresses (srs.Rewriter).
type SRS interface {
	Mine(addr smtp.Address) bool
	Reverse(addr smtp.Address) (smtp.Address, error)
}

// Deliver implements queue.Options.Bounce. A local sender that is an
// alias resolves as mail to it does: its members in the local domains
// get the DSN in their mailboxes, members elsewhere through the queue
// (queued first: if the mailboxes then fail, the hand-off is retried and
// those members may get it twice, never not at all).
func (b *Bounces) Deliver(ctx context.Context, bn queue.Bounce) error {
	to, err := smtp.ParseAddress(bn.To)
	if err == nil && b.SRS != nil && b.SRS.Mine(to) {
		// One that no longer verifies goes out as it is, and the mx
		// refuses it there.
		if orig, rerr := b.SRS.Reverse(to); rerr == nil {
			to, bn.To = orig, orig.String()
		}
	}
	if err != nil || !b.Local.IsLocal(to.Domain) {
		return b.Queue.EnqueueBounce(ctx, bn)
	}
	dest, err := b.Local.Resolve([]smtp.Address{to})
	if err != nil {
		return err
	}
	for _, fwd := range append(dest.Remote, dest.Forwarded...) {
		fb := bn
		fb.To = fwd.String()
		if err := b.Queue.EnqueueBounce(ctx, fb); err != nil {
			return err
		}
	}
	return b.Local.Deliver(ctx, "bounce-"+bn.ID, smtp.Address{}, dest.Mailboxes, bytes.NewReader(bn.Message))
}
