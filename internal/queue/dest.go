package queue

// dest.go: per-destination concurrency, after Postfix's queue manager
// (qmgr(8), SCHEDULER_README): a destination starts at a few parallel
// deliveries (slow start), gains one for every delivery that reached the
// server, loses one for every attempt that failed to connect or to
// complete the handshake, never below one nor above Options.PerDomain,
// and forgets what it learnt after an idle spell. Options.Concurrency
// bounds the deliveries in flight across all destinations.

import (
	"time"
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
}

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
	if d.inflight >= d.win.limit(now) {
		d.push(it)
		return false
	}
	d.inflight++
	q.inflight++
	return true
}

// release gives back a slot of group with the attempt's feedback and
// moves as many waiting items back onto the heap as the window now
// allows (they are due: the next pass starts them, oldest first). The
// caller holds q.mu.
func (q *Queue) release(group string, now time.Time, f feedback) {
	d := q.dests[group]
	if d == nil {
		return
	}
	d.inflight--
	q.inflight--
	d.win.feed(now, f)
	for free := d.win.limit(now) - d.inflight; free > 0 && d.head != nil; free-- {
		it := d.head
		d.unlink(it)
		q.tl.place(it, it.at, now)
	}
	q.dropIdle(d, now)
}

// dropIdle forgets d when nothing is in flight or waiting and its window
// is back at the start. The caller holds q.mu.
func (q *Queue) dropIdle(d *dest, now time.Time) {
	if d.inflight == 0 && d.waiting == 0 && d.win.idle(now) {
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
