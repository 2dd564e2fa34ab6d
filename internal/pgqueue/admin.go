package pgqueue

// admin.go: what `smtpkit queue` does, on the database: the same
// operations and answers as the files' (queue/admin.go).

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"smtpkit/internal/queue"
)

// List returns every queued message, oldest first. A recipient is in
// flight when any node holds a delivery lease on it.
func (q *Queue) List(ctx context.Context) ([]queue.Summary, error) {
	recs, busy, err := q.loadAll(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]queue.Summary, 0, len(recs))
	for _, rec := range recs {
		out = append(out, rec.Summarize(busy[rec.ID]))
	}
	return out, nil
}

// loadAll reads every message with its recipients (two queries), and
// which groups of each have a delivery lease at the clock's now.
func (q *Queue) loadAll(ctx context.Context) ([]*queue.Record, map[string]map[string]bool, error) {
	tx, err := q.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, nil, err
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, `SELECT id, sender, arrival, size, meta, held, warned FROM messages WHERE NOT void ORDER BY id`)
	if err != nil {
		return nil, nil, err
	}
	var recs []*queue.Record
	byID := make(map[string]*queue.Record)
	for rows.Next() {
		rec := &queue.Record{Version: recordVersion}
		var meta []byte
		if err := rows.Scan(&rec.ID, &rec.From, &rec.Arrival, &rec.Size, &meta, &rec.Held, &rec.Warned); err != nil {
			rows.Close()
			return nil, nil, err
		}
		if err := json.Unmarshal(meta, &rec.Meta); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("message %s: meta: %w", rec.ID, err)
		}
		recs = append(recs, rec)
		byID[rec.ID] = rec
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	now := q.now()
	rows, err = tx.Query(ctx, `SELECT message_id, record, lease_owner IS NOT NULL AND lease_owner NOT LIKE '%/prepare' AND lease_until > $1
		FROM recipients ORDER BY message_id, seq`, now)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	busy := make(map[string]map[string]bool)
	for rows.Next() {
		var id string
		var data []byte
		var leased bool
		if err := rows.Scan(&id, &data, &leased); err != nil {
			return nil, nil, err
		}
		rec := byID[id]
		if rec == nil {
			continue
		}
		r, err := queue.ParseRcpt(data)
		if err != nil {
			return nil, nil, fmt.Errorf("message %s: %w", id, err)
		}
		rec.Rcpts = append(rec.Rcpts, r)
		if leased {
			if busy[id] == nil {
				busy[id] = make(map[string]bool)
			}
			busy[id][r.Group()] = true
		}
	}
	return recs, busy, rows.Err()
}

// Counts adds the queue up in the database (for the metrics: two
// aggregate queries rather than a List of every message).
func (q *Queue) Counts(ctx context.Context) (queue.Counts, error) {
	c := queue.Counts{Recipients: make(map[queue.State]int, len(queue.States))}
	for _, s := range queue.States {
		c.Recipients[s] = 0
	}
	var oldest *time.Time
	err := q.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE held), coalesce(sum(size), 0), min(arrival)
		FROM messages WHERE NOT void`).Scan(&c.Messages, &c.Held, &c.Bytes, &oldest)
	if err != nil {
		return queue.Counts{}, err
	}
	if oldest != nil {
		c.Oldest = *oldest
	}
	rows, err := q.pool.Query(ctx, `SELECT state, count(*) FROM recipients GROUP BY state`)
	if err != nil {
		return queue.Counts{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return queue.Counts{}, err
		}
		c.Recipients[queue.State(state)] = n
	}
	return c, rows.Err()
}

// Show returns one message in detail, with its header block.
func (q *Queue) Show(ctx context.Context, id string) (queue.Detail, error) {
	if !queue.ValidID(id) {
		return queue.Detail{}, fmt.Errorf("queue: invalid message id %q", id)
	}
	rec, err := q.loadRecord(ctx, q.pool, id, false)
	if err != nil {
		return queue.Detail{}, err
	}
	busy, err := q.busy(ctx, id)
	if err != nil {
		return queue.Detail{}, err
	}
	d := queue.Detail{Summary: rec.Summarize(busy), Meta: rec.Meta, Warned: rec.Warned,
		Expires: q.opts.Policy.Expires(rec)}
	hdr, err := q.headers(ctx, q.pool, rec, 64<<10)
	if err != nil {
		return queue.Detail{}, fmt.Errorf("queue: reading message %s: %w", id, err)
	}
	d.Headers = queue.HeaderBlock(hdr)
	return d, nil
}

// busy returns the groups of message id with a delivery lease.
func (q *Queue) busy(ctx context.Context, id string) (map[string]bool, error) {
	rows, err := q.pool.Query(ctx, `SELECT domain, local FROM recipients
		WHERE message_id = $1 AND lease_owner IS NOT NULL AND lease_owner NOT LIKE '%/prepare' AND lease_until > $2`, id, q.now())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]bool)
	for rows.Next() {
		var r queue.RcptRecord
		if err := rows.Scan(&r.Domain, &r.Local); err != nil {
			return nil, err
		}
		out[r.Group()] = true
	}
	return out, rows.Err()
}

// Hold stops delivery attempts and bounces for message id until Release.
// An attempt already in flight finishes and is recorded.
func (q *Queue) Hold(ctx context.Context, id string) error {
	return q.change(ctx, id, func(rec *queue.Record, _ time.Time) error {
		rec.Held = true
		return nil
	})
}

// Release undoes Hold; the pending recipients are due at once.
func (q *Queue) Release(ctx context.Context, id string) error {
	return q.change(ctx, id, func(rec *queue.Record, now time.Time) error {
		rec.Held = false
		rec.RetryNow(now)
		return nil
	})
}

// Retry makes the pending recipients of message id due now. A held
// message stays held (Release it).
func (q *Queue) Retry(ctx context.Context, id string) error {
	return q.change(ctx, id, func(rec *queue.Record, now time.Time) error {
		if rec.Held {
			return fmt.Errorf("queue: message %s is held; release it first", id)
		}
		rec.RetryNow(now)
		return nil
	})
}

// Delete removes message id without a bounce. An attempt in flight
// finishes, but its results are dropped.
func (q *Queue) Delete(ctx context.Context, id string) error {
	if !queue.ValidID(id) {
		return fmt.Errorf("queue: invalid message id %q", id)
	}
	tag, err := q.pool.Exec(ctx, `DELETE FROM messages WHERE id = $1 AND NOT void`, id)
	if err != nil {
		return fmt.Errorf("queue: deleting %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return queue.ErrNotFound
	}
	q.log.Info("queue: message deleted by the operator", "msgid", id)
	return nil
}

// Flush makes every pending recipient of every message that is not held
// due now.
func (q *Queue) Flush(ctx context.Context) error {
	rows, err := q.pool.Query(ctx, `SELECT DISTINCT m.id FROM messages m JOIN recipients r ON r.message_id = m.id
		WHERE NOT m.void AND NOT m.held AND r.state IN ('queued', 'deferred') AND r.next_attempt_at > $1 ORDER BY m.id`, q.now())
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	var errs []string
	for _, id := range ids {
		err := q.change(ctx, id, func(rec *queue.Record, now time.Time) error {
			if !rec.Held {
				rec.RetryNow(now)
			}
			return nil
		})
		if err != nil && err != queue.ErrNotFound {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("queue: flush: %s", strings.Join(errs, "; "))
	}
	return nil
}
