// Package pgqueue is the postgres back-end of the outbound queue
// (queue.Backend), selected by [cluster] database: any number of nodes
// share one PostgreSQL database, which is the one commit point.
//
//   - Accept: the bytes stream to a local temporary file (hashed as they
//     come); Commit (or Prepare) then inserts the message, its chunks
//     (bytea, at most 1 MiB each) and its recipients in ONE transaction and
//     returns only after COMMIT returned. A commit whose outcome is unknown
//     (the connection was lost during COMMIT) is resolved by the id: a
//     second connection inserts a void row under the same key, which waits
//     for the first transaction and either finds its row (committed) or
//     makes the id dead for good (not committed: never delivered, the
//     client gets 451 4.3.0 and sends again). A database that cannot be
//     reached is 451 4.3.0 too: nothing is acknowledged.
//   - Prepare leases the recipients to "<node>/prepare" so that no node
//     delivers them; Publish releases that lease, Withdraw deletes the
//     message. A node that dies in between leaves a lease that expires:
//     the message is delivered then, as the files deliver a prepared
//     message after a crash.
//   - Deliver: Lease takes due recipients with FOR UPDATE SKIP LOCKED,
//     grouped by message and destination (Job); the network I/O runs
//     outside any transaction while the leases are renewed; Record writes
//     the results of one Job in one short transaction, in which a failure
//     and its bounce (a new message in the same database) commit together.
//     Workers wake on LISTEN/NOTIFY and poll as well.
//
// Retries, expiry and DSNs are the files' own rules (queue.Policy), and
// each recipient's state is kept as the files keep it (queue.RcptRecord,
// in recipients.record), with the columns the scheduler queries beside it.
// docs/queue.md describes the data model.
package pgqueue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"smtpkit/internal/queue"
	"smtpkit/internal/smtp"
)

// Options configures a Queue. Zero values get the documented defaults.
type Options struct {
	// Database is the connection string (postgres://user:pw@host:port/db).
	Database string
	// Node names this node: the lease owner. Every node sharing the
	// database needs its own name. Default: the host name.
	Node string
	// TmpDir is where message bytes wait for their commit; default
	// os.TempDir(). A directory of this node's own: Open removes what an
	// earlier run left in it.
	TmpDir string
	// Courier delivers remote recipients, Local the local ones (nil
	// refuses local recipients).
	Courier, Local queue.Courier
	// BounceTo resolves the recipient of a DSN (the original sender) into
	// local mailboxes, delivered by Local, and addresses elsewhere
	// (delivery.Bounces.Recipients); nil: the address as it is, remote.
	BounceTo func(to string) (mailboxes []string, remote []smtp.Address, err error)
	// Sign returns the header fields to prepend to a DSN (DKIM); nil signs
	// nothing.
	Sign func(msg []byte) (string, error)
	// Policy: retry schedule, expiry, delay warnings, the Reporting-MTA.
	Policy queue.Policy
	// Lease is how long a node owns the recipients it is delivering before
	// another node may take them over; renewed while the attempt runs.
	// Default 60s.
	Lease time.Duration
	// PollInterval is how often the scheduler looks for due work besides
	// the notifications; default 5s.
	PollInterval time.Duration
	// Concurrency bounds the deliveries in flight on this node; default
	// 20. PerDomain bounds those to one destination (a domain; local
	// mailboxes apart) on this node; default 4.
	Concurrency, PerDomain int
	// CommitTimeout bounds one accept transaction; default 30s.
	CommitTimeout time.Duration
	Logger        *slog.Logger
	Now           func() time.Time // the clock; default time.Now
}

// tmpPattern names the temporary files of messages being received.
const tmpPattern = "smtpkit-pgq-*"

