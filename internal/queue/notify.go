package queue

// notify.go: bounces and delay warnings (RFC 3464, RFC 3461 §6). One DSN
// covers every recipient of a message that failed since the last one; a
// delay warning is sent at most once per message. The hand-off is
// at-least-once: the recipients are marked notified only after
// Options.Bounce returned nil, so a crash in between sends it again.

import (
	"context"
	"io"
	"log/slog"
	"time"

	"smtpkit/internal/dsn"
	"smtpkit/internal/smtp"
)

// warnAt returns when e's delay warning is due, if it still needs one:
// warnings are on, not yet sent, the sender is not null and a recipient
// that wants delay notices (RFC 3461 §4.1: NOTIFY absent or with DELAY)
// has failed temporarily.
func (q *Queue) warnAt(e *envelope) (time.Time, bool) {
	if q.opts.DelayWarning <= 0 || e.Warned || e.From == "" {
		return time.Time{}, false
	}
	for _, r := range e.Rcpts {
		if r.State == Deferred && r.notify().Delay() {
			return e.Arrival.Add(q.opts.DelayWarning), true
		}
	}
	return time.Time{}, false
}

// unnotified returns e's failed recipients whose bounce is not handed off.
func (e *envelope) unnotified() []*rcpt {
	var out []*rcpt
	for _, r := range e.Rcpts {
		if r.State == Failed && !r.Notified {
			out = append(out, r)
		}
	}
	return out
}

// unsucceeded returns e's delivered recipients whose success notice is
// owed and not handed off.
func (e *envelope) unsucceeded() []*rcpt {
	var out []*rcpt
	for _, r := range e.Rcpts {
		if r.State == Delivered && r.Success != "" && !r.SuccessSent {
			out = append(out, r)
		}
	}
	return out
}

// claimNotify reports whether m has a bounce or delay warning due at now
// and, if so, marks it as being notified: no delivery for m starts and no
// other notify runs until notify is done. It waits for m's deliveries in
// flight, so that one DSN covers their failures too. A held message is
// frozen: it neither delivers nor bounces until released.
func (q *Queue) claimNotify(m *message, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.deleted || m.parked || m.prepared || m.env.Held || m.notifying || len(m.busy) > 0 || m.env.bounceAt.After(now) {
		return false
	}
	due := len(m.env.unnotified()) > 0 || len(m.env.unsucceeded()) > 0
	if w, ok := q.warnAt(m.env); ok && !w.After(now) {
		due = true
	}
	m.notifying = due
	return due
}

