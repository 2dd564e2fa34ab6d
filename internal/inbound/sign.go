package inbound

import (
	"io"

	"smtpkit/internal/server"
)

// MessageSigner is one message's DKIM signature in the making
// (internal/dkim.Message): the message's bytes go in as they are
// received, Finish gives the header fields to prepend ("" when no key
// applies to the message's From domain).
type MessageSigner interface {
	io.Writer
	Finish() (string, error)
	Skipped() error // why Finish gave no fields
	Abort()
}

// signer starts the signature of the queue copy of env, or returns nil.
// Only mail from an authenticated submitter (its sender was checked
// against the account, see Sender) or a client in the trusted networks
// (our own hosts, trusted.go) is signed: signing what arrives from
// anyone else on mx — forwarded through an alias, say — would turn a
// forgery of our domain into mail our key vouches for. Local copies are
// never signed (they do not leave).
func (b *Backend) signer(env *server.Envelope) MessageSigner {
	if b.opts.Sign == nil || !submitter(env.Session) {
		return nil
	}
	// The From domain must go with the envelope sender, whose ownership
	// Sender checked: a user of one hosted domain cannot have mail signed
	// for another.
	return b.opts.Sign(env.From.DomainLower())
}

// signQueued finishes the signature and hands the fields to the queue
// copy, which sends them before the message in every attempt. A message
// no key applies to goes unsigned; a signing failure is an unknown error,
// answered 451 (house rule 3).
func (w *writer) signQueued() error {
	s := w.sign
	if s == nil {
		return nil
	}
	w.sign = nil
	fields, err := s.Finish()
	if err != nil {
		w.log.Error("dkim: signing failed", "err", err)
		return err
	}
	if fields == "" {
		w.log.Debug("dkim: not signed", "reason", s.Skipped())
		return nil
	}
	return w.queue.Prepend(fields)
}