// clearTmp removes the temporary files an earlier run left in dir (never
// acknowledged: their commit had not returned).
func clearTmp(dir string) error {
	left, err := filepath.Glob(filepath.Join(dir, tmpPattern))
	if err != nil {
		return err
	}
	for _, f := range left {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	return nil
}

func (o *Options) setDefaults() {
	if o.Node == "" {
		o.Node, _ = os.Hostname()
		if o.Node == "" {
			o.Node = "localhost"
		}
	}
	if o.TmpDir == "" {
		o.TmpDir = os.TempDir()
	}
	if o.Lease <= 0 {
		o.Lease = 60 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 5 * time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 20
	}
	if o.PerDomain <= 0 {
		o.PerDomain = 4
	}
	if o.CommitTimeout <= 0 {
		o.CommitTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Policy.Logger == nil {
		o.Policy.Logger = o.Logger
	}
	o.Policy = o.Policy.Defaults()
}

// channel is the LISTEN/NOTIFY channel: "recipients became due".
const channel = "smtpkit_queue"

// prepareHold is how long a prepared message stays leased to its writer
// before another node may deliver it (its Publish was lost, or the
// database lost it in a crash: Publish does not wait for the disk): twice
// the lease, at least 30s. It also bounds how long a node keeps trying to
// void an id it answered 451 for (killLater).
func (q *Queue) prepareHold() time.Duration { return max(2*q.opts.Lease, 30*time.Second) }

// Queue is the postgres back-end. All methods are safe for concurrent use.
type Queue struct {
	opts Options
	pool *pgxpool.Pool
	log  *slog.Logger

	mu       sync.Mutex
	inFlight map[string]bool // Job.key of the jobs this node runs
	running  []*Job          // the same jobs, for Renew
	byGroup  map[string]int  // attempts running per destination (PerDomain)
	closed   bool

	wake chan struct{}
}

var _ queue.Backend = (*Queue)(nil)

// replyUnavailable answers a message the database did not take: 451
// 4.3.0 (house rule 3), the client sends it again later.
var replyUnavailable = smtp.R(smtp.CodeLocalError, smtp.EnhSystem.Temp(), "Queue database unavailable, try again later")

// unavailable wraps err, a failure to reach or commit to the database,
// with replyUnavailable.
func unavailable(err error) error {
	var se *smtp.Error
	if errors.As(err, &se) {
		return err
	}
	return smtp.Wrap(replyUnavailable, err)
}

// Open connects to the database, applies the missing migrations and
// releases the leases a previous run of this node left. It starts no
// delivery: call Run for that.
func Open(ctx context.Context, opts Options) (*Queue, error) {
	ownTmp := opts.TmpDir != ""
	opts.setDefaults()
	if ownTmp {
		if err := clearTmp(opts.TmpDir); err != nil {
			return nil, fmt.Errorf("pgqueue: %w", err)
		}
	}
	if opts.Courier == nil {
		return nil, errors.New("pgqueue: no courier")
	}
	cfg, err := pgxpool.ParseConfig(opts.Database)
	if err != nil {
		return nil, fmt.Errorf("pgqueue: database: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	rp := cfg.ConnConfig.RuntimeParams
	rp["application_name"] = appName(opts.Node)
	// A transaction whose client vanished must not hold its locks for
	// long (it would stall the resolution of an ambiguous commit).
	rp["idle_in_transaction_session_timeout"] = "60000"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgqueue: %w", err)
	}
	q := &Queue{opts: opts, pool: pool, log: opts.Logger, inFlight: make(map[string]bool), byGroup: make(map[string]int), wake: make(chan struct{}, 1)}
	if err := q.start(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgqueue: %w", err)
	}
	return q, nil
}

func appName(node string) string { return "smtpkit " + node }

// start migrates and releases this node's old leases.
func (q *Queue) start(ctx context.Context) error {
	conn, err := q.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if err := migrate(ctx, conn.Conn()); err != nil {
		return err
	}
	// A previous run of this node died with these leases: its attempts
	// are over. (Prepared messages it left are delivered now, as the
	// files deliver them after a crash.)
	tag, err := conn.Exec(ctx, `UPDATE recipients SET lease_owner = NULL, lease_until = NULL
		WHERE lease_owner = $1 OR lease_owner = $2`, q.opts.Node, q.prepareOwner())
	if err != nil {
		return err
	}
	q.log.Info("pgqueue: opened", "node", q.opts.Node, "schema", SchemaVersion(), "leases_released", tag.RowsAffected())
	return nil
}

func (q *Queue) prepareOwner() string { return q.opts.Node + "/prepare" }

// Close closes the connections; Run must have returned.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	q.mu.Unlock()
	q.pool.Close()
	return nil
}

func (q *Queue) now() time.Time { return q.opts.Now() }

// poke wakes the scheduler without blocking.
func (q *Queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Node is this node's name, the lease owner.
func (q *Queue) Node() string { return q.opts.Node }
