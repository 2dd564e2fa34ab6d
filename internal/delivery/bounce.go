package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

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
	// LMTP, when set, takes the DSNs to mailboxes its routes hand to an
	// LMTP server.
	LMTP *LMTP
	// Logger logs DSNs an LMTP server refused for good; nil discards.
	Logger *slog.Logger
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
	to, reversed, err := b.recipient(bn.To)
	if reversed {
		bn.To = to.String()
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
	boxes := dest.Mailboxes
	if b.LMTP != nil {
		var handed []string
		boxes, handed = nil, nil
		for _, box := range dest.Mailboxes {
			if b.LMTP.Routes().Handed(box) {
				handed = append(handed, box)
			} else {
				boxes = append(boxes, box)
			}
		}
		if len(handed) > 0 {
			if err := b.lmtp(ctx, bn, handed); err != nil {
				return err
			}
		}
		if len(boxes) == 0 {
			return nil
		}
	}
	return b.Local.Deliver(ctx, "bounce-"+bn.ID, smtp.Address{}, boxes, bytes.NewReader(bn.Message))
}

// recipient is the address a DSN to to goes to: to, or (reversed) the
// original sender behind one of our SRS addresses.
func (b *Bounces) recipient(to string) (a smtp.Address, reversed bool, err error) {
	a, err = smtp.ParseAddress(to)
	if err == nil && b.SRS != nil && b.SRS.Mine(a) {
		// One that no longer verifies goes out as it is, and the mx
		// refuses it there.
		if orig, rerr := b.SRS.Reverse(a); rerr == nil {
			return orig, true, nil
		}
	}
	return a, false, err
}

// Recipients resolves the recipient of a DSN as Deliver does, for a queue
// that queues the DSN itself (internal/pgqueue, in the transaction that
// records the failure): the local mailboxes (Maildir or LMTP, delivered
// by the queue's local courier) and the addresses elsewhere.
func (b *Bounces) Recipients(to string) (mailboxes []string, remote []smtp.Address, err error) {
	a, _, err := b.recipient(to)
	if err != nil {
		return nil, nil, err
	}
	if !b.Local.IsLocal(a.Domain) {
		return nil, []smtp.Address{a}, nil
	}
	dest, err := b.Local.Resolve([]smtp.Address{a})
	if err != nil {
		return nil, nil, err
	}
	return dest.Mailboxes, append(dest.Remote, dest.Forwarded...), nil
}

// lmtp hands the DSN bn to the LMTP mailboxes boxes, from the null
// reverse-path. A temporary failure of any is an error (the queue hands
// the DSN off again; the others may get it twice, never not at all); a
// mailbox that refuses it for good does not get it: there is nobody to
// report that to (RFC 3461 §6.2: no DSN about a DSN).
func (b *Bounces) lmtp(ctx context.Context, bn queue.Bounce, boxes []string) error {
	d := &queue.Attempt{ID: "bounce-" + bn.ID, Recipients: boxes, Size: int64(len(bn.Message)),
		SMTPUTF8: bn.SMTPUTF8, EightBit: bn.EightBit,
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(bn.Message)), nil }}
	var errs []error
	for _, res := range b.LMTP.Deliver(ctx, d) {
		var se *smtp.Error
		switch {
		case res.Err == nil:
		case errors.As(res.Err, &se) && se.Permanent():
			if b.Logger != nil {
				b.Logger.Warn("DSN refused by the LMTP server, dropped", "msgid", bn.ID, "rcpt", res.Rcpt, "err", res.Err)
			}
		default:
			errs = append(errs, fmt.Errorf("DSN to %s by LMTP: %w", res.Rcpt, res.Err))
		}
	}
	return errors.Join(errs...)
}
