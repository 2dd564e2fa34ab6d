package inbound

import (
	"context"
	"log/slog"
	"strings"

	"smtpkit/internal/milter"
	"smtpkit/internal/server"
	"smtpkit/internal/smtp"
)

// filteredWriter is the fan-out of a message that goes through milters.
// The message (our Received field first; with [verify], the
// verification's Authentication-Results field above it: the
// verification, DMARC policy and greylist come first, and what they
// refuse the milters never see) is held until the end of DATA;
// at Commit each milter still taking part gets it (milter.Session.
// Message), and then:
//
//   - a refusal (reject, tempfail, a milter down under tempfail) aborts
//     the fan-out: nothing is stored, the client gets the milter's reply;
//   - a discard (at any stage) aborts it too, but the client gets 250:
//     the milter asked for the message to be dropped, and it is, logged;
//   - otherwise the changes of every milter, in their order, are made as
//     the held message is written into the fan-out (every copy gets
//     them), a changed envelope opens a new fan-out for it, a quarantine
//     sends the local copies to each mailbox's Junk folder (the queue
//     copy is delivered: it is not ours to hold), and the fan-out
//     commits (writer.Commit: 250 only once durable).
type filteredWriter struct {
	b    *Backend
	ctx  context.Context
	env  *server.Envelope
	m    *milterState
	out  *writer // the fan-out opened at Begin, or reopened for a changed envelope
	held *hold
	// quarantine: the verification asked for the local copies to go to
	// Junk (DMARC p=quarantine); made at Commit, on the final fan-out.
	quarantine bool
	log        *slog.Logger
}

// filtering wraps the fan-out out of env for the milters of m.
func (b *Backend) filtering(ctx context.Context, env *server.Envelope, out *writer, m *milterState) *filteredWriter {
	return &filteredWriter{b: b, ctx: ctx, env: env, m: m, out: out,
		held: &hold{dir: b.opts.HoldDir, pool: &b.holds}, log: b.opts.Logger.With("msgid", env.ID)}
}

func (w *filteredWriter) Write(p []byte) (int, error) { return w.held.Write(p) }

func (w *filteredWriter) Abort() {
	w.m.abort()
	w.held.Close()
	w.out.Abort()
}

func (w *filteredWriter) Commit() (string, error) {
	defer w.held.Close()
	if w.m.discard {
		return w.discarded("")
	}
	var edits []*milter.Edits
	for i, ms := range w.m.sessions {
		v, e := ms.Message(w.held.Reader(), w.env.ID)
		w.b.milterSaw(w.env.Session, w.m.names[i], "eom", v)
		switch {
		case v.Refused():
			w.Abort()
			return "", v.Error()
		case v.Action == milter.Discard:
			return w.discarded(w.m.names[i])
		}
		if e != nil {
			logMilterEdits(w.log.With("milter", w.m.names[i]), e)
			if e.Quarantine != "" {
				w.b.milterEvent(w.m.names[i], "quarantine")
			}
			edits = append(edits, e)
		}
	}
	e := mergeEdits(edits)
	if e.Envelope() {
		if err := w.reopen(e); err != nil {
			return "", err
		}
		if w.out == nil {
			return w.discarded("")
		}
	}
	if w.quarantine || e != nil && e.Quarantine != "" {
		if err := quarantineLocal(w.out); err != nil {
			w.out.Abort()
			return "", err
		}
		if e != nil && e.Quarantine != "" {
			w.log.Info("milter quarantine: local copies into Junk", "reason", e.Quarantine)
		}
	}
	if err := e.Apply(w.held.Reader(), w.out); err != nil {
		w.out.Abort()
		return "", err
	}
	return w.out.Commit()
}

// discarded drops the message as a milter asked: the client gets 250
// (SMFIR_DISCARD: the message is accepted and thrown away).
func (w *filteredWriter) discarded(by string) (string, error) {
	w.m.abort()
	if w.out != nil {
		w.out.Abort()
	}
	w.log.Info("message discarded by milter", "milter", by, "from", w.env.From.String(), "rcpts", len(w.env.Recipients))
	return w.env.ID, nil
}

