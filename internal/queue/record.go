package queue

import (
	"context"
	"errors"
	"strings"
	"time"

	"smtpkit/internal/dsn"
	"smtpkit/internal/smtp"
)

// errNoResult stands for a recipient the Courier returned no Result for.
var errNoResult = errors.New("courier returned no result for this recipient")

// record applies a delivery attempt's results to the message's state and
// saves it. When ctx is done the attempt was abandoned: only final
// outcomes (delivered, or a server's permanent refusal) are kept, so a
// cancelled attempt neither counts nor delays the next one.
func (q *Queue) record(ctx context.Context, j *job, results []Result) {
	byRcpt := make(map[string]Result, len(results))
	for _, r := range results {
		byRcpt[r.Rcpt] = r
	}
	abandoned := ctx.Err() != nil
	now := q.now()
	m := j.m
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.busy, j.group)
	if m.deleted {
		return
	}
	defer q.rearm(m) // runs before the unlock
	changed := false
	var delivered []string // a lost state change repeats these deliveries
	for _, addr := range j.rcpts {
		r := m.env.findPending(addr, j.local)
		if r == nil {
			continue
		}
		res, ok := byRcpt[addr]
		if !ok {
			res = Result{Rcpt: addr, Err: errNoResult}
		}
		if abandoned && res.Err != nil && !isPermanent(res.Err) {
			continue
		}
		q.apply(m.env, r, res, now)
		changed = true
		if res.Err == nil {
			delivered = append(delivered, addr)
		}
	}
	if changed {
		q.persist(m, delivered)
	}
}

// findPending returns the pending recipient addr (a local one or not).
func (e *envelope) findPending(addr string, local bool) *rcpt {
	for _, r := range e.Rcpts {
		if r.Addr == addr && r.Local == local && r.pending() {
			return r
		}
	}
	return nil
}

// persist saves m after a state change, or removes it when it is done,
// and makes that durable. The caller holds m.mu. delivered are the recipients this change marks
// delivered: if the change cannot be saved, a restart delivers them again,
// so the failure is logged as a possible duplicate.
func (q *Queue) persist(m *message, delivered []string) {
	id := m.env.ID
	// Durable before the next attempt is decided on it: a power loss
	// must not bring back as pending a recipient recorded delivered
	// (group commit, shared with the Commits in flight; a removal may be
	// made durable by its journal record instead, see removeDurable).
	var err error
	if m.env.done() {
		err = q.removeDurable(id)
		m.deleted = true
		q.forget(id)
		q.log.Info("queue: message done", "msgid", id)
	} else if err = q.saveEnv(m); err == nil {
		err = q.sync.Sync()
	}
	if err == nil {
		return
	}
	// The state in memory is ahead of the disk; a crash now repeats the
	// attempt (duplicate, never loss).
	attrs := []any{"msgid", id, "err", err}
	if len(delivered) > 0 {
		attrs = append(attrs, "possible_duplicate", true, "rcpt", delivered)
	}
	q.log.Error("queue: saving state; a restart repeats the last attempt", attrs...)
}

// isPermanent reports an *smtp.Error with a 5xx reply. Everything else,
// known or not, is temporary (house rule 3).
func isPermanent(err error) bool {
	var se *smtp.Error
	return errors.As(err, &se) && se.Permanent()
}

// apply records one recipient's outcome: delivered, failed (a permanent
// reply, or a temporary one after MaxAge) or deferred with backoff.
func (q *Queue) apply(e *envelope, r *rcpt, res Result, now time.Time) {
	r.Attempts++
	r.Last = now
	detail := res.Detail()
	if r.Local && res.Remote == (Remote{}) {
		detail = "local Maildir: " + detail
	}
	r.Detail = oneLine(detail)
	if res.PossibleDuplicate {
		r.MaybeDelivered = true
	}
	log := q.log.With("msgid", e.ID, "rcpt", r.Addr, "attempt", r.Attempts, "detail", r.Detail)
	if r.MaybeDelivered {
		// RFC 1047: an earlier attempt (or this one) lost the connection
		// after the end of data; the next hop may hold a copy already.
		log = log.With("possible_duplicate", true)
	}
	if res.Err == nil {
		r.State, r.Status = Delivered, string(smtp.EnhOK)
		r.RemoteMTA, r.Reply, r.Diagnostic, r.DiagType = "", nil, "", ""
		r.Success = successOwed(e, r, res)
		if r.Success != "" && res.Said() {
			r.RemoteMTA, r.Reply = res.Remote.Host, saveReply(res.Reply)
		}
		log.Info("delivered")
		return
	}
	r.setOutcome(res)
	expires := e.Arrival.Add(q.opts.MaxAge)
	switch {
	case isPermanent(res.Err):
		r.State = Failed
		log.Info("delivery failed", "code", r.diagnostic())
	case !now.Before(expires):
		// RFC 5321 §4.5.4.1: give up after the retry period; X.4.7 is
		// "delivery time expired" (RFC 3463 §3.5).
		r.State, r.Status = Failed, string(smtp.EnhExpired)
		log.Info("delivery expired", "err", r.diagnostic(), "queued_for", now.Sub(e.Arrival).String())
	default:
		r.State = Deferred
		next := now.Add(q.backoff(r.Attempts))
		if next.After(expires) {
			next = expires // the last attempt is made when the message expires
		}
		r.Next = next
		log.Info("delivery deferred", "err", r.diagnostic(), "next", r.Next.Format(time.RFC3339))
	}
	if r.State == Failed && e.From == "" {
		r.Notified = true // RFC 5321 §4.5.5: never bounce a bounce
		log.Warn("bounce dropped: the message has the null sender")
	}
}

// setOutcome records a failed attempt in DSN terms: the status from Err;
// the server and its reply when a server said it (Remote-MTA and an "smtp"
// Diagnostic-Code), else smtpkit's own diagnostic and no Remote-MTA.
func (r *rcpt) setOutcome(res Result) {
	status, diag, typ := describe(res.Err)
	r.Status = status
	if res.Said() {
		r.RemoteMTA, r.Reply, r.Diagnostic, r.DiagType = oneLine(res.Remote.Host), saveReply(res.Reply), "", ""
		return
	}
	r.RemoteMTA, r.Reply, r.Diagnostic, r.DiagType = "", nil, diag, typ
}

// oneLine bounds text from a peer for storage and logs: control characters
// become spaces, at most 1000 bytes are kept.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if len(s) > 1000 {
		s = strings.ToValidUTF8(s[:1000], "")
	}
	return s
}

// successOwed is the success notice r is owed now that it was delivered
// (RFC 3461 §6.2.1): none unless NOTIFY has SUCCESS and the sender is not
// null; "delivered" for a Maildir of ours (§6.2.1.1 final delivery);
// "relayed" for a next hop that was not offered the NOTIFY because it has
// no DSN (§6.2.1.2); none for a next hop that took NOTIFY itself.
func successOwed(e *envelope, r *rcpt, res Result) string {
	switch {
	case e.From == "" || !r.notify().Success():
		return ""
	case r.Local:
		return string(dsn.Delivered)
	case res.Relayed:
		return string(dsn.Relayed)
	}
	return ""
}
