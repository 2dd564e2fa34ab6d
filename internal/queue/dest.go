package queue

// dest.go: per-destination concurrency, after Postfix's queue manager
// (qmgr(8), SCHEDULER_README): a destination starts at a few parallel
// deliveries (slow start), gains one for every delivery that reached the
// server, loses one for every attempt that failed to connect or to
// complete the handshake, never below one nor above Options.PerDomain,
// and forgets what it learnt after an idle spell. Options.Concurrency
// bounds the deliveries in flight across all destinations.
//
// A destination that fails at a window of one — about five failed
// attempts in a row from the start, with no delivery between: Postfix's
// failed pseudo-cohort at its initial concurrency — is suspended (Postfix:
// "dead") for Options.RetryMin: its due messages are deferred without an
// attempt, each recorded as a deferral that says why, so that backoff,
// delay warnings and max_age bounces run as after a real failure, and a
// dead host costs no connection attempt (nor its timeout) per message.
// When the spell ends the destination starts over at the initial window:
// those attempts are the probes, and a delivery ends the suspension.
// Flush (`queue flush`) lifts every suspension.

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"smtpkit/internal/smtp"
)

// initialWindow is the concurrency a destination starts at (Postfix's
// initial_destination_concurrency).
const initialWindow = 5

// window is one destination's adaptive concurrency limit. Its zero value
// is not ready: newWindow sets the bounds.
type window struct {
	initial, max int
	cur          int
	last         time.Time     // the last feedback
	forget       time.Duration // after this long without feedback, start over at initial
}

func newWindow(max int, forget time.Duration) window {
	w := window{initial: min(initialWindow, max), max: max, forget: forget}
	w.cur = w.initial
	return w
}

// limit is how many deliveries may be in flight at now.
func (w *window) limit(now time.Time) int {
	if !w.last.IsZero() && now.Sub(w.last) > w.forget {
		w.cur, w.last = w.initial, time.Time{}
	}
	return w.cur
}

// feedback is what one finished attempt says about its destination.
type feedback int

const (
	neutral  feedback = iota // abandoned (shutdown): says nothing
	positive                 // the server was reached and answered
	negative                 // no connection, or no usable session (Postfix: "connection or handshake failure")
)

// feed applies one attempt's feedback at now: +1 for positive, −1 for
// negative (Postfix's default feedback of 1), within [1, max].
func (w *window) feed(now time.Time, f feedback) {
	w.limit(now) // an old state is forgotten first
	switch f {
	case positive:
		w.cur = min(w.cur+1, w.max)
	case negative:
		w.cur = max(w.cur-1, 1)
	default:
		return
	}
	w.last = now
}

// idle reports whether w holds nothing worth remembering at now.
func (w *window) idle(now time.Time) bool { return w.limit(now) == w.initial }

// judge classifies an attempt's results. A delivery, or any reply from a
// server other than 421 (it talked, if only to refuse a recipient), is
// positive; an attempt in which every recipient failed temporarily
// without a server's reply (refused, timed out, TLS failed) or with a 421
// (the server closed the session) is negative; an abandoned one neutral.
func judge(abandoned bool, results []Result) feedback {
	if abandoned || len(results) == 0 {
		return neutral
	}
	for _, r := range results {
		if r.Err == nil || (r.Said() && r.Reply.Code != replyClosing) {
			return positive
		}
		if !r.Said() && isPermanent(r.Err) {
			return neutral // our own decision (policy, route), not the destination's health
		}
	}
	return negative
}

// replyClosing is 421, "service not available, closing transmission
// channel" (RFC 5321 §4.2.3): the session failed, not a recipient.
const replyClosing = 421

// dest is a destination group's scheduling state: its window, the
// deliveries in flight and the items waiting for a slot (FIFO). Guarded
// by Queue.mu.
type dest struct {
	name       string
	win        window
	inflight   int
	head, tail *item
	waiting    int
	// until is the end of a suspension, why its deferral (zero, nil: none).
	until time.Time
	why   error
}

// suspendedAt reports whether d is suspended at now.
func (d *dest) suspendedAt(now time.Time) bool { return now.Before(d.until) }

// push appends it to d's waiting list.
func (d *dest) push(it *item) {
	it.wait, it.prev, it.next = d, d.tail, nil
	if d.tail != nil {
		d.tail.next = it
	} else {
		d.head = it
	}
	d.tail = it
	d.waiting++
}

