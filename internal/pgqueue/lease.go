package pgqueue

// lease.go: the scheduler's operations on the database. Lease takes due
// recipients for this node, Renew extends the leases of attempts still
// running, Record writes an attempt's results (delivered, deferred,
// failed) with the DSN they cause in one transaction, Unlease gives back
// what a node leased and will not attempt.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"smtpkit/internal/queue"
)

// Job is one delivery attempt this node leased: recipients of one message
// for one destination (queue.RcptRecord.Group: the domain, local
// mailboxes apart).
type Job struct {
	ID     string
	Group  string
	Domain string
	Local  bool
	Seqs   []int    // the recipients' seq in the message
	Rcpts  []string // their addresses, parallel to Seqs
}

func (j *Job) key() string { return j.ID + "/" + j.Group }

// Lease takes up to max recipients due at now that no node holds (or
// whose lease ran out: their node died), for this node until now+Lease,
// and groups them into Jobs, oldest first. FOR UPDATE SKIP LOCKED lets
// nodes lease at the same time without waiting for each other or taking
// the same recipient.
func (q *Queue) Lease(ctx context.Context, now time.Time, max int) ([]*Job, error) {
	rows, err := q.pool.Query(ctx, `
WITH due AS (
	SELECT r.message_id, r.seq FROM recipients r JOIN messages m ON m.id = r.message_id
	WHERE r.state IN ('queued', 'deferred') AND r.next_attempt_at <= $1
		AND (r.lease_until IS NULL OR r.lease_until <= $1)
		AND NOT m.held AND NOT m.void
	ORDER BY r.next_attempt_at, r.message_id, r.seq
	LIMIT $4
	FOR UPDATE OF r SKIP LOCKED
)
UPDATE recipients r SET lease_owner = $2, lease_until = $3
FROM due WHERE r.message_id = due.message_id AND r.seq = due.seq
RETURNING r.message_id, r.seq, r.addr, r.domain, r.local`, now, q.opts.Node, now.Add(q.opts.Lease), max)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var jobs []*Job
	byKey := make(map[string]*Job)
	for rows.Next() {
		var (
			id, addr, domain string
			seq              int
			local            bool
		)
		if err := rows.Scan(&id, &seq, &addr, &domain, &local); err != nil {
			return nil, err
		}
		r := queue.RcptRecord{Domain: domain, Local: local}
		j := &Job{ID: id, Group: r.Group(), Domain: domain, Local: local}
		if have := byKey[j.key()]; have != nil {
			j = have
		} else {
			byKey[j.key()] = j
			jobs = append(jobs, j)
		}
		j.Seqs = append(j.Seqs, seq)
		j.Rcpts = append(j.Rcpts, addr)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// RETURNING has no order: oldest message first.
	sortJobs(jobs)
	return jobs, nil
}

func sortJobs(jobs []*Job) {
	for i := 1; i < len(jobs); i++ {
		for k := i; k > 0 && jobs[k].ID < jobs[k-1].ID; k-- {
			jobs[k], jobs[k-1] = jobs[k-1], jobs[k]
		}
	}
}

// Renew extends this node's leases of jobs to now+Lease.
func (q *Queue) Renew(ctx context.Context, now time.Time, jobs []*Job) error {
	b := &pgx.Batch{}
	for _, j := range jobs {
		b.Queue(`UPDATE recipients SET lease_until = $4 WHERE message_id = $1 AND seq = ANY($2) AND lease_owner = $3`,
			j.ID, j.Seqs, q.opts.Node, now.Add(q.opts.Lease))
	}
	return q.pool.SendBatch(ctx, b).Close()
}

// Unlease gives back the leases of jobs this node will not attempt.
func (q *Queue) Unlease(ctx context.Context, jobs []*Job) error {
	b := &pgx.Batch{}
	for _, j := range jobs {
		b.Queue(`UPDATE recipients SET lease_owner = NULL, lease_until = NULL
			WHERE message_id = $1 AND seq = ANY($2) AND lease_owner = $3`, j.ID, j.Seqs, q.opts.Node)
	}
	return q.pool.SendBatch(ctx, b).Close()
}

// errGone stops a transaction on a message that was deleted.
var errGone = errors.New("message gone")

// Record writes the results of attempt j in one short transaction: each
// recipient this node still leases is delivered (complete), deferred
// with backoff or failed (queue.Policy.Apply); a DSN that is now due is
// inserted as a new message in the same transaction, so a failure and
// its bounce commit together; a message with nothing left to do is
// deleted. When ctx is done the attempt was abandoned: only deliveries
// and permanent failures are kept (the rest is retried at once).
// Results for a message deleted meanwhile are dropped.
func (q *Queue) Record(ctx context.Context, j *Job, results []queue.Result) error {
	abandoned := ctx.Err() != nil
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), q.opts.CommitTimeout)
	defer cancel()
	byRcpt := make(map[string]queue.Result, len(results))
	for _, r := range results {
		byRcpt[r.Rcpt] = r
	}
	now := q.now()
	var delivered []string
	err := pgx.BeginFunc(ctx, q.pool, func(tx pgx.Tx) error {
		delivered = delivered[:0]
		rec, err := q.loadRecord(ctx, tx, j.ID, true)
		if errors.Is(err, queue.ErrNotFound) {
			return errGone
		}
		if err != nil {
			return err
		}
		owned, err := q.owned(ctx, tx, j)
		if err != nil {
			return err
		}
		for i, seq := range j.Seqs {
			if !owned[seq] {
				q.log.Warn("pgqueue: lease lost before the result was recorded; another node may repeat the attempt",
					"msgid", j.ID, "rcpt", j.Rcpts[i], "possible_duplicate", true)
				continue
			}
			if seq >= len(rec.Rcpts) || !rec.Rcpts[seq].Pending() {
				continue
			}
			res, ok := byRcpt[j.Rcpts[i]]
			if !ok {
				res = queue.NoResult(j.Rcpts[i])
			}
			if abandoned && queue.Abandoned(res) {
				continue
			}
			q.opts.Policy.Apply(rec, rec.Rcpts[seq], res, now)
			if res.Err == nil {
				delivered = append(delivered, j.Rcpts[i])
			}
		}
		return q.finish(ctx, tx, rec, now, func() error {
			_, err := tx.Exec(ctx, `UPDATE recipients SET lease_owner = NULL, lease_until = NULL
				WHERE message_id = $1 AND seq = ANY($2) AND lease_owner = $3`, j.ID, j.Seqs, q.opts.Node)
			return err
		})
	})
	if errors.Is(err, errGone) {
		return nil
	}
	if err != nil {
		attrs := []any{"msgid", j.ID, "err", err}
		if len(delivered) > 0 {
			attrs = append(attrs, "possible_duplicate", true, "rcpt", delivered)
		}
		q.log.Warn("pgqueue: recording an attempt failed", attrs...)
		return fmt.Errorf("pgqueue: recording %s: %w", j.ID, err)
	}
	return nil
}

