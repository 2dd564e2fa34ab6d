package pgqueue

// record.go: a message's state between the tables and queue.Record, and
// its bytes as a stream.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"smtpkit/internal/queue"
)

// querier is a pool, a connection or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// recordVersion is the queue.Record format version (the env files').
const recordVersion = 1

// loadRecord reads message id and its recipients (in seq order, so that
// Rcpts[i] is seq i). forUpdate locks the message row: every change to a
// message's state takes that lock first. A void or missing message is
// queue.ErrNotFound.
func (q *Queue) loadRecord(ctx context.Context, db querier, id string, forUpdate bool) (*queue.Record, error) {
	sql := `SELECT sender, arrival, size, meta, held, warned FROM messages WHERE id = $1 AND NOT void`
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	rec := &queue.Record{Version: recordVersion, ID: id}
	var meta []byte
	err := db.QueryRow(ctx, sql, id).Scan(&rec.From, &rec.Arrival, &rec.Size, &meta, &rec.Held, &rec.Warned)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, queue.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(meta, &rec.Meta); err != nil {
		return nil, fmt.Errorf("message %s: meta: %w", id, err)
	}
	rows, err := db.Query(ctx, `SELECT seq, record FROM recipients WHERE message_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var seq int
		var data []byte
		if err := rows.Scan(&seq, &data); err != nil {
			return nil, err
		}
		if seq != len(rec.Rcpts) {
			return nil, fmt.Errorf("message %s: recipient %d missing", id, len(rec.Rcpts))
		}
		r, err := queue.ParseRcpt(data)
		if err != nil {
			return nil, fmt.Errorf("message %s: recipient %d: %w", id, seq, err)
		}
		rec.Rcpts = append(rec.Rcpts, r)
	}
	return rec, rows.Err()
}

// saveRcpts writes the state of rec's recipients back (the lease columns
// untouched), in tx, which holds the message's lock.
func saveRcpts(ctx context.Context, tx pgx.Tx, rec *queue.Record) error {
	b := &pgx.Batch{}
	for seq, r := range rec.Rcpts {
		c, err := columnsOf(r)
		if err != nil {
			return err
		}
		b.Queue(`UPDATE recipients SET state = $3, attempts = $4, next_attempt_at = $5, last_reply = $6,
			owes = $7, record = $8 WHERE message_id = $1 AND seq = $2`,
			rec.ID, seq, string(r.State), r.Attempts, dbTime(r.Next), c.lastReply, c.owes, c.record)
	}
	b.Queue(`UPDATE messages SET held = $2, warned = $3 WHERE id = $1`, rec.ID, rec.Held, rec.Warned)
	return tx.SendBatch(ctx, b).Close()
}

// change applies fn to message id under its lock and saves the result.
func (q *Queue) change(ctx context.Context, id string, fn func(*queue.Record, time.Time) error) error {
	if !queue.ValidID(id) {
		return fmt.Errorf("pgqueue: invalid message id %q", id)
	}
	err := pgx.BeginFunc(ctx, q.pool, func(tx pgx.Tx) error {
		rec, err := q.loadRecord(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if err := fn(rec, q.now()); err != nil {
			return err
		}
		if err := saveRcpts(ctx, tx, rec); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, '')`, channel)
		return err
	})
	if err == nil {
		q.poke()
	}
	return err
}

// body streams message id's chunks from db; size is the number of octets
// stored (Size without the prepended fields), checked at the end.
type body struct {
	ctx  context.Context
	db   querier
	id   string
	size int64
	seq  int
	read int64
	buf  []byte
	eof  bool
}

func (b *body) Read(p []byte) (int, error) {
	for len(b.buf) == 0 {
		if b.eof || (b.read == b.size && b.seq > 0) {
			return 0, io.EOF
		}
		var data []byte
		err := b.db.QueryRow(b.ctx, `SELECT data FROM chunks WHERE message_id = $1 AND seq = $2`, b.id, b.seq).Scan(&data)
		if errors.Is(err, pgx.ErrNoRows) {
			if b.read != b.size {
				return 0, fmt.Errorf("pgqueue: message %s: %d of %d octets stored", b.id, b.read, b.size)
			}
			b.eof = true
			continue
		}
		if err != nil {
			return 0, err
		}
		b.seq++
		b.read += int64(len(data))
		b.buf = data
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	return n, nil
}

func (b *body) Close() error { return nil }

// open returns the stored bytes of rec (without the prepended fields).
func (q *Queue) open(ctx context.Context, db querier, rec *queue.Record) *body {
	return &body{ctx: ctx, db: db, id: rec.ID, size: rec.Size - int64(len(rec.Meta.Prepend))}
}

// headers is the start of rec's message, enough for its header block.
func (q *Queue) headers(ctx context.Context, db querier, rec *queue.Record, max int64) ([]byte, error) {
	return io.ReadAll(io.LimitReader(q.open(ctx, db, rec), max))
}
