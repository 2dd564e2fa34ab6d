package inbound

// forward.go: forwarding keeps SPF working (SRS). A copy an alias
// forwards outside the local domains leaves with an SRS sender in our
// domain; a bounce to such an address is verified and routed back to the
// sender it encodes. The message bytes are never touched (a DKIM
// signature on them stays valid).

import (
	"context"
	"errors"

	"smtpkit/internal/server"
	"smtpkit/internal/smtp"
	"smtpkit/internal/srs"
)

// SRS rewrites forwarded senders and decodes bounce addresses
// (srs.Rewriter).
type SRS interface {
	// Mine reports an address in the SRS domain with an SRS local part.
	Mine(addr smtp.Address) bool
	// Forward returns the sender for a forwarded copy (srs.ErrTooLong
	// when it cannot be rewritten).
	Forward(sender smtp.Address) (smtp.Address, error)
	// Reverse verifies an SRS address and returns the one it encodes
	// (srs.ErrMalformed, srs.ErrForged, srs.ErrExpired).
	Reverse(addr smtp.Address) (smtp.Address, error)
}

// srsReply names why an SRS recipient is refused: 550 5.1.1 for each
// (RFC 5321 §3.6.2; RFC 3463 §3.2: bad destination mailbox address).
func srsReply(err error) error {
	switch {
	case errors.Is(err, srs.ErrForged):
		return smtp.Wrap(errSRSForged.Reply, err)
	case errors.Is(err, srs.ErrExpired):
		return smtp.Wrap(errSRSExpired.Reply, err)
	}
	return smtp.Wrap(errSRSMalformed.Reply, err)
}

// srsRecipient is RCPT TO an SRS address in our domain: accepted only
// when it verifies, and then as the address it encodes would be (a local
// mailbox, or the queue; a bounce to a forwarded message needs no
// authentication to go back to its sender).
func (b *Backend) srsRecipient(rcpt smtp.Address) error {
	orig, err := b.opts.SRS.Reverse(rcpt)
	if err != nil {
		return srsReply(err)
	}
	if b.opts.Local.IsLocal(orig.Domain) {
		_, err := b.opts.Local.Mailboxes(orig)
		return err
	}
	if b.opts.Relay == nil {
		return errNoRelayYet
	}
	return nil
}

// isSRS reports a recipient srsRecipient handles.
func (b *Backend) isSRS(rcpt smtp.Address) bool { return b.opts.SRS != nil && b.opts.SRS.Mine(rcpt) }

// reverseSRS replaces the SRS recipients of rcpts by the addresses they
// encode: local ones are returned with the others for local.Resolve,
// remote ones apart, as forwarded (they leave through the queue with a
// rewritten sender, like an alias's). Each was verified at RCPT; one that
// no longer verifies (expired since) fails the message.
func (b *Backend) reverseSRS(rcpts []smtp.Address) (rest, forwarded []smtp.Address, err error) {
	if b.opts.SRS == nil {
		return rcpts, nil, nil
	}
	rest = make([]smtp.Address, 0, len(rcpts))
	for _, rcpt := range rcpts {
		if !b.opts.SRS.Mine(rcpt) {
			rest = append(rest, rcpt)
			continue
		}
		orig, err := b.opts.SRS.Reverse(rcpt)
		if err != nil {
			return nil, nil, srsReply(err)
		}
		if b.opts.Local.IsLocal(orig.Domain) {
			rest = append(rest, orig)
		} else {
			forwarded = append(forwarded, orig)
		}
	}
	return rest, forwarded, nil
}

// forwardSender is the sender of the forwarded copy of a message from
// from: unchanged for the null sender (a bounce stays "<>", RFC 5321
// §4.5.5), for senders in the local domains (SPF of our own domains
// passes already) and without SRS; otherwise the SRS address.
func (b *Backend) forwardSender(env *server.Envelope) smtp.Address {
	from := env.From
	if b.opts.SRS == nil || from.IsNull() || b.opts.Local.IsLocal(from.Domain) {
		return from
	}
	rewritten, err := b.opts.SRS.Forward(from)
	if err != nil {
		b.opts.Logger.Warn("forwarding with the original sender: SRS cannot rewrite it",
			"msgid", env.ID, "from", from.String(), "err", err)
		return from
	}
	return rewritten
}

// beginQueue opens the queue side of a message: one entry for the remote
// recipients with the sender as it came, and, when forwarding rewrites
// the sender, another for the forwarded ones.
func (b *Backend) beginQueue(ctx context.Context, env *server.Envelope, remote, forwarded []smtp.Address, boxes []string) (RelayWriter, error) {
	fwdFrom := b.forwardSender(env)
	if fwdFrom == env.From || len(forwarded) == 0 {
		all := append(append([]smtp.Address(nil), remote...), forwarded...)
		qe := queueEnvelope(env, all)
		qe.LocalTo = boxes
		return b.opts.Relay.Begin(ctx, qe)
	}
	var ws multiRelay
	if len(remote)+len(boxes) > 0 {
		qe := queueEnvelope(env, remote)
		qe.LocalTo = boxes
		w, err := b.opts.Relay.Begin(ctx, qe)
		if err != nil {
			return nil, err
		}
		ws = append(ws, w)
	}
	qe := queueEnvelope(env, forwarded)
	qe.From = fwdFrom
	w, err := b.opts.Relay.Begin(ctx, qe)
	if err != nil {
		ws.Abort()
		return nil, err
	}
	b.opts.Logger.Info("forwarding with an SRS sender", "msgid", env.ID, "from", env.From.String(),
		"srs", fwdFrom.String(), "rcpts", len(forwarded))
	if len(ws) == 0 {
		return w, nil
	}
	return append(ws, w), nil
}

// multiRelay is the queue side of a message made of several entries (one
// per envelope sender), prepared, published and withdrawn together. The
// first entry is the message's queue id and takes the local mailboxes of
// a failed Maildir commit (Commit step 3): that is the one with the
// original sender whenever there are remote recipients besides the
// forwarded ones.
type multiRelay []RelayWriter

func (m multiRelay) Write(p []byte) (int, error) {
	for _, w := range m {
		if _, err := w.Write(p); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Prepare prepares every entry; if one fails, those prepared are
// withdrawn (Abort) and the rest discarded, so nothing remains.
func (m multiRelay) Prepare() (string, error) {
	var first string
	for i, w := range m {
		id, err := w.Prepare()
		if err != nil {
			m.Abort()
			return "", err
		}
		if i == 0 {
			first = id
		}
	}
	return first, nil
}

// Prepend gives every entry the same fields: the signature is of the
// message, whatever the envelope sender.
func (m multiRelay) Prepend(fields string) error {
	for _, w := range m {
		if err := w.Prepend(fields); err != nil {
			return err
		}
	}
	return nil
}

func (m multiRelay) AddLocal(boxes []string) error { return m[0].AddLocal(boxes) }

func (m multiRelay) Publish() {
	for _, w := range m {
		w.Publish()
	}
}

func (m multiRelay) Withdraw() error {
	var errs []error
	for _, w := range m {
		errs = append(errs, w.Withdraw())
	}
	return errors.Join(errs...)
}

// Abort discards every entry (a prepared one is withdrawn, queue.Writer).
func (m multiRelay) Abort() {
	for _, w := range m {
		w.Abort()
	}
}
