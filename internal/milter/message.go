package milter

import (
	"bufio"
	"io"

	gomilter "github.com/emersion/go-milter"
)

// Message sends the message of the current transaction, as it will be
// stored (our Received field first, as Postfix sends its own): each
// header field (SMFIC_HEADER), the end of the header (SMFIC_EOH), the
// body in chunks (SMFIC_BODY, until the milter says SMFIR_SKIP) and the
// end of the message (SMFIC_BODYEOB, with the macro i, the message id).
// It returns the milter's verdict and, when it did not refuse, the
// modifications it asked for. A milter that settled the message at MAIL
// or RCPT, or has no say any more, is not asked: the verdict is Accept.
func (s *Session) Message(r io.Reader, id string) (Verdict, *Edits) {
	if v, asked := s.idle(); !asked {
		return v, nil
	}
	if s.settled || !s.txn {
		return Verdict{Action: Accept, Cached: true}, nil
	}
	s.txn = false
	br := bufio.NewReaderSize(r, 64<<10)
	fields, err := readHeader(br)
	if err != nil {
		return s.fail(err), nil
	}
	if err := s.cs.Macros(gomilter.CodeHeader, "i", id); err != nil {
		return s.fail(err), nil
	}
	for _, f := range fields {
		if v := s.answer(s.cs.HeaderField(f.name, f.value())); v.Action != Continue {
			return s.settle(v), nil
		}
	}
	if v := s.answer(s.cs.HeaderEnd()); v.Action != Continue {
		return s.settle(v), nil
	}
	if v, skipped := s.body(br); !skipped && v.Action != Continue {
		return s.settle(v), nil
	}
	if err := s.cs.Macros(gomilter.CodeEOB, "i", id); err != nil {
		return s.fail(err), nil
	}
	mods, act, err := s.cs.End()
	if err != nil {
		return s.fail(err), nil
	}
	v := s.answer(act, nil)
	if v.Action == Continue {
		v.Action = Accept // at the end of the message, continue is accept
	}
	if v.Err != nil || v.Refused() || v.Action == Discard {
		return v, nil
	}
	e, err := edits(mods)
	if err != nil {
		return s.fail(err), nil
	}
	return v, e
}

// body sends the body in chunks of at most MaxBodyChunk octets; skipped
// reports the milter's SMFIR_SKIP (it wants no more of it).
func (s *Session) body(br *bufio.Reader) (v Verdict, skipped bool) {
	buf := make([]byte, gomilter.MaxBodyChunk)
	for {
		n, err := io.ReadFull(br, buf)
		if n > 0 {
			act, aerr := s.cs.BodyChunk(buf[:n])
			if aerr == nil && act.Code == gomilter.ActSkip {
				return Verdict{Action: Continue}, true
			}
			if v := s.answer(act, aerr); v.Action != Continue {
				return v, false
			}
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return Verdict{Action: Continue}, false
		default:
			return s.fail(err), false
		}
	}
}

// settle ends the message's dialogue after a verdict other than continue
// at a header or body stage: the milter resets itself (no SMFIC_ABORT is
// due after an accept, reject, tempfail or discard).
func (s *Session) settle(v Verdict) Verdict {
	if v.Action == Continue {
		v.Action = Accept
	}
	return v
}
