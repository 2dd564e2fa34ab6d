// Package greylist is greylisting (Harris, "The Next Step in the Spam
// Control War: Greylisting", 2003; RFC 6647 describes the practice): mail
// for a new triplet of client network, sender and recipient is deferred
// with a temporary failure; a real MTA retries (RFC 5321 §4.5.4.1), most
// spam software does not. The triplet passes when it comes back after
// Delay and within RetryWindow of its first attempt, and is then
// remembered for Expire after its last pass, so that a correspondent is
// delayed once, not for every message.
//
// The state is a bounded map in memory (MaxEntries; when it is full the
// oldest pending triplets go first, then the passed triplets used least
// recently), written to <dir>/greylist.json every Flush and at Close
// (state.go), and read back at Open: a restart neither forgets who
// passed nor makes a waiting sender start over.
package greylist

import (
	"container/list"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"smtpkit/internal/statefile"
)

// Defaults of Options (the [greylist] defaults of internal/config; the
// values postgrey uses: 5 minutes, a retry window of 2 days, 35 days).
const (
	DefaultDelay       = 5 * time.Minute
	DefaultRetryWindow = 48 * time.Hour
	DefaultExpire      = 35 * 24 * time.Hour
	DefaultMaxEntries  = 100000
	DefaultFlush       = 30 * time.Second
)

// Options configure a List.
type Options struct {
	Dir string // <data_dir>/greylist, created 0700
	// Delay is how long after its first attempt a triplet is still
	// deferred.
	Delay time.Duration
	// RetryWindow is how long after its first attempt a retry is
	// accepted; a triplet not retried in time starts over.
	RetryWindow time.Duration
	// Expire is how long a triplet that passed is remembered after its
	// last pass.
	Expire     time.Duration
	MaxEntries int
	Flush      time.Duration // how often a changed state is written
	Now        func() time.Time
	Logger     *slog.Logger
}

// Reason says why a triplet passed or was deferred.
type Reason string

const (
	Known    Reason = "known"     // passed before, within Expire
	Retried  Reason = "retried"   // came back after Delay, within RetryWindow: passes from now on
	New      Reason = "new"       // first attempt (or forgotten: expired or evicted)
	TooEarly Reason = "too_early" // came back before Delay was over
	Late     Reason = "late"      // came back after RetryWindow: starts over
)

// Decision is the verdict on one attempt.
type Decision struct {
	Pass   bool
	Reason Reason
	// Wait is how long the client should still wait, for a deferral.
	Wait time.Duration
}

// List is the greylist. Its methods are safe for concurrent use.
type List struct {
	opts Options
	path string
	log  *slog.Logger

	mu      sync.Mutex
	m       map[Triplet]*entry
	pending *list.List // of *entry, by first attempt, oldest first
	passed  *list.List // of *entry, by last pass, oldest first
	gen     uint64     // bumped by every change
	evicted int64      // entries dropped for room since the last flush

	flushMu sync.Mutex // one write of the file at a time
	saved   uint64     // gen of the last write
	flusher *statefile.Flusher
}

// entry is one triplet's state.
type entry struct {
	key   Triplet
	first time.Time // first attempt of the current round
	last  time.Time // last pass; zero while pending
	elem  *list.Element
}

func (e *entry) isPassed() bool { return !e.last.IsZero() }

