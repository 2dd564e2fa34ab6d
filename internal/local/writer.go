package local

import (
	"fmt"
	"io"

	"smtpkit/internal/maildir"
	"smtpkit/internal/smtp"
)

// Writer is one message on its way into local mailboxes: written once,
// then committed into every mailbox's new/ at once. Write, Commit and
// Abort must not be called concurrently.
type Writer struct {
	s    *Store
	dirs []maildir.Dir
	msg  *maildir.Message
}

// Begin starts a message from the reverse-path from into boxes (local
// mailboxes, as Resolve returns them, at least one), creating their
// Maildirs on first use. RFC 5321 §4.4: the final delivery adds
// Return-Path, so the message starts with it; the caller writes the rest.
func (s *Store) Begin(from smtp.Address, boxes []string) (*Writer, error) {
	dirs, err := s.dirs(boxes)
	if err != nil {
		return nil, err
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("local: a message for no mailbox")
	}
	msg, err := s.opts.Writer.NewMessage(dirs[0])
	if err != nil {
		s.forget(dirs)
		return nil, storageError(err)
	}
	w := &Writer{s: s, dirs: dirs, msg: msg}
	if _, err := fmt.Fprintf(msg, "Return-Path: <%s>\r\n", from.String()); err != nil {
		w.Abort()
		return nil, storageError(err)
	}
	return w, nil
}

// Write appends p to the message. A failure is 452 4.3.1.
func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.msg.Write(p)
	if err != nil {
		return n, storageError(err)
	}
	return n, nil
}

// Commit makes the message durable and links it into every mailbox
// (maildir.Message.Commit). On error (452 4.3.1) no mailbox holds it, and
// the Maildirs are looked at again on the next message.
func (w *Writer) Commit() error {
	if _, err := w.msg.Commit(w.dirs); err != nil {
		w.s.forget(w.dirs)
		return storageError(err)
	}
	return nil
}

// Abort discards the message; it does nothing after Commit.
func (w *Writer) Abort() { w.msg.Abort() }

var _ io.Writer = (*Writer)(nil)
