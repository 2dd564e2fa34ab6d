package queue

// schedule.go: the scheduler. A pass looks at every message, groups its due
// recipients by domain and starts one delivery per (message, domain) that
// the limits allow; finished deliveries record their results and wake the
// scheduler for the next pass. Run does this forever against the real
// passage of time; RunOnce does it once at the injected clock's "now", for
// tests and tools.

import (
	"context"
	"slices"
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
	group  string // rcpt.group: the limiter and busy key
	local  bool   // for Options.Local
	rcpts  []string
}

// pass starts the deliveries and bounce hand-offs that are due at now and
// fit in the limits, oldest message first. tried (nil in Run) lists the
// (message, domain) pairs already attempted, which are skipped.
func (q *Queue) pass(ctx context.Context, now time.Time, tried map[string]bool, wg *sync.WaitGroup) (jobs, notes int) {
	if ctx.Err() != nil {
		return 0, 0
	}
	msgs := q.snapshot()
	slices.SortFunc(msgs, func(a, b *message) int { return compareIDs(a, b) })
	for _, m := range msgs {
		if q.claimNotify(m, now) {
			notes++
			wg.Add(1)
			go func() {
				defer wg.Done()
				q.notify(ctx, m)
				q.poke()
			}()
		}
		if q.limit.full() {
			continue
		}
		for _, j := range q.dueJobs(m, now, tried) {
			jobs++
			wg.Add(1)
			go func() {
				defer wg.Done()
				q.runJob(ctx, j)
			}()
		}
	}
	return jobs, notes
}

func compareIDs(a, b *message) int {
	// ids are immutable, no lock needed
	switch {
	case a.env.ID < b.env.ID:
		return -1
	case a.env.ID > b.env.ID:
		return 1
	}
	return 0
}

// dueJobs claims the due domains of m that fit in the limits: each gets a
// limiter slot and is marked busy until its runJob finishes.
func (q *Queue) dueJobs(m *message, now time.Time, tried map[string]bool) []*job {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.deleted || m.prepared || m.env.Held || m.notifying {
		return nil
	}
	var jobs []*job
	byGroup := make(map[string]*job)
	for _, r := range m.env.Rcpts {
		g := r.group()
		if !r.pending() || r.Next.After(now) || m.busy[g] {
			continue
		}
		j := byGroup[g]
		if j == nil {
			key := m.env.ID + "/" + g
			if tried[key] || !q.limit.tryAcquire(g) {
				continue
			}
			if tried != nil {
				tried[key] = true
			}
			j = &job{m: m, domain: r.Domain, group: g, local: r.Local}
			byGroup[g] = j
			jobs = append(jobs, j)
		}
		j.rcpts = append(j.rcpts, r.Addr)
	}
	for _, j := range jobs {
		m.busy[j.group] = true
	}
	return jobs
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
	switch {
	case !j.local:
		results = q.opts.Courier.Deliver(ctx, d)
	case q.opts.Local != nil:
		results = q.opts.Local.Deliver(ctx, d)
	default:
		results = allTemporary(j.rcpts, errNoLocal)
	}
	q.limit.release(j.group)
	q.record(ctx, j, results)
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
// due: a recipient's next attempt, a bounce retry or a delay warning.
// Work due at or before now that a pass did not start is waiting for a
// delivery slot, and the delivery that frees it wakes the scheduler.
func (q *Queue) nextDue(now time.Time) (time.Time, bool) {
	var next time.Time
	consider := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, m := range q.snapshot() {
		m.mu.Lock()
		if !m.deleted && !m.prepared && !m.env.Held {
			for _, r := range m.env.Rcpts {
				if r.pending() {
					consider(r.Next)
				}
			}
			consider(m.env.bounceAt)
			if w, ok := q.warnAt(m.env); ok {
				consider(w)
			}
		}
		m.mu.Unlock()
	}
	return next, !next.IsZero()
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
