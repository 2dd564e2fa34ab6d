package queue

// schedule.go: the scheduler. A pass pops what is due off the timeline
// (timeline.go: one item per message and destination group, keyed by the
// next attempt) and starts one delivery per (message, group) that the
// limits allow (dest.go); finished deliveries record their results, rearm
// the message's items and wake the scheduler for the next pass. A pass
// costs O(log n) per item it starts, whatever the depth of the queue.
// Run does this forever against the real passage of time; RunOnce does it
// once at the injected clock's "now", for tests and tools.

import (
	"context"
	"sync"
	"time"
)

// Run is the scheduler. It returns nil when ctx is done, after the
// deliveries in flight have returned (a Courier must honour ctx; results
// that arrive after cancellation are recorded only when final, so an
// abandoned attempt changes no state).
func (q *Queue) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := q.now()
		q.pass(ctx, now, nil, &wg)
		wait := time.Hour
		if next, ok := q.nextDue(now); ok {
			wait = min(max(next.Sub(q.now()), 0), time.Hour)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-q.wake:
		case <-timer.C:
		}
	}
}

// RunOnce does everything that is due at the clock's current time and
// returns when it is done: every due (message, domain) is attempted at
// most once, within the concurrency limits, and due bounces are handed
// off. It returns the number of delivery attempts. Tests drive the queue
// with it and an injected clock instead of sleeping.
func (q *Queue) RunOnce(ctx context.Context) int {
	now := q.now()
	tried := make(map[string]bool)
	total := 0
	for range 1 << 20 { // each round starts at least one new attempt
		var wg sync.WaitGroup
		jobs, notes := q.pass(ctx, now, tried, &wg)
		wg.Wait()
		total += jobs
		if jobs == 0 && notes == 0 {
			break
		}
	}
	return total
}

// job is one delivery attempt: the recipients of one message in one domain.
type job struct {
	m      *message
	domain string
	group  string // rcpt.group: the destination and busy key
	local  bool   // for Options.Local
	rcpts  []string
	// suspended: the destination is suspended (dest.go); the job defers
	// its recipients with this error instead of an attempt.
	suspended error
}

// pass starts the deliveries and DSN hand-offs that are due at now and
// fit in the limits: it brings due messages of the index into the active
// set (index.go), then pops due items off the timeline, oldest first,
// until none is due or no delivery slot is free. tried (nil in Run) lists
// the (message, group) pairs already attempted, which are skipped.
func (q *Queue) pass(ctx context.Context, now time.Time, tried map[string]bool, wg *sync.WaitGroup) (jobs, notes int) {
	if ctx.Err() != nil {
		return 0, 0
	}
	q.activateDue(now)
	var skipped []*item
	for {
		it := q.popDue(now)
		if it == nil {
			break
		}
		if it.group == noteGroup {
			if q.claimNotify(it.m, now) {
				notes++
				wg.Add(1)
				go func() {
					defer wg.Done()
					q.notify(ctx, it.m)
					q.poke()
				}()
			} else {
				q.rearmLocking(it.m)
			}
			continue
		}
		if tried != nil && tried[it.key()] {
			q.mu.Lock()
			q.release(it.group, now, neutral)
			q.mu.Unlock()
			skipped = append(skipped, it)
			continue
		}
		j := q.claimJob(it, now)
		if j == nil {
			q.mu.Lock()
			q.release(it.group, now, neutral)
			q.mu.Unlock()
			continue
		}
		if tried != nil {
			tried[it.key()] = true
		}
		jobs++
		wg.Add(1)
		go func() {
			defer wg.Done()
			q.runJob(ctx, j)
		}()
	}
	if len(skipped) > 0 {
		q.mu.Lock()
		for _, it := range skipped {
			if it.idx < 0 && it.wait == nil && it.m.items[it.group] == it {
				q.tl.place(it, it.at, now)
			}
		}
		q.mu.Unlock()
	}
	q.mu.Lock()
	q.sweepDests(now)
	q.mu.Unlock()
	return jobs, notes
}

// popDue takes the next due item off the timeline: a DSN item, or a
// delivery item for which it took a slot (an item whose destination is
// at its window waits in the destination's list instead). nil when
// nothing is due or every delivery slot is taken.
func (q *Queue) popDue(now time.Time) *item {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		it := q.tl.top()
		if it == nil || it.at.After(now) {
			return nil
		}
		if it.group != noteGroup && q.inflight >= q.opts.Concurrency {
			return nil
		}
		q.tl.popTop()
		if it.group == noteGroup || q.acquire(it, now) {
			return it
		}
	}
}

// claimJob turns a popped item into a job: the group's recipients due at
// now, marked busy until runJob finishes. nil when the message changed
// since the item was placed (rearm then places it as it is now).
func (q *Queue) claimJob(it *item, now time.Time) *job {
	m, g := it.m, it.group
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.deleted || m.parked {
		return nil
	}
	if m.prepared || m.env.Held || m.notifying || m.busy[g] {
		q.rearm(m)
		return nil
	}
	var j *job
	for _, r := range m.env.Rcpts {
		if r.group() != g || !r.pending() || r.Next.After(now) {
			continue
		}
		if j == nil {
			j = &job{m: m, domain: r.Domain, group: g, local: r.Local, suspended: it.suspended}
		}
		j.rcpts = append(j.rcpts, r.Addr)
	}
	if j == nil {
		q.rearm(m)
		return nil
	}
	m.busy[g] = true
	return j
}

