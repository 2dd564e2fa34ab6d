package inbound

import (
	"io"
	"log/slog"

	"smtpkit/internal/local"
)

// writer fans the message out to the local delivery and the queue entry.
type writer struct {
	id    string   // the envelope id, used when there is no queue id
	boxes []string // the local mailboxes of local
	local *local.Writer
	queue RelayWriter
	sign  MessageSigner // the queue copy's DKIM signature, or nil (sign.go)
	log   *slog.Logger
}

func (w *writer) Write(p []byte) (int, error) {
	if w.local != nil {
		if _, err := w.local.Write(p); err != nil {
			return 0, err
		}
	}
	if w.queue != nil {
		if _, err := w.queue.Write(p); err != nil {
			return 0, err
		}
	}
	if w.sign != nil {
		w.sign.Write(p) // never fails; Finish tells
	}
	return len(p), nil
}

// Commit stores the message so that, as the client sees it, the fan-out is
// all or nothing: a 250 means every recipient gets exactly one copy, an
// error means nothing was stored or queued and the client may send the
// whole message again.
//
//  0. The queue copy's DKIM signature is finished and kept with it
//     (signQueued): made once, before the 250.
//  1. The queue copy is prepared: durable, but not yet released for
//     delivery. If that fails, nothing is stored (4xx).
//  2. The Maildir copies are committed.
//  3. If that fails, the local mailboxes are added to the prepared queue
//     entry, durably, and the queue delivers them into their Maildirs
//     later (its local courier); the client gets 250. If even that fails,
//     the queue entry is withdrawn and the client gets 452 4.3.1.
//  4. The queue entry is published.
//
// The id is the queue id when there is one.
func (w *writer) Commit() (string, error) {
	if w.queue == nil {
		if w.local != nil {
			if err := w.local.Commit(); err != nil {
				return "", err
			}
		}
		return w.id, nil
	}
	if err := w.signQueued(); err != nil {
		w.Abort()
		return "", err
	}
	q := w.queue
	w.queue = nil
	id, err := q.Prepare()
	if err != nil {
		w.Abort()
		return "", err
	}
	if w.local != nil {
		if err := w.local.Commit(); err != nil {
			if err := w.queueLocal(q, id, err); err != nil {
				return "", err
			}
		}
	}
	q.Publish()
	return id, nil
}

// queueLocal is step 3 of Commit: the Maildir commit failed with cause
// (452 4.3.1) after the queue copy was prepared.
func (w *writer) queueLocal(q RelayWriter, id string, cause error) error {
	log := w.log.With("msgid", id, "mailboxes", len(w.boxes))
	aerr := q.AddLocal(w.boxes)
	if aerr == nil {
		log.Warn("maildir delivery failed; local recipients queued for a later delivery", "err", cause)
		return nil
	}
	if werr := q.Withdraw(); werr != nil {
		// The queue copy may survive a crash while the client sends the
		// message again: its remote recipients may get it twice.
		log.Error("maildir delivery failed and the queue copy could not be withdrawn",
			"err", cause, "queue_err", aerr, "withdraw_err", werr, "possible_duplicate", true)
	} else {
		log.Warn("maildir delivery failed; queue copy withdrawn, the client will retry", "err", cause, "queue_err", aerr)
	}
	return cause
}

func (w *writer) Abort() {
	if w.local != nil {
		w.local.Abort()
	}
	if w.queue != nil {
		w.queue.Abort()
	}
	if w.sign != nil {
		w.sign.Abort()
		w.sign = nil
	}
}

var _ io.Writer = (*writer)(nil)