// notify builds and hands off the DSN claimed by claimNotify: the failure
// report if recipients failed, else the success notice if one is owed
// (RFC 3461 §6.2.1), else the delay warning.
func (q *Queue) notify(ctx context.Context, m *message) {
	now := q.now()
	m.mu.Lock()
	e := m.env
	n := q.dueNotice(e, now)
	id := e.ID
	m.mu.Unlock()

	var err error
	if len(n.rep.Recipients) > 0 {
		err = q.handOff(ctx, id, n.rep, n.full)
	} else {
		q.log.Info("queue: no DSN wanted (NOTIFY)", "msgid", id, "rcpts", len(n.failed))
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	m.notifying = false
	defer q.rearm(m) // runs before the unlock, after persist
	if err != nil {
		e.bounceAt = now.Add(q.opts.RetryMin)
		q.log.Error("queue: handing off a DSN failed, will retry", "msgid", id, "to", e.From,
			"err", err, "retry", e.bounceAt.Format(time.RFC3339))
		return
	}
	e.bounceAt = time.Time{}
	n.mark(e)
	if !m.deleted {
		q.persist(m, nil)
	}
}

// notice is the DSN due for a message: its report (no Recipients when
// NOTIFY wants none), the recipients it covers and whether it returns
// the whole message.
type notice struct {
	rep       dsn.Report
	failed    []*rcpt // a failure report for these
	succeeded []*rcpt // else a success notice for these
	full      bool
}

// dueNotice is the DSN e owes at now: the failure report if recipients
// failed, else the success notice if one is owed (RFC 3461 §6.2.1), else
// the delay warning. The caller knows one is due (claimNotify) and holds
// e's lock.
func (q *Queue) dueNotice(e *envelope, now time.Time) notice {
	var n notice
	n.failed = e.unnotified()
	if len(n.failed) == 0 {
		n.succeeded = e.unsucceeded()
	}
	// RFC 8689 §5: the DSN of a REQUIRETLS message returns nothing of it
	// (dsn.Report.Redacted says why).
	n.rep = dsn.Report{ReportingMTA: q.opts.Hostname, To: e.From, EnvID: e.Meta.EnvID,
		Arrival: e.Arrival, Date: now, Redacted: e.Meta.RequireTLS}
	// RFC 3461 §4.1: a failure notice only for recipients whose NOTIFY
	// asks for one (or is absent); the others are marked notified without.
	if len(n.failed) > 0 {
		for _, r := range n.failed {
			if r.notify().Failure() {
				n.rep.Recipients = append(n.rep.Recipients, dsnRecipient(r, dsn.Failed, time.Time{}))
			}
		}
	} else if len(n.succeeded) > 0 {
		for _, r := range n.succeeded {
			n.rep.Recipients = append(n.rep.Recipients, dsnRecipient(r, dsn.Action(r.Success), time.Time{}))
		}
	} else {
		until := e.Arrival.Add(q.opts.MaxAge)
		for _, r := range e.Rcpts {
			if r.State == Deferred && r.notify().Delay() {
				n.rep.Recipients = append(n.rep.Recipients, dsnRecipient(r, dsn.Delayed, until))
			}
		}
	}
	// RFC 3461 §4.3: RET=FULL asks for the whole message in failure
	// reports; a BINARYMIME message is not text: headers only.
	n.full = len(n.failed) > 0 && e.Meta.Ret == smtp.RetFull && !e.Meta.Binary
	return n
}

// mark records in e that n was handed off (or needed no DSN).
func (n notice) mark(e *envelope) {
	switch {
	case len(n.failed) > 0:
		for _, r := range n.failed {
			r.Notified = true
		}
	case len(n.succeeded) > 0:
		for _, r := range n.succeeded {
			r.SuccessSent = true
		}
	default:
		e.Warned = true
	}
}

// handOff builds the DSN and passes it to Options.Bounce (or queues it).
// full (RET=FULL on a failure report) returns the whole message when it
// is within dsn.MaxFull.
func (q *Queue) handOff(ctx context.Context, id string, rep dsn.Report, full bool) error {
	b, err := buildBounce(id, rep, full, func() ([]byte, error) { return q.readHeaders(id) },
		func() []byte { return q.readFull(id) }, q.log)
	if err != nil {
		return err
	}
	if q.opts.Bounce != nil {
		err = q.opts.Bounce(ctx, b)
	} else {
		err = q.EnqueueBounce(ctx, b)
	}
	if err == nil {
		q.log.Info("queue: DSN handed off", "msgid", id, "kind", bounceKind(b, rep), "to", rep.To, "rcpts", len(rep.Recipients))
	}
	return err
}

// buildBounce builds the DSN of rep for message id: with its headers
// (headers) and, when full, the whole message (whole, nil when too large
// or unreadable), unless the report is redacted.
func buildBounce(id string, rep dsn.Report, full bool, headers func() ([]byte, error), whole func() []byte, log *slog.Logger) (Bounce, error) {
	if !rep.Redacted {
		hdr, err := headers()
		if err != nil {
			log.Warn("queue: reading the original headers for a DSN", "msgid", id, "err", err)
		}
		rep.Headers = hdr
		if full {
			rep.Full = whole()
		}
	}
	msg, err := dsn.Build(rep)
	if err != nil {
		return Bounce{}, err
	}
	return Bounce{ID: id, To: rep.To, Delayed: rep.Delayed(), Message: msg,
		SMTPUTF8: rep.International(), EightBit: rep.International() || rep.EightBit()}, nil
}

// bounceKind names b for the log.
func bounceKind(b Bounce, rep dsn.Report) string {
	switch {
	case b.Delayed:
		return "delay warning"
	case rep.Success():
		return "success notice"
	}
	return "bounce"
}

// readFull returns message id whole, or nil when it is larger than
// dsn.MaxFull or cannot be read (the report then returns its headers).
func (q *Queue) readFull(id string) []byte {
	f, err := q.openMsg(id)
	if err != nil {
		return nil
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, dsn.MaxFull+1))
	if err != nil || len(b) > dsn.MaxFull {
		return nil
	}
	return b
}

// readHeaders returns the start of message id, enough for its header
// block (dsn.MaxHeaders).
func (q *Queue) readHeaders(id string) ([]byte, error) {
	f, err := q.openMsg(id)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, dsn.MaxHeaders+2))
}

// dsnRecipient is r's block of the DSN: the server and its reply when a
// server gave the outcome, else smtpkit's own diagnostic (an older record's
// server reply text among them, then without its Remote-MTA).
func dsnRecipient(r *rcpt, action dsn.Action, until time.Time) dsn.Recipient {
	rc := dsn.Recipient{
		Addr: r.Addr, Action: action, Status: r.Status,
		Diagnostic: r.Diagnostic, DiagnosticType: r.DiagType,
		LastAttempt: r.Last, WillRetryUntil: until,
	}
	if r.ORCPT != nil {
		rc.ORCPT = *r.ORCPT
	}
	if r.Reply != nil {
		rc.RemoteMTA, rc.Reply = r.RemoteMTA, r.Reply.reply()
	}
	return rc
}
