package pgqueue

// schedule.go: the worker loop. Each pass leases what is due for the free
// delivery slots, starts one goroutine per Job (the network I/O outside
// any transaction), records each result in its own transaction and
// queues the DSNs that time made due (delay warnings, released messages).
// The loop wakes on NOTIFY (a message was queued or changed on any node),
// when an attempt finishes, and every PollInterval.

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"smtpkit/internal/dsn"
	"smtpkit/internal/queue"
)

// What a DSN returns of the original message (as the files read it).
const (
	dsnHeaders = dsn.MaxHeaders + 2
	dsnFull    = dsn.MaxFull
)

// leasePerSlot is how many recipients one free slot may lease at once
// (one message's recipients of one domain make one Job; the jobs that do
// not fit wait in the backlog).
const leasePerSlot = 4

// Run is the scheduler. It returns nil when ctx is done, after the
// attempts in flight have returned and been recorded.
func (q *Queue) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	listenDone := make(chan struct{})
	go func() { defer close(listenDone); q.listen(ctx) }()
	defer func() { <-listenDone }()
	go q.renewLoop(ctx)

	slots := make(chan struct{}, q.opts.Concurrency)
	var backlog []*Job // leased, not started yet
	defer func() {
		if len(backlog) > 0 {
			q.Unlease(context.WithoutCancel(ctx), backlog)
			for _, j := range backlog {
				q.track(j, false)
			}
		}
	}()
	poll := time.NewTimer(0)
	defer poll.Stop()
	var nextSweep time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-q.wake:
		case <-poll.C:
		}
		now := q.now()
		// Lease while the backlog is short of its bound; what does not fit
		// in the free slots (or in its destination's PerDomain) waits in
		// the backlog, its leases renewed, until a slot frees.
		if room := cap(slots)*leasePerSlot - len(backlog); len(slots) < cap(slots) && room > 0 {
			jobs, err := q.Lease(ctx, now, room)
			if err != nil && ctx.Err() == nil {
				q.log.Error("pgqueue: leasing due recipients", "err", err)
			}
			for _, j := range jobs {
				q.track(j, true)
			}
			backlog = append(backlog, jobs...)
		}
		waiting := backlog[:0]
		for _, j := range backlog {
			if len(slots) == cap(slots) || !q.startGroup(j.Group) {
				waiting = append(waiting, j)
				continue
			}
			slots <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				q.runJob(ctx, j)
				q.endGroup(j.Group)
				q.track(j, false)
				<-slots
				q.poke()
			}()
		}
		backlog = waiting
		// DSNs that time made due: once per poll interval, not on every
		// wake-up (each finished attempt wakes the loop).
		if ctx.Err() == nil && !now.Before(nextSweep) {
			q.sweep(ctx, now)
			nextSweep = now.Add(q.opts.PollInterval)
		}
		poll.Reset(q.opts.PollInterval)
	}
}

// RunOnce does what is due at the clock's current time and returns when
// it is done: due recipients are leased and attempted (those the attempts
// make due again at the same instant, such as a DSN, too), and the DSNs
// due are queued. It returns the number of attempts.
func (q *Queue) RunOnce(ctx context.Context) int {
	now := q.now()
	total := 0
	for range 1000 {
		q.sweep(ctx, now)
		jobs, err := q.Lease(ctx, now, q.opts.Concurrency*leasePerSlot)
		if err != nil {
			q.log.Error("pgqueue: leasing due recipients", "err", err)
			break
		}
		if len(jobs) == 0 {
			break
		}
		var wg sync.WaitGroup
		slots := make(chan struct{}, q.opts.Concurrency)
		for _, j := range jobs {
			slots <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				q.runJob(ctx, j)
			}()
		}
		wg.Wait()
		total += len(jobs)
	}
	return total
}

// track marks job j in flight on this node (for Renew and List).
func (q *Queue) track(j *Job, on bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if on {
		q.inFlight[j.key()] = true
		q.running = append(q.running, j)
		return
	}
	delete(q.inFlight, j.key())
	for i, r := range q.running {
		if r == j {
			q.running = append(q.running[:i], q.running[i+1:]...)
			break
		}
	}
}

// startGroup counts a job of group g as started, unless PerDomain
// attempts for it already run on this node.
func (q *Queue) startGroup(g string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.byGroup[g] >= q.opts.PerDomain {
		return false
	}
	q.byGroup[g]++
	return true
}

func (q *Queue) endGroup(g string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.byGroup[g]--; q.byGroup[g] <= 0 {
		delete(q.byGroup, g)
	}
}

// renewLoop renews the leases of the attempts in flight every third of
// the lease, so that a long attempt is not taken over by another node.
func (q *Queue) renewLoop(ctx context.Context) {
	t := time.NewTicker(q.opts.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		q.mu.Lock()
		jobs := append([]*Job(nil), q.running...)
		q.mu.Unlock()
		if len(jobs) == 0 {
			continue
		}
		if err := q.Renew(ctx, q.now(), jobs); err != nil && ctx.Err() == nil {
			q.log.Warn("pgqueue: renewing leases", "err", err, "jobs", len(jobs))
		}
	}
}

// listen wakes the scheduler on every NOTIFY of the channel, on its own
// connection, reconnecting after errors until ctx is done.
func (q *Queue) listen(ctx context.Context) {
	for ctx.Err() == nil {
		err := q.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		q.log.Warn("pgqueue: LISTEN connection lost; polling until it is back", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(q.opts.PollInterval): // reconnect pace
		}
	}
}

