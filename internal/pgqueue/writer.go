package pgqueue

// writer.go: accepting a message. The bytes go to a local temporary file
// while the session checks them; Prepare inserts everything in one
// transaction and returns after COMMIT returned (see the package doc for
// the ambiguous commit).

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"smtpkit/internal/queue"
	"smtpkit/internal/smtp"
)

// chunkSize is the largest body chunk: one bytea row.
const chunkSize = 1 << 20

// batchBytes bounds the chunk bytes one pipelined batch carries.
const batchBytes = 4 << 20

var (
	errClosed  = errors.New("pgqueue: closed")
	errNoLocal = errors.New("pgqueue: no local courier for local recipients")
	errDone    = errors.New("pgqueue: message already committed or aborted")
)

// Writer is one message being accepted (queue.MessageWriter). Write,
// Prepare and Abort must not be called concurrently on one Writer.
type Writer struct {
	q        *Queue
	rec      *queue.Record
	localDSN map[string]smtp.RcptDSN
	f        *os.File
	w        *bufio.Writer
	h        hash.Hash
	done     bool // Prepare or Abort ran
	prepared bool // in the database, leased to <node>/prepare
}

// Begin starts a message for env: its bytes go to a temporary file until
// Commit or Prepare.
func (q *Queue) Begin(env queue.Envelope) (queue.MessageWriter, error) {
	w, err := q.begin(env)
	if err != nil {
		return nil, err
	}
	return w, nil
}

func (q *Queue) begin(env queue.Envelope) (*Writer, error) {
	q.mu.Lock()
	closed := q.closed
	q.mu.Unlock()
	if closed {
		return nil, errClosed
	}
	if len(env.LocalTo) > 0 && q.opts.Local == nil {
		return nil, errNoLocal
	}
	now := q.now()
	rec, err := queue.NewRecord(queue.NewID(now), env, now)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(q.opts.TmpDir, tmpPattern)
	if err != nil {
		return nil, queue.StorageError(fmt.Errorf("pgqueue: %w", err))
	}
	return &Writer{q: q, rec: rec, localDSN: env.LocalDSN, f: f, w: bufio.NewWriterSize(f, 64<<10), h: sha256.New()}, nil
}

// Write appends p to the message.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errDone
	}
	n, err := w.w.Write(p)
	w.h.Write(p[:n])
	w.rec.Size += int64(n)
	return n, queue.StorageError(err)
}

// Prepend adds header fields every remote attempt sends first.
func (w *Writer) Prepend(fields string) error {
	if w.done {
		return errDone
	}
	if err := queue.CheckFields(fields); err != nil {
		return err
	}
	w.rec.Meta.Prepend += fields
	w.rec.Size += int64(len(fields))
	return nil
}

// Commit makes the message durable and releases it for delivery.
func (w *Writer) Commit() (string, error) {
	id, err := w.Prepare()
	if err != nil {
		return "", err
	}
	w.Publish()
	return id, nil
}

// Prepare inserts the message, its chunks and its recipients (leased to
// <node>/prepare) in one transaction. On nil the message is committed; on
// error it is not and never will be: the caller answers 4xx.
func (w *Writer) Prepare() (string, error) {
	if w.done {
		return "", errDone
	}
	w.done = true
	defer w.removeTmp()
	err := w.w.Flush()
	if err == nil {
		_, err = w.f.Seek(0, io.SeekStart)
	}
	if err != nil {
		return "", queue.StorageError(fmt.Errorf("pgqueue: spooling message: %w", err))
	}
	q, id := w.q, w.rec.ID
	ctx, cancel := context.WithTimeout(context.Background(), q.opts.CommitTimeout)
	defer cancel()
	if err := q.commitNew(ctx, id, func(tx pgx.Tx) error { return w.insert(ctx, tx) }); err != nil {
		return "", err
	}
	w.prepared = true
	return id, nil
}

func (w *Writer) removeTmp() {
	w.f.Close()
	os.Remove(w.f.Name())
}