// owned returns which of j's recipients this node still leases.
func (q *Queue) owned(ctx context.Context, tx pgx.Tx, j *Job) (map[int]bool, error) {
	rows, err := tx.Query(ctx, `SELECT seq FROM recipients WHERE message_id = $1 AND seq = ANY($2) AND lease_owner = $3`,
		j.ID, j.Seqs, q.opts.Node)
	if err != nil {
		return nil, err
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, err
	}
	out := make(map[int]bool, len(seqs))
	for _, s := range seqs {
		out[s] = true
	}
	return out, nil
}

// finish ends a change of rec in tx (which holds its lock): the DSNs now
// due are queued and marked, then rec is deleted when it is done or saved
// (and then also runs, for the lease columns).
func (q *Queue) finish(ctx context.Context, tx pgx.Tx, rec *queue.Record, now time.Time, also func() error) error {
	if err := q.notices(ctx, tx, rec, now); err != nil {
		return err
	}
	if rec.Done() {
		_, err := tx.Exec(ctx, `DELETE FROM messages WHERE id = $1`, rec.ID)
		if err == nil {
			q.log.Info("queue: message done", "msgid", rec.ID)
		}
		return err
	}
	if err := saveRcpts(ctx, tx, rec); err != nil {
		return err
	}
	if also != nil {
		return also()
	}
	return nil
}

// notices queues, in tx, the DSNs rec owes at now (failure report, then
// success notice, then delay warning), unless it is held.
func (q *Queue) notices(ctx context.Context, tx pgx.Tx, rec *queue.Record, now time.Time) error {
	if rec.Held {
		return nil
	}
	for range 3 {
		if !q.opts.Policy.NoticeDue(rec, now) {
			return nil
		}
		n, err := q.opts.Policy.Notice(rec, now,
			func() ([]byte, error) { return q.headers(ctx, tx, rec, dsnHeaders) },
			func() []byte {
				b, err := q.headers(ctx, tx, rec, dsnFull+1)
				if err != nil || len(b) > dsnFull {
					return nil
				}
				return b
			})
		if err != nil {
			return err
		}
		if n.Wanted {
			if err := q.insertBounce(ctx, tx, n.Bounce); err != nil {
				return err
			}
			q.log.Info("queue: DSN handed off", "msgid", rec.ID, "kind", n.Kind, "to", rec.From)
		} else {
			q.log.Info("queue: no DSN wanted (NOTIFY)", "msgid", rec.ID)
		}
		n.Mark(rec)
	}
	return nil
}