func (q *Queue) listenOnce(ctx context.Context) error {
	conn, err := q.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection is in LISTEN mode: never give it back to the pool.
	c := conn.Hijack()
	defer c.Close(context.WithoutCancel(ctx))
	if _, err := c.Exec(ctx, `LISTEN `+channel); err != nil {
		return err
	}
	q.poke() // what was queued while not listening
	for {
		if _, err := c.WaitForNotification(ctx); err != nil {
			return err
		}
		q.poke()
	}
}

// runJob makes one attempt and records its results.
func (q *Queue) runJob(ctx context.Context, j *Job) {
	rec, err := q.loadRecord(ctx, q.pool, j.ID, false)
	if err != nil {
		if err != queue.ErrNotFound && ctx.Err() == nil {
			q.log.Error("pgqueue: loading a leased message; its lease runs out", "msgid", j.ID, "err", err)
		}
		return
	}
	m := rec.Meta
	d := &queue.Attempt{
		ID: rec.ID, From: rec.From, Domain: j.Domain, Recipients: j.Rcpts, Size: rec.Size,
		SMTPUTF8: m.SMTPUTF8, EightBit: m.EightBit, Binary: m.Binary, RequireTLS: m.RequireTLS,
		Ret: m.Ret, EnvID: m.EnvID, DSN: rec.RcptDSN(j.Rcpts),
	}
	if j.Local {
		d.Size -= int64(len(m.Prepend)) // local Maildirs get the bytes as received
	} else {
		d.Prepend = m.Prepend
	}
	d.Open = queue.Opener(m.Prepend, j.Local, func() (io.ReadCloser, error) { return q.open(ctx, q.pool, rec), nil })
	var results []queue.Result
	switch {
	case !j.Local:
		results = q.opts.Courier.Deliver(ctx, d)
	case q.opts.Local != nil:
		results = q.opts.Local.Deliver(ctx, d)
	default:
		results = make([]queue.Result, len(j.Rcpts))
		for i, a := range j.Rcpts {
			results[i] = queue.Result{Rcpt: a, Err: errNoLocal}
		}
	}
	q.recordRetrying(ctx, j, results)
}

// recordRetrying records results, trying again while the database is
// away for up to half a lease (the lease still holds the recipients):
// a result lost to a short outage would otherwise be attempted again —
// after a delivery, a duplicate.
func (q *Queue) recordRetrying(ctx context.Context, j *Job, results []queue.Result) {
	deadline := time.Now().Add(q.opts.Lease / 2)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		err := q.Record(ctx, j, results)
		if err == nil {
			return
		}
		if !dbError(err) || !time.Now().Add(wait).Before(deadline) {
			q.log.Error("pgqueue: the attempt's result is not recorded; it is repeated when the lease runs out",
				"msgid", j.ID, "rcpts", len(j.Rcpts), "err", err)
			return
		}
		time.Sleep(wait) // a retry schedule against a database that is away, not a wait for timing
	}
}

// voidKept is how long a void id is kept: far longer than any
// transaction under that id can live (idle_in_transaction_session_timeout).
const voidKept = 24 * time.Hour

// dbError reports whether err came from the database or the way to it
// (worth trying again), not from smtpkit's own side of a transaction
// (a DSN that could not be signed or addressed).
func dbError(err error) bool {
	var (
		pe *pgconn.PgError
		ce *pgconn.ConnectError
		ne net.Error
	)
	return errors.As(err, &pe) || errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) ||
		pgconn.Timeout(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded)
}

// sweep queues the DSNs that are due without an attempt (delay warnings,
// as time passed; notices of messages that were held) and removes old
// void ids.
func (q *Queue) sweep(ctx context.Context, now time.Time) {
	if _, err := q.pool.Exec(ctx, `DELETE FROM messages WHERE void AND created < now() - $1::interval`,
		voidKept.String()); err != nil && ctx.Err() == nil {
		q.log.Warn("pgqueue: removing old void ids", "err", err)
	}
	warnBefore := time.Time{} // no warnings: matches nothing
	if w := q.opts.Policy.DelayWarning; w > 0 {
		warnBefore = now.Add(-w)
	}
	rows, err := q.pool.Query(ctx, `
SELECT DISTINCT m.id FROM messages m JOIN recipients r ON r.message_id = m.id
WHERE NOT m.void AND NOT m.held AND (r.owes
	OR (NOT m.warned AND m.sender <> '' AND r.state = 'deferred' AND m.arrival <= $1))
ORDER BY m.id LIMIT 100`, warnBefore)
	if err != nil {
		if ctx.Err() == nil {
			q.log.Error("pgqueue: looking for due DSNs", "err", err)
		}
		return
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, id := range ids {
		err := pgx.BeginFunc(ctx, q.pool, func(tx pgx.Tx) error {
			rec, err := q.loadRecord(ctx, tx, id, true)
			if err != nil {
				return err
			}
			return q.finish(ctx, tx, rec, now, nil)
		})
		if err != nil && err != queue.ErrNotFound && ctx.Err() == nil {
			q.log.Error("pgqueue: queueing a DSN, will retry", "msgid", id, "err", err)
		}
	}
}
