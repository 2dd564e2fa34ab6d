package queue

// prepare.go: what a prepared message (Writer.Prepare) allows besides
// Publish. The inbound fan-out of one message to local Maildirs and the
// queue uses it to stay atomic as the client sees it: the queue copy is
// prepared first; if the Maildir commit then fails, the local recipients
// are added to the queue entry (AddLocal) so that the client still gets
// 250 and every recipient one copy; if even that fails, the entry is
// withdrawn and the client gets 4xx with nothing queued.

import (
	"errors"
	"fmt"
	"slices"

	"smtpkit/internal/smtp"
)

// errNoLocal is AddLocal's error when the queue has no local courier.
var errNoLocal = errors.New("queue: no local courier for local recipients")

// AddLocal adds mailboxes (local addresses) to a prepared message, for
// the Options.Local courier, and makes the change durable before it
// returns. On error the message is as Prepare left it in memory; on disk
// the new envelope may or may not have replaced the old one, so the
// caller withdraws the message.
func (w *Writer) AddLocal(boxes []string) error {
	m, q := w.m, w.q
	if m == nil {
		return errors.New("queue: AddLocal on a message not prepared")
	}
	if q.opts.Local == nil {
		return errNoLocal
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	before := len(m.env.Rcpts)
	now := q.now()
	for _, a := range boxes {
		d := domainOf(a)
		if d == "" {
			m.env.Rcpts = m.env.Rcpts[:before]
			return fmt.Errorf("queue: recipient %q has no domain", a)
		}
		if slices.ContainsFunc(m.env.Rcpts, func(r *rcpt) bool { return r.Local && r.Addr == a }) {
			continue
		}
		r := &rcpt{Addr: a, Domain: d, Local: true, State: Queued, Next: now}
		w.setLocalDSN(r)
		m.env.Rcpts = append(m.env.Rcpts, r)
	}
	err := q.saveEnv(m)
	if err == nil {
		err = q.sync.Sync()
	}
	if err != nil {
		m.env.Rcpts = m.env.Rcpts[:before]
		return storageError(fmt.Errorf("queue: adding local recipients: %w", err))
	}
	return nil
}

// Withdraw takes a prepared message back: it is removed from memory and
// from the spool, and the removal is durable when Withdraw returns nil. On
// error a crash may bring the message back (a message the client was told
// to send again: a possible duplicate).
func (w *Writer) Withdraw() error {
	m, q := w.m, w.q
	if m == nil {
		return errors.New("queue: Withdraw on a message not prepared")
	}
	w.m = nil
	id := m.env.ID
	m.mu.Lock()
	m.deleted = true
	m.mu.Unlock()
	q.forget(id)
	if err := q.removeDurable(id); err != nil {
		return fmt.Errorf("queue: withdrawing %s: %w", id, err)
	}
	q.log.Info("queue: prepared message withdrawn", "msgid", id)
	return nil
}

// setLocalDSN gives the local recipient r its NOTIFY and ORCPT from
// Envelope.LocalDSN.
func (w *Writer) setLocalDSN(r *rcpt) { setLocalDSN(r, w.localDSN) }

// setLocalDSN gives the local recipient r its NOTIFY and ORCPT from
// byAddr (Envelope.LocalDSN).
func setLocalDSN(r *rcpt, byAddr map[string]smtp.RcptDSN) {
	if dsn, ok := byAddr[r.Addr]; ok {
		r.Notify = dsn.Notify.String()
		if !dsn.ORCPT.IsZero() {
			r.ORCPT = &dsn.ORCPT
		}
	}
}