// insert writes the message in tx, its recipients leased to <node>/prepare.
func (w *Writer) insert(ctx context.Context, tx pgx.Tx) error {
	q, rec := w.q, w.rec
	now := q.now()
	meta, err := json.Marshal(rec.Meta)
	if err != nil {
		return err
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO messages (id, sender, arrival, size, sha256, meta, node) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		rec.ID, rec.From, rec.Arrival, rec.Size, w.h.Sum(nil), string(meta), q.opts.Node)
	pending := 0
	buf := make([]byte, chunkSize)
	for seq := 0; ; seq++ {
		n, rerr := io.ReadFull(w.f, buf)
		if n > 0 {
			b.Queue(`INSERT INTO chunks (message_id, seq, data) VALUES ($1, $2, $3)`, rec.ID, seq, append([]byte(nil), buf[:n]...))
			pending += n
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return rerr
		}
		if pending >= batchBytes {
			if err := tx.SendBatch(ctx, b).Close(); err != nil {
				return err
			}
			b, pending = &pgx.Batch{}, 0
		}
	}
	until := now.Add(q.prepareHold())
	for seq, r := range rec.Rcpts {
		if err := queueRcpt(b, rec.ID, seq, r, q.prepareOwner(), &until); err != nil {
			return err
		}
	}
	return tx.SendBatch(ctx, b).Close()
}

// queueRcpt adds the INSERT of recipient seq of message id to b, leased
// to owner until until (nil: not leased).
func queueRcpt(b *pgx.Batch, id string, seq int, r *queue.RcptRecord, owner string, until *time.Time) error {
	c, err := columnsOf(r)
	if err != nil {
		return err
	}
	var own any
	if until != nil {
		own = owner
	}
	b.Queue(`INSERT INTO recipients (message_id, seq, addr, domain, local, state, attempts, next_attempt_at,
		lease_owner, lease_until, last_reply, notify, orcpt, owes, record)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		id, seq, r.Addr, r.Domain, r.Local, string(r.State), r.Attempts, dbTime(r.Next),
		own, until, c.lastReply, r.Notify, c.orcpt, c.owes, c.record)
	return nil
}

// dbTime is t as a timestamptz keeps it: PostgreSQL rounds to the
// microsecond, which could put a recipient due "now" a fraction after
// now; truncating keeps it due.
func dbTime(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

// columns are the columns derived from a recipient's record.
type columns struct {
	lastReply, orcpt, record string
	owes                     bool
}

func columnsOf(r *queue.RcptRecord) (columns, error) {
	data, err := queue.MarshalRcpt(r)
	if err != nil {
		return columns{}, err
	}
	c := columns{lastReply: r.LastReply(), record: string(data), owes: owes(r)}
	if r.ORCPT != nil {
		c.orcpt = r.ORCPT.Param()
	}
	return c, nil
}

// owes reports whether a DSN for r is still to be sent.
func owes(r *queue.RcptRecord) bool {
	return (r.State == queue.Failed && !r.Notified) ||
		(r.State == queue.Delivered && r.Success != "" && !r.SuccessSent)
}

// commitNew runs insert in one transaction for the new message id and
// commits it. A commit whose outcome is unknown is resolved (resolve);
// every failure is 451 4.3.0 and leaves nothing deliverable.
func (q *Queue) commitNew(ctx context.Context, id string, insert func(pgx.Tx) error) error {
	conn, err := q.pool.Acquire(ctx)
	if err != nil {
		return unavailable(fmt.Errorf("pgqueue: connecting: %w", err))
	}
	pid := conn.Conn().PgConn().PID()
	tx, err := conn.Begin(ctx)
	if err != nil {
		conn.Release()
		return unavailable(fmt.Errorf("pgqueue: begin: %w", err))
	}
	if err := insert(tx); err != nil {
		tx.Rollback(context.WithoutCancel(ctx))
		conn.Release()
		return unavailable(fmt.Errorf("pgqueue: inserting message %s: %w", id, err))
	}
	err = tx.Commit(ctx)
	conn.Release()
	if err == nil {
		return nil
	}
	if !ambiguous(err) {
		return unavailable(fmt.Errorf("pgqueue: commit of %s: %w", id, err))
	}
	committed, rerr := q.resolve(context.WithoutCancel(ctx), id, pid)
	switch {
	case rerr != nil:
		// Unknown still: the client gets 451 and the id must never be
		// delivered. The recipients are leased to <node>/prepare for
		// prepareHold, so keep trying to kill it meanwhile.
		q.log.Error("pgqueue: commit outcome unknown; retrying to void it", "msgid", id, "err", err, "resolve_err", rerr)
		go q.killLater(id)
		return unavailable(fmt.Errorf("pgqueue: commit of %s: %w", id, err))
	case committed:
		q.log.Warn("pgqueue: commit outcome was unknown; the message is in the database", "msgid", id, "err", err)
		return nil
	}
	q.log.Warn("pgqueue: commit outcome was unknown; the message is not in the database (voided)", "msgid", id, "err", err)
	return unavailable(fmt.Errorf("pgqueue: commit of %s: %w", id, err))
}

// ambiguous reports whether a failed COMMIT may have committed: any
// failure but the server's own answer (an error, or ROLLBACK for a
// transaction that had failed). pgconn.SafeToRetry is no guide here: a
// connection lost while COMMIT's answer was on its way is reported as
// "conn closed", safe to retry, although the server committed
// (TestPostgres/AmbiguousCommit).
func ambiguous(err error) bool {
	var pe *pgconn.PgError
	return !errors.As(err, &pe) && !errors.Is(err, pgx.ErrTxCommitRollback)
}

// resolve finds out whether message id's transaction (on backend pid)
// committed. It ends that backend if it still runs, then inserts a void
// row under id: the insert waits for the other transaction to finish, so
// either that one's row is there (committed) or the void row is (and the
// id can never commit: its insert would conflict).
func (q *Queue) resolve(ctx context.Context, id string, pid uint32) (committed bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, q.opts.CommitTimeout)
	defer cancel()
	conn, err := q.pool.Acquire(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Release()
	// Best effort: a transaction whose client is gone is ended now rather
	// than at idle_in_transaction_session_timeout.
	conn.Exec(ctx, `SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
		WHERE pid = $1 AND application_name = $2 AND usename = current_user`, int64(pid), appName(q.opts.Node))
	if _, err := conn.Exec(ctx, `INSERT INTO messages (id, void, arrival, node) VALUES ($1, true, $2, $3)
		ON CONFLICT (id) DO NOTHING`, id, q.now(), q.opts.Node); err != nil {
		return false, err
	}
	var void bool
	if err := conn.QueryRow(ctx, `SELECT void FROM messages WHERE id = $1`, id).Scan(&void); err != nil {
		return false, err
	}
	return !void, nil
}

// killLater makes message id dead (removed if it committed, void if not)
// once the database answers, until its prepare lease would run out.
func (q *Queue) killLater(id string) {
	deadline := time.Now().Add(q.prepareHold() * 3 / 4)
	for wait := time.Second; time.Now().Before(deadline); wait = min(2*wait, 15*time.Second) {
		time.Sleep(wait) // a retry schedule against a database that is down, not a wait for timing
		ctx, cancel := context.WithTimeout(context.Background(), q.opts.CommitTimeout)
		err := pgx.BeginFunc(ctx, q.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `DELETE FROM messages WHERE id = $1`, id); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO messages (id, void, arrival, node) VALUES ($1, true, $2, $3)`, id, q.now(), q.opts.Node)
			return err
		})
		cancel()
		if err == nil {
			q.log.Info("pgqueue: message of an unknown commit voided", "msgid", id)
			return
		}
	}
	q.log.Error("pgqueue: could not void a message whose commit was answered 451; it may be delivered", "msgid", id)
}