// unlink takes it out of d's waiting list.
func (d *dest) unlink(it *item) {
	if it.prev != nil {
		it.prev.next = it.next
	} else {
		d.head = it.next
	}
	if it.next != nil {
		it.next.prev = it.prev
	} else {
		d.tail = it.prev
	}
	it.wait, it.prev, it.next = nil, nil, nil
	d.waiting--
}

// destOf returns group's state, creating it. The caller holds q.mu.
func (q *Queue) destOf(group string) *dest {
	d := q.dests[group]
	if d == nil {
		d = &dest{name: group, win: newWindow(q.opts.PerDomain, q.opts.RetryMin)}
		q.dests[group] = d
	}
	return d
}

// acquire takes a delivery slot for it's group at now, or parks it in the
// group's waiting list when the group is at its window. The caller holds
// q.mu and has checked the global limit.
func (q *Queue) acquire(it *item, now time.Time) bool {
	d := q.destOf(it.group)
	it.suspended = nil
	if d.suspendedAt(now) {
		// No attempt: the job is a deferral (runJob). It holds a slot
		// like any job, beyond the window, for as long as it takes to
		// record.
		it.suspended = d.why
		d.inflight++
		q.inflight++
		return true
	}
	if d.inflight >= d.win.limit(now) {
		d.push(it)
		return false
	}
	d.inflight++
	q.inflight++
	return true
}

// suspend starts a suspension of group at now, for Options.RetryMin, its
// deferrals citing why (the failure that ended the last window), and logs
// it; nothing when group is suspended already. The caller holds q.mu, and
// calls it when release reported its floor.
func (q *Queue) suspend(group string, now time.Time, why string) {
	d := q.dests[group]
	if d == nil || d.suspendedAt(now) {
		return
	}
	d.until = now.Add(q.opts.RetryMin)
	until := d.until.UTC().Format(time.RFC3339)
	d.why = smtp.Wrap(smtp.R(smtp.CodeLocalError, smtp.EnhNoAnswer.Temp(),
		fmt.Sprintf("delivery to %s suspended until %s after repeated failures; last: %s", group, until, why)), errSuspended)
	q.log.Warn("queue: destination suspended after repeated failures", "destination", group, "until", until, "last", why)
}

// errSuspended is the cause of a suspended destination's deferrals.
var errSuspended = errors.New("queue: destination suspended")

// liftSuspensions ends the suspensions of groups, or of every
// destination without groups (Flush, Retry). The caller holds q.mu.
func (q *Queue) liftSuspensions(groups ...string) {
	for _, d := range q.dests {
		if len(groups) == 0 || slices.Contains(groups, d.name) {
			d.until, d.why = time.Time{}, nil
		}
	}
}

// release gives back a slot of group with the attempt's feedback and
// moves as many waiting items back onto the heap as the window now
// allows (they are due: the next pass starts them, oldest first). It
// reports whether the feedback was negative with the window at one
// already (floor: see suspend). The caller holds q.mu.
func (q *Queue) release(group string, now time.Time, f feedback) (floor bool) {
	d := q.dests[group]
	if d == nil {
		return false
	}
	d.inflight--
	q.inflight--
	floor = f == negative && d.win.limit(now) == 1
	d.win.feed(now, f)
	for free := d.win.limit(now) - d.inflight; free > 0 && d.head != nil; free-- {
		it := d.head
		d.unlink(it)
		q.tl.place(it, it.at, now)
	}
	q.dropIdle(d, now)
	return floor
}

// dropIdle forgets d when nothing is in flight or waiting and its window
// is back at the start. The caller holds q.mu.
func (q *Queue) dropIdle(d *dest, now time.Time) {
	if d.inflight == 0 && d.waiting == 0 && d.win.idle(now) && !d.suspendedAt(now) {
		delete(q.dests, d.name)
	}
}

// sweepDests forgets the idle destinations whose windows have expired,
// when there are many; amortized over the destinations created since the
// last sweep. The caller holds q.mu.
func (q *Queue) sweepDests(now time.Time) {
	if len(q.dests) < q.sweepAt {
		return
	}
	for _, d := range q.dests {
		q.dropIdle(d, now)
	}
	q.sweepAt = max(2*len(q.dests), minSweep)
}

// minSweep is the number of destinations below which none are swept.
const minSweep = 1024