// Open reads the state in opts.Dir, if any, and starts writing it every
// opts.Flush. Close stops that and writes it a last time.
func Open(opts Options) (*List, error) {
	if opts.Delay <= 0 {
		opts.Delay = DefaultDelay
	}
	if opts.RetryWindow <= 0 {
		opts.RetryWindow = DefaultRetryWindow
	}
	if opts.Expire <= 0 {
		opts.Expire = DefaultExpire
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.Flush <= 0 {
		opts.Flush = DefaultFlush
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("greylist: %w", err)
	}
	l := &List{opts: opts, path: filepath.Join(opts.Dir, stateFile), log: opts.Logger}
	l.reset()
	if err := statefile.Load(l.path, l.parse, l.reset, l.log); err != nil {
		return nil, fmt.Errorf("greylist: %w", err)
	}
	l.saved = l.gen
	l.flusher = statefile.Start(opts.Flush, l.Flush, func(err error) {
		l.log.Error("greylist: writing the state failed; will retry", "path", l.path, "err", err)
	})
	return l, nil
}

func (l *List) reset() {
	l.m = map[Triplet]*entry{}
	l.pending, l.passed = list.New(), list.New()
}

// Close stops the periodic writes and writes the state a last time.
func (l *List) Close() error { return l.flusher.Close() }

// Len is the number of triplets held.
func (l *List) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// Check records an attempt of t and says whether it passes.
func (l *List) Check(t Triplet) Decision {
	now := l.opts.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	// The sweep follows the decision, so that a late retry is told as such.
	defer l.expire(now, sweepBatch)
	e := l.m[t]
	switch {
	case e == nil:
		l.add(t, now)
		return Decision{Reason: New, Wait: l.opts.Delay}
	case e.isPassed() && now.Sub(e.last) <= l.opts.Expire:
		e.last = now
		l.passed.MoveToBack(e.elem)
		l.gen++
		return Decision{Pass: true, Reason: Known}
	case e.isPassed():
		// Forgotten (the sweep had not reached it yet): a new round.
		l.remove(e)
		l.add(t, now)
		return Decision{Reason: New, Wait: l.opts.Delay}
	}
	age := now.Sub(e.first)
	switch {
	case age < l.opts.Delay:
		return Decision{Reason: TooEarly, Wait: l.opts.Delay - age}
	case age <= l.opts.RetryWindow:
		l.pending.Remove(e.elem)
		e.last = now
		e.elem = l.passed.PushBack(e)
		l.gen++
		return Decision{Pass: true, Reason: Retried}
	default:
		e.first = now
		l.pending.MoveToBack(e.elem)
		l.gen++
		return Decision{Reason: Late, Wait: l.opts.Delay}
	}
}

// sweepBatch bounds the expired entries one Check removes (the rest go
// at the next ones, or at Flush).
const sweepBatch = 16

// expire removes up to n entries whose time is over from the front of
// both lists (n < 0: all of them).
func (l *List) expire(now time.Time, n int) {
	for n != 0 {
		f := l.pending.Front()
		if f == nil || now.Sub(f.Value.(*entry).first) <= l.opts.RetryWindow {
			break
		}
		l.remove(f.Value.(*entry))
		n--
	}
	for n != 0 {
		f := l.passed.Front()
		if f == nil || now.Sub(f.Value.(*entry).last) <= l.opts.Expire {
			break
		}
		l.remove(f.Value.(*entry))
		n--
	}
}

// add inserts t as a new pending triplet, making room first: what has
// expired goes before anything is evicted.
func (l *List) add(t Triplet, first time.Time) *entry {
	if len(l.m) >= l.opts.MaxEntries {
		l.expire(first, -1)
	}
	for len(l.m) >= l.opts.MaxEntries {
		l.evict()
	}
	e := &entry{key: t, first: first}
	e.elem = l.pending.PushBack(e)
	l.m[t] = e
	l.gen++
	return e
}

// evict drops the oldest pending triplet, or, when none is pending, the
// passed triplet used least recently: a flood of new triplets (a spam
// run) displaces other waiting senders before it displaces known ones.
func (l *List) evict() {
	f := l.pending.Front()
	if f == nil {
		f = l.passed.Front()
	}
	l.remove(f.Value.(*entry))
	l.evicted++
}

func (l *List) remove(e *entry) {
	if e.isPassed() {
		l.passed.Remove(e.elem)
	} else {
		l.pending.Remove(e.elem)
	}
	delete(l.m, e.key)
	l.gen++
}