// reopen replaces the fan-out by one for the envelope the milters asked
// for: the sender changed, recipients removed and added. An added
// recipient that does not resolve (an unknown local address, a remote
// one without a queue) is left out with a warning rather than failing
// the whole message. With no recipient left, w.out is nil: discarded.
func (w *filteredWriter) reopen(e *milter.Edits) error {
	env := *w.env
	if e.ChangeFrom {
		from, err := parseMilterAddress(e.From, true)
		if err != nil {
			w.log.Warn("milter changed the sender to an invalid address; kept", "from", e.From, "err", err)
		} else {
			env.From = from
		}
	}
	var rcpts []smtp.Address
	var dsn []smtp.RcptDSN // parallel to rcpts: a kept recipient keeps its NOTIFY and ORCPT (RFC 3461)
	for i, r := range w.env.Recipients {
		if !containsFold(e.DelRcpt, r.String()) {
			rcpts = append(rcpts, r)
			if i < len(w.env.DSN) {
				dsn = append(dsn, w.env.DSN[i])
			} else {
				dsn = append(dsn, smtp.RcptDSN{})
			}
		}
	}
	for _, s := range e.AddRcpt {
		a, err := parseMilterAddress(s, false)
		if err == nil {
			err = w.b.milterRecipientOK(a)
		}
		if err != nil {
			w.log.Warn("milter added a recipient that is not accepted; left out", "rcpt", s, "err", err)
			continue
		}
		if !containsAddr(rcpts, a) {
			rcpts = append(rcpts, a)
			dsn = append(dsn, smtp.RcptDSN{})
		}
	}
	env.Recipients, env.DSN = rcpts, dsn
	w.out.Abort()
	w.out = nil
	if len(rcpts) == 0 {
		return nil
	}
	out, err := w.b.fanout(w.ctx, &env)
	if err != nil {
		return err
	}
	w.out = out
	return nil
}

// milterRecipientOK checks a recipient a milter added: a local one must
// resolve, a remote one needs the queue.
func (b *Backend) milterRecipientOK(a smtp.Address) error {
	if b.opts.Local.IsLocal(a.Domain) {
		_, err := b.opts.Local.Mailboxes(a)
		return err
	}
	if b.opts.Relay == nil {
		return errNoRelayYet
	}
	return nil
}

// parseMilterAddress parses an address a milter gave, "" being the null
// sender where null is allowed.
func parseMilterAddress(s string, null bool) (smtp.Address, error) {
	if s == "" && null {
		return smtp.Address{}, nil
	}
	return smtp.ParseAddress(s)
}

func containsFold(list []string, s string) bool {
	for _, l := range list {
		if strings.EqualFold(l, s) {
			return true
		}
	}
	return false
}

func containsAddr(list []smtp.Address, a smtp.Address) bool {
	for _, l := range list {
		if strings.EqualFold(l.String(), a.String()) {
			return true
		}
	}
	return false
}

// mergeEdits joins the changes of several milters, in their order: the
// header changes one after the other, the last body replacement and
// sender change, every recipient change, the first quarantine reason.
// Each milter saw the message as it arrived, not as the one before it
// changed it.
func mergeEdits(all []*milter.Edits) *milter.Edits {
	if len(all) <= 1 {
		if len(all) == 1 {
			return all[0]
		}
		return nil
	}
	e := &milter.Edits{}
	for _, a := range all {
		e.Header = append(e.Header, a.Header...)
		if a.ReplaceBody {
			e.Body, e.ReplaceBody = a.Body, true
		}
		if a.ChangeFrom {
			e.From, e.ChangeFrom = a.From, true
		}
		e.AddRcpt = append(e.AddRcpt, a.AddRcpt...)
		e.DelRcpt = append(e.DelRcpt, a.DelRcpt...)
		if e.Quarantine == "" {
			e.Quarantine = a.Quarantine
		}
	}
	return e
}

// quarantineLocal sends the local copies of the fan-out w to the Junk
// folders (local.Writer.Quarantine).
func quarantineLocal(w server.MessageWriter) error {
	switch w := w.(type) {
	case *writer:
		if w.local != nil {
			return w.local.Quarantine()
		}
	case *filteredWriter:
		w.quarantine = true // the milters may still change the fan-out
	case *verifyingWriter:
		return quarantineLocal(w.out)
	}
	return nil
}
