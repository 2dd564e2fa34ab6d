package local

import (
	"context"
	"io"
	"strings"

	"smtpkit/internal/smtp"
)

// Deliver stores the complete message body from the reverse-path from
// (the zero Address is the null sender, as for a bounce) into boxes,
// local mailbox addresses: the queue's courier for local recipients and
// bounces to local senders call it. It is all or nothing: on error no
// mailbox holds the message. A mailbox outside the local domains fails
// with 550 5.1.1; a storage failure is 452 4.3.1. id names the message in
// the log.
func (s *Store) Deliver(_ context.Context, id string, from smtp.Address, boxes []string, body io.Reader) error {
	for _, box := range boxes {
		at := strings.LastIndexByte(box, '@')
		if at < 0 || !s.IsLocal(box[at+1:]) {
			return errNotLocal(box)
		}
	}
	if len(boxes) == 0 {
		return nil
	}
	w, err := s.Begin(from, boxes)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w.msg, body); err != nil {
		w.Abort()
		return storageError(err)
	}
	if err := w.Commit(); err != nil {
		return err
	}
	s.opts.Logger.Info("delivered", "msgid", id, "from", from.String(), "mailboxes", len(boxes))
	return nil
}