// Publish releases a prepared message for delivery. Losing this commit
// only delays the message (the prepare lease runs out), so it is not
// waited for on disk.
func (w *Writer) Publish() {
	if !w.prepared {
		return
	}
	w.prepared = false
	q, id := w.q, w.rec.ID
	ctx, cancel := context.WithTimeout(context.Background(), q.opts.CommitTimeout)
	defer cancel()
	err := pgx.BeginFunc(ctx, q.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE recipients SET lease_owner = NULL, lease_until = NULL
			WHERE message_id = $1 AND lease_owner = $2`, id, q.prepareOwner()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, channel)
		return err
	})
	if err != nil {
		q.log.Error("pgqueue: publishing; delivered when its prepare lease runs out", "msgid", id, "err", err)
		return
	}
	q.log.Info("queued", "msgid", id, "from", w.rec.From, "rcpts", len(w.rec.Rcpts), "size", w.rec.Size,
		"relay", w.rec.Meta.Relay, "auth_user", w.rec.Meta.AuthUser, "remote", w.rec.Meta.ReceivedFrom)
	q.poke()
}

// AddLocal adds local mailboxes to a prepared message, durably.
func (w *Writer) AddLocal(boxes []string) error {
	q := w.q
	if !w.prepared {
		return errors.New("pgqueue: AddLocal on a message not prepared")
	}
	if q.opts.Local == nil {
		return errNoLocal
	}
	now := q.now()
	var add []*queue.RcptRecord
	for _, a := range boxes {
		r, err := queue.NewLocalRcpt(a, w.localDSN, now)
		if err != nil {
			return err
		}
		add = append(add, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), q.opts.CommitTimeout)
	defer cancel()
	until := now.Add(q.prepareHold())
	err := pgx.BeginFunc(ctx, q.pool, func(tx pgx.Tx) error {
		rec, err := q.loadRecord(ctx, tx, w.rec.ID, true)
		if err != nil {
			return err
		}
		b := &pgx.Batch{}
		seq := len(rec.Rcpts)
	next:
		for _, r := range add {
			for _, have := range rec.Rcpts {
				if have.Local && have.Addr == r.Addr {
					continue next
				}
			}
			if err := queueRcpt(b, rec.ID, seq, r, q.prepareOwner(), &until); err != nil {
				return err
			}
			rec.Rcpts = append(rec.Rcpts, r)
			seq++
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return unavailable(fmt.Errorf("pgqueue: adding local recipients: %w", err))
	}
	return nil
}

// Withdraw deletes a prepared message, durably.
func (w *Writer) Withdraw() error {
	if !w.prepared {
		return errors.New("pgqueue: Withdraw on a message not prepared")
	}
	w.prepared = false
	q, id := w.q, w.rec.ID
	var err error
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), q.opts.CommitTimeout)
		_, err = q.pool.Exec(ctx, `DELETE FROM messages WHERE id = $1`, id)
		cancel()
		if err == nil {
			q.log.Info("pgqueue: prepared message withdrawn", "msgid", id)
			return nil
		}
	}
	// The client is told 4xx: the id must never be delivered. Its
	// recipients stay leased to <node>/prepare; keep trying until then.
	go q.killLater(id)
	return fmt.Errorf("pgqueue: withdrawing %s (retried until its prepare lease runs out): %w", id, err)
}

// Abort discards the message; after Prepare without Publish it withdraws.
func (w *Writer) Abort() {
	if w.prepared {
		if err := w.Withdraw(); err != nil {
			w.q.log.Error("pgqueue: withdrawing a prepared message", "msgid", w.rec.ID, "err", err)
		}
		return
	}
	if w.done {
		return
	}
	w.done = true
	w.removeTmp()
}

// EnqueueBounce queues a DSN from the null sender to b.To.
func (q *Queue) EnqueueBounce(ctx context.Context, b queue.Bounce) error {
	return pgx.BeginFunc(ctx, q.pool, func(tx pgx.Tx) error { return q.insertBounce(ctx, tx, b) })
}

// insertBounce inserts the DSN b as a new message in tx, due at once; a
// sender in a local domain gets it through the local courier.
func (q *Queue) insertBounce(ctx context.Context, tx pgx.Tx, b queue.Bounce) error {
	now := q.now()
	env := queue.Envelope{Meta: queue.Meta{SMTPUTF8: b.SMTPUTF8, EightBit: b.EightBit}}
	if q.opts.BounceTo == nil {
		to, err := smtp.ParseAddress(b.To)
		if err != nil {
			return err
		}
		env.To = []smtp.Address{to}
	} else {
		boxes, remote, err := q.opts.BounceTo(b.To)
		if err != nil {
			return err
		}
		if len(boxes) > 0 && q.opts.Local == nil {
			return errNoLocal
		}
		env.To, env.LocalTo = remote, boxes
	}
	if len(env.To)+len(env.LocalTo) == 0 {
		q.log.Warn("pgqueue: DSN has nobody to go to, dropped", "msgid", b.ID, "to", b.To)
		return nil
	}
	rec, err := queue.NewRecord(queue.NewID(now), env, now)
	if err != nil {
		return err
	}
	if q.opts.Sign != nil {
		fields, err := q.opts.Sign(b.Message)
		if err != nil {
			return err
		}
		if err := queue.CheckFields(fields); err != nil {
			return err
		}
		rec.Meta.Prepend = fields
	}
	rec.Size = int64(len(rec.Meta.Prepend) + len(b.Message))
	meta, err := json.Marshal(rec.Meta)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b.Message)
	batch := &pgx.Batch{}
	batch.Queue(`INSERT INTO messages (id, sender, arrival, size, sha256, meta, node) VALUES ($1, '', $2, $3, $4, $5, $6)`,
		rec.ID, rec.Arrival, rec.Size, sum[:], string(meta), q.opts.Node)
	for seq, off := 0, 0; off < len(b.Message); seq, off = seq+1, off+chunkSize {
		batch.Queue(`INSERT INTO chunks (message_id, seq, data) VALUES ($1, $2, $3)`, rec.ID, seq, b.Message[off:min(off+chunkSize, len(b.Message))])
	}
	for seq, r := range rec.Rcpts {
		if err := queueRcpt(batch, rec.ID, seq, r, "", nil); err != nil {
			return err
		}
	}
	batch.Queue(`SELECT pg_notify($1, '')`, channel)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return err
	}
	q.log.Info("queued", "msgid", rec.ID, "from", "", "rcpts", len(rec.Rcpts), "size", rec.Size, "dsn_for", b.ID)
	return nil
}
