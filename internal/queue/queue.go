// Package queue is smtpkit's outbound mail queue: a durable spool on disk,
// a scheduler that hands due recipients to a Courier grouped by domain,
// exponential backoff, expiry, and the bounces (RFC 3464 DSNs) that
// failures produce.
//
// Durability (house rule 2, "250 means durable"): Writer.Commit returns only
// once the message is on stable storage. A message whose envelope and bytes
// fit in 64 KiB is one record in the queue's write-ahead journal, durable
// by an fdatasync shared with every Commit in flight (journal.go; Open
// replays it, replay.go). A larger one is fsynced and renamed into msg/
// and env/, and both directories are fsynced; the envelope rename is its
// commit point, and Open removes whatever a crash left on either side of
// it. See docs/queue.md for the on-disk layout and the full argument.
//
// Bounces: when recipients fail, the queue builds one DSN (internal/dsn)
// and hands it to Options.Bounce. The caller decides where it goes (the cli
// delivers it locally when the sender is a local address and enqueues it
// otherwise); when Options.Bounce is nil the queue enqueues it itself with
// EnqueueBounce. Messages from the null sender never produce a bounce
// (RFC 5321 §4.5.5): the failure is logged and the message dropped.
package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"smtpkit/internal/vfs"
	"smtpkit/internal/wal"
)

// Options configures a Queue. Zero values get the documented defaults.
type Options struct {
	Dir string // the spool directory, <data_dir>/queue
	// FS is the file system the spool lives on; default vfs.OS{}. Tests
	// put internal/vfs/crashfs here to simulate power loss.
	FS      vfs.FS
	Courier Courier
	// Local delivers the recipients that AddLocal put in the queue (local
	// mailboxes whose Maildir delivery failed on receipt). Nil refuses
	// AddLocal.
	Local Courier
	// Bounce hands a built DSN to whoever delivers it. Nil enqueues it in
	// this queue (EnqueueBounce), which suits senders in remote domains.
	Bounce func(ctx context.Context, b Bounce) error
	// Sign returns the header fields (DKIM-Signature, internal/dkim) to
	// prepend to a DSN EnqueueBounce queues, "" for none; nil signs
	// nothing. A DSN delivered into a local Maildir is not signed.
	Sign func(msg []byte) (string, error)
	// RetryMin is the delay after the first temporary failure; each further
	// failure doubles it, up to RetryMax. Defaults 5m and 4h.
	RetryMin, RetryMax time.Duration
	// MaxAge is how long a recipient is retried before it fails and
	// bounces (RFC 5321 §4.5.4.1: "at least 4-5 days"). Default 5 days.
	MaxAge time.Duration
	// DelayWarning sends one "delayed" DSN once a message has waited this
	// long with recipients still pending. 0 (the default) turns it off.
	DelayWarning time.Duration
	// Concurrency bounds the deliveries in flight in total; default 100
	// (Postfix's default_process_limit).
	Concurrency int
	// PerDomain is the most deliveries in flight to one destination
	// group (a domain; its local mailboxes apart); default 20 (Postfix's
	// default_destination_concurrency_limit). Each destination starts
	// at min(5, PerDomain) and adapts (dest.go).
	PerDomain int
	// ActiveLimit is how many messages the queue keeps whole in memory
	// (the active set: due, in flight, or just received); the others are
	// on disk with an index entry of a few dozen bytes (index.go).
	// Default 20000 (Postfix's qmgr_message_active_limit).
	ActiveLimit int
	Hostname    string // Reporting-MTA and the Message-ID domain of DSNs; default "localhost"
	Logger      *slog.Logger
	Now         func() time.Time // the clock; default time.Now

	// NoJournal makes every message take the file path of Writer.Prepare
	// (fsynced and renamed into msg/ and env/, the directories fsynced)
	// instead of the journal in <Dir>/journal (journal.go); a journal an
	// earlier run left is still replayed at Open.
	NoJournal bool
	// JournalMax bounds a journaled message: its whole journal record,
	// envelope and bytes (journal.go). Larger messages take the file
	// path. 0 is DefaultJournalMax; at most wal.MaxPayload.
	JournalMax int
	// JournalMemory bounds the bytes of journaled messages kept in memory
	// until their files are needed (journal.go); past it their files are
	// written at Commit. 0 is DefaultJournalMemory; negative holds none
	// (every journaled message's files are written at Commit).
	JournalMemory int
	// Checkpoint is how often the journal's messages are flushed in the
	// spool and dropped from the journal; 0 is CheckpointInterval,
	// negative runs no checkpointer (tests checkpoint by hand).
	Checkpoint time.Duration

	// noGroupCommit makes every Commit fsync the directories itself, for
	// the benchmark that measures what group commit buys.
	noGroupCommit bool
	// journalSegment and journalPrealloc are the journal's
	// wal.Options.SegmentSize and PreallocSize (0: the defaults): crash
	// tests make segments small and skip the preallocated zeros.
	journalSegment, journalPrealloc int64
}