// runJob makes one delivery attempt and records its results.
func (q *Queue) runJob(ctx context.Context, j *job) {
	e := j.m.env // ID, From, Size and Meta never change
	d := &Attempt{
		ID: e.ID, From: e.From, Domain: j.domain, Recipients: j.rcpts,
		Size: e.Size, SMTPUTF8: e.Meta.SMTPUTF8, EightBit: e.Meta.EightBit, Binary: e.Meta.Binary,
		RequireTLS: e.Meta.RequireTLS, Open: q.opener(e, j.local),
		Ret: e.Meta.Ret, EnvID: e.Meta.EnvID, DSN: j.m.rcptDSN(j.rcpts),
	}
	if j.local {
		d.Size -= int64(len(e.Meta.Prepend)) // local Maildirs get the bytes as received
	} else {
		d.Prepend = e.Meta.Prepend
	}
	var results []Result
	f := neutral // a suspended destination's deferral says nothing new
	switch {
	case j.suspended != nil:
		results = allTemporary(j.rcpts, j.suspended)
	case !j.local:
		results = q.opts.Courier.Deliver(ctx, d)
	case q.opts.Local != nil:
		results = q.opts.Local.Deliver(ctx, d)
	default:
		results = allTemporary(j.rcpts, errNoLocal)
	}
	if j.suspended == nil {
		f = judge(ctx.Err() != nil, results)
	}
	q.mu.Lock()
	now := q.now()
	if floor := q.release(j.group, now, f); floor && len(results) > 0 {
		q.suspend(j.group, now, results[0].Detail())
	}
	q.mu.Unlock()
	q.record(ctx, j, results) // and rearm
	if q.claimNotify(j.m, q.now()) {
		q.notify(ctx, j.m)
	}
	q.poke()
}

// allTemporary fails every recipient of rcpts temporarily with err.
func allTemporary(rcpts []string, err error) []Result {
	out := make([]Result, len(rcpts))
	for i, a := range rcpts {
		out[i] = Result{Rcpt: a, Err: err}
	}
	return out
}

// nextDue returns the earliest time after now at which something becomes
// due: the top of the timeline or of the index. Work due at or before now
// that a pass did not start is waiting for a delivery slot or for room in
// the active set, and the delivery or departure that frees it wakes the
// scheduler.
func (q *Queue) nextDue(now time.Time) (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var next time.Time
	if it := q.tl.top(); it != nil && it.at.After(now) {
		next = it.at
	}
	if t, ok := q.idx.peek(); ok && t.After(now) && (next.IsZero() || t.Before(next)) {
		next = t
	}
	return next, !next.IsZero()
}

// rearm makes m's items match its state at the clock's now: one per group
// with pending recipients that has no delivery in flight, at the group's
// earliest next attempt, and one for its DSN hand-off when one is owed; or
// moves m to the index when nothing of it is due (park). Every change of
// m's state ends with rearm. The caller holds m.mu.
func (q *Queue) rearm(m *message) {
	now := q.now()
	var want map[string]time.Time
	live := !m.deleted && !m.parked
	if live && !m.prepared && !m.env.Held && !m.notifying {
		want = make(map[string]time.Time, 2)
		for _, r := range m.env.Rcpts {
			if !r.pending() {
				continue
			}
			g := r.group()
			if m.busy[g] {
				continue
			}
			if t, ok := want[g]; !ok || r.Next.Before(t) {
				want[g] = r.Next
			}
		}
		if len(m.busy) == 0 {
			if at, ok := q.noteAt(m.env); ok {
				want[noteGroup] = at
			}
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if live && q.parkable(m, want, now) {
		q.park(m, want)
		return
	}
	for g, it := range m.items {
		if _, ok := want[g]; !ok {
			q.tl.unplace(it)
			delete(m.items, g)
		}
	}
	for g, at := range want {
		it := m.items[g]
		if it == nil {
			if m.items == nil {
				m.items = make(map[string]*item, len(want))
			}
			it = &item{m: m, group: g, idx: -1}
			m.items[g] = it
		}
		if (it.idx < 0 && it.wait == nil) || !it.at.Equal(at) {
			q.tl.place(it, at, now)
		}
	}
	q.pokeLocked()
}

// rearmLocking is rearm for a caller that does not hold m.mu.
func (q *Queue) rearmLocking(m *message) {
	m.mu.Lock()
	q.rearm(m)
	m.mu.Unlock()
}

// noteAt is when e's DSN hand-off is due, if one is owed: at once (or at
// the retry of a failed hand-off, bounceAt) for failed recipients and
// success notices, at warnAt for the delay warning. It agrees with
// claimNotify: nothing is due before bounceAt.
func (q *Queue) noteAt(e *envelope) (time.Time, bool) {
	var at time.Time
	ok := len(e.unnotified()) > 0 || len(e.unsucceeded()) > 0
	if w, warn := q.warnAt(e); warn && (!ok || w.Before(at)) {
		at, ok = w, true
	}
	if ok && e.bounceAt.After(at) {
		at = e.bounceAt
	}
	return at, ok
}

// backoff is the delay after the n-th failed attempt (n ≥ 1): RetryMin,
// doubling with each attempt, capped at RetryMax.
func (q *Queue) backoff(n int) time.Duration {
	d := q.opts.RetryMin
	for i := 1; i < n && d < q.opts.RetryMax; i++ {
		d *= 2
	}
	return min(d, q.opts.RetryMax)
}
