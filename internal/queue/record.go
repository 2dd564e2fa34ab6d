package queue

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"smtpkit/internal/smtp"
)

// opener returns the Attempt.Open of message id.
func (q *Queue) opener(id string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return q.dir.fs.OpenFile(q.dir.msg(id), os.O_RDONLY, 0) }
}

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
	var err error
	if m.env.done() {
		err = q.remove(id)
		m.deleted = true
		q.forget(id)
		q.log.Info("queue: message done", "msgid", id)
	} else {
		err = q.saveEnv(m)
	}
	if err == nil {
		// Durable before the next attempt is decided on it: a power loss
		// must not bring back as pending a recipient recorded delivered
		// (group commit, shared with the Commits in flight).
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
	r.Detail = oneLine(res.Detail)
	r.RemoteMTA = remoteMTA(res.Detail)
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
		r.State, r.Status, r.Diagnostic, r.DiagType = Delivered, string(smtp.EnhOK), "", ""
		log.Info("delivered")
		return
	}
	r.Status, r.Diagnostic, r.DiagType = describe(res.Err)
	expires := e.Arrival.Add(q.opts.MaxAge)
	switch {
	case isPermanent(res.Err):
		r.State = Failed
		log.Info("delivery failed", "code", r.Diagnostic)
	case !now.Before(expires):
		// RFC 5321 §4.5.4.1: give up after the retry period; X.4.7 is
		// "delivery time expired" (RFC 3463 §3.5).
		r.State, r.Status = Failed, string(smtp.EnhExpired)
		log.Info("delivery expired", "err", r.Diagnostic, "queued_for", now.Sub(e.Arrival).String())
	default:
		r.State = Deferred
		next := now.Add(q.backoff(r.Attempts))
		if next.After(expires) {
			next = expires // the last attempt is made when the message expires
		}
		r.Next = next
		log.Info("delivery deferred", "err", r.Diagnostic, "next", r.Next.Format(time.RFC3339))
	}
	if r.State == Failed && e.From == "" {
		r.Notified = true // RFC 5321 §4.5.5: never bounce a bounce
		log.Warn("bounce dropped: the message has the null sender")
	}
}

// describe turns an attempt's error into DSN terms: status, diagnostic and
// diagnostic type (RFC 3464 §2.3.4, §2.3.6).
func describe(err error) (status, diag, typ string) {
	var se *smtp.Error
	if errors.As(err, &se) {
		rep := se.Reply
		status = string(rep.Enhanced)
		if status == "" {
			status = strconv.Itoa(rep.Code/100) + ".0.0"
		}
		diag = strconv.Itoa(rep.Code)
		if rep.Enhanced != "" {
			diag += " " + string(rep.Enhanced)
		}
		if t := rep.Text(); t != "" {
			diag += " " + t
		}
		return status, oneLine(diag), "smtp"
	}
	return string(smtp.EnhOther.Temp()), oneLine(err.Error()), "X-smtpkit"
}

// remoteMTA extracts the host from a Detail of the form
// "host[ip] said: reply"; "" when no server answered.
func remoteMTA(detail string) string {
	host, _, ok := strings.Cut(detail, " said:")
	if !ok {
		return ""
	}
	host, _, _ = strings.Cut(host, "[")
	return oneLine(strings.TrimSpace(host))
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