func (o *Options) setDefaults() {
	if o.RetryMin <= 0 {
		o.RetryMin = 5 * time.Minute
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 4 * time.Hour
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = o.RetryMin
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 5 * 24 * time.Hour
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 100
	}
	if o.PerDomain <= 0 {
		o.PerDomain = 20
	}
	if o.ActiveLimit <= 0 {
		o.ActiveLimit = 20000
	}
	if o.JournalMax <= 0 {
		o.JournalMax = DefaultJournalMax
	}
	o.JournalMax = min(o.JournalMax, wal.MaxPayload)
	if o.JournalMemory == 0 {
		o.JournalMemory = DefaultJournalMemory
	}
	if o.Hostname == "" {
		o.Hostname = "localhost"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FS == nil {
		o.FS = vfs.OS{}
	}
	if o.Checkpoint == 0 {
		o.Checkpoint = CheckpointInterval
	}
}

// Queue is an open spool and its scheduler. All methods are safe for
// concurrent use.
type Queue struct {
	opts Options
	dir  spoolDir
	log  *slog.Logger
	sync *syncer // group commit of the msg/ and env/ directories
	// journal logs the small messages (journal.go); nil with NoJournal.
	journal *journal

	mu     sync.Mutex
	msgs   map[string]*message // the active set
	closed bool
	// The scheduler, guarded by mu: the timeline of the active set's
	// wake-ups, the destinations, the deliveries in flight in total, and
	// the index of the messages that are only on disk.
	tl       timeline
	dests    map[string]*dest
	inflight int
	sweepAt  int
	idx      index
	replayed bool // Open's journal replay wrote files: no index snapshot

	wake chan struct{} // capacity 1: "something changed, look again"
}

// Open opens the spool in opts.Dir, creating it when missing, and recovers
// it from a crash (see recover in spool.go). It starts no delivery: call
// Run for that. Close releases it.
func Open(opts Options) (*Queue, error) {
	opts.setDefaults()
	if opts.Dir == "" {
		return nil, errors.New("queue: no directory")
	}
	if opts.Courier == nil {
		return nil, errors.New("queue: no courier")
	}
	q := &Queue{
		opts:    opts,
		dir:     spoolDir{root: opts.Dir, fs: opts.FS},
		log:     opts.Logger,
		msgs:    make(map[string]*message),
		dests:   make(map[string]*dest),
		sweepAt: minSweep,
		idx:     newIndex(),
		wake:    make(chan struct{}, 1),
	}
	if err := q.dir.create(); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	q.sync = newSyncer(q.dir.syncDirs, !opts.noGroupCommit)
	// The journal's messages become files first: recover loads files.
	if err := q.openJournal(); err != nil {
		q.sync.close()
		return nil, fmt.Errorf("queue: %w", err)
	}
	if err := q.recover(); err != nil {
		q.closeJournal()
		q.sync.close()
		return nil, fmt.Errorf("queue: recovery: %w", err)
	}
	return q, nil
}

// Close stops the group committer and, after a clean stop of the
// journal, writes the index snapshot (snapshot.go). Commits in progress
// fail; Run must have returned before Close is called.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	q.mu.Unlock()
	err := q.closeJournal()
	if err == nil {
		if serr := q.writeSnapshot(); serr != nil {
			q.log.Warn("queue: writing the index snapshot; the next start reads the envelopes", "err", serr)
		}
	}
	q.sync.close()
	return err
}

func (q *Queue) now() time.Time { return q.opts.Now() }

// poke wakes the scheduler without blocking.
func (q *Queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pokeLocked is poke for a caller holding q.mu (poke takes no lock; the
// name says it is safe there).
func (q *Queue) pokeLocked() { q.poke() }

// idLen is the length of a message id: 12 hex digits of the arrival time
// in milliseconds (ids sort by arrival) and 12 random hex digits.
const idLen = 24

// newID returns a new message id.
func newID(now time.Time) string {
	var r [6]byte
	rand.Read(r[:])
	return fmt.Sprintf("%012x", uint64(now.UnixMilli())&(1<<48-1)) + hex.EncodeToString(r[:])
}

// ValidID reports whether id has the form of a message id. Ids from
// outside (the control socket) are checked before they name a file.
func ValidID(id string) bool {
	if len(id) != idLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ErrNotFound is returned for an id that is not in the queue.
var ErrNotFound = errors.New("queue: no such message")

// snapshot returns the messages of the active set.
func (q *Queue) snapshot() []*message {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]*message, 0, len(q.msgs))
	for _, m := range q.msgs {
		out = append(out, m)
	}
	return out
}

// forget removes message id from the active set, with its items.
func (q *Queue) forget(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if m := q.msgs[id]; m != nil {
		for _, it := range m.items {
			q.tl.unplace(it)
		}
		m.items = nil
		delete(q.msgs, id)
	}
	q.pokeLocked() // room in the active set
}

// remove deletes the files of message id (removeFiles in journal.go:
// env first, then msg, after a remove record where the journal may still
// hold the message).
func (q *Queue) remove(id string) error {
	_, err := q.removeFiles(id)
	return err
}

// spoolDir is the spool's root directory and the file system it is on.
type spoolDir struct {
	root string
	fs   vfs.FS
}

func (d spoolDir) msgDir() string         { return filepath.Join(d.root, "msg") }
func (d spoolDir) envDir() string         { return filepath.Join(d.root, "env") }
func (d spoolDir) tmpDir() string         { return filepath.Join(d.root, "tmp") }
func (d spoolDir) corruptDir() string     { return filepath.Join(d.root, "corrupt") }
func (d spoolDir) msg(id string) string   { return filepath.Join(d.msgDir(), id) }
func (d spoolDir) env(id string) string   { return filepath.Join(d.envDir(), id+".json") }
func (d spoolDir) tmp(name string) string { return filepath.Join(d.tmpDir(), name) }
