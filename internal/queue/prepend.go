package queue

import (
	"errors"
	"io"
	"strings"
)

// Prepend adds header fields that every remote delivery attempt puts
// before the message's bytes: the DKIM-Signature fields made while the
// message was received (internal/dkim), signed once and kept in
// Meta.Prepend so that each attempt sends them byte for byte. fields are
// whole CRLF lines. It must come before Prepare (or Commit); Size counts
// the fields, as the SIZE a courier announces must.
func (w *Writer) Prepend(fields string) error {
	if w.done {
		return errors.New("queue: prepend after commit or abort")
	}
	if err := checkFields(fields); err != nil {
		return err
	}
	w.env.Meta.Prepend += fields
	w.env.Size += int64(len(fields))
	return nil
}

// checkFields accepts CRLF lines only (house rule 1: no bare CR or LF
// goes out), none of them empty (that would end the header).
func checkFields(fields string) error {
	if fields == "" {
		return nil
	}
	if !strings.HasSuffix(fields, "\r\n") {
		return errors.New("queue: prepended fields must end with CRLF")
	}
	for _, line := range strings.Split(strings.TrimSuffix(fields, "\r\n"), "\r\n") {
		if line == "" || strings.ContainsAny(line, "\r\n") {
			return errors.New("queue: prepended fields must be non-empty CRLF lines")
		}
	}
	return nil
}

// opener returns the Attempt.Open of message e: Meta.Prepend, then the
// stored bytes (raw: local deliveries, which Meta.Prepend is not for).
func (q *Queue) opener(e *envelope, raw bool) func() (io.ReadCloser, error) {
	prefix := e.Meta.Prepend // never changes once committed
	id := e.ID
	return func() (io.ReadCloser, error) {
		f, err := q.openMsg(id)
		if err != nil || prefix == "" || raw {
			return f, err
		}
		return prefixed{Reader: io.MultiReader(strings.NewReader(prefix), f), Closer: f}, nil
	}
}

type prefixed struct {
	io.Reader
	io.Closer
}
