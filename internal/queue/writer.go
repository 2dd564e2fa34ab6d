package queue

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"smtpkit/internal/smtp"
	"smtpkit/internal/vfs"
	"smtpkit/internal/wal"
)

// bufSize is the Writer's buffer: a message too large for the journal
// streams to tmp/ in chunks of this size and is never held whole in
// memory.
const bufSize = 64 << 10

// Writer receives one message's bytes and commits it to the spool. The
// bytes are held in memory while they may fit a journal record
// (Options.JournalMax) and go to tmp/ from the first Write that does not.
// Write, Commit and Abort must not be called concurrently on one Writer.
type Writer struct {
	q    *Queue
	env  *envelope
	held *[]byte // the bytes so far, until they go to tmp/ (from heldPool)
	tmp  string  // tmp/<id>, once the bytes go there
	f    vfs.File
	w    *bufio.Writer
	done bool
	m    *message // after Prepare, until Publish or Withdraw
	// localDSN is Envelope.LocalDSN, for AddLocal.
	localDSN map[string]smtp.RcptDSN
}

// Envelope is what Begin needs of a message besides its bytes: the
// reverse-path, the recipients and what the receiving session knew. (The
// queue's own record of a message, with each recipient's state, is the
// env file, see envelope.)
type Envelope struct {
	From smtp.Address   // the reverse-path; the zero Address is the null sender (RFC 5321 §4.5.5)
	To   []smtp.Address // the recipients; exact duplicates are dropped
	// DSN holds each recipient's NOTIFY and ORCPT (RFC 3461 §4.1, §4.2),
	// parallel to To; nil or shorter means absent for the rest.
	DSN []smtp.RcptDSN
	// LocalDSN is the NOTIFY and ORCPT of local mailboxes (LocalTo, or
	// added by AddLocal), by address; absent ones get the defaults.
	LocalDSN map[string]smtp.RcptDSN
	// LocalTo are local mailboxes the queue delivers with Options.Local
	// from the start: those whose NOTIFY=SUCCESS makes the Maildir
	// delivery and its "delivered" notice one queued, durable job.
	LocalTo []string
	Meta    Meta
}

// Begin starts a message for env. Every recipient needs a domain. The
// bytes go to tmp/ until Commit.
func (q *Queue) Begin(env Envelope) (*Writer, error) {
	to := make([]string, len(env.To))
	for i, a := range env.To {
		to[i] = a.String()
	}
	if len(env.LocalTo) > 0 && q.opts.Local == nil {
		return nil, errNoLocal
	}
	w, err := q.begin(env.From.String(), append(to, env.LocalTo...), env.Meta)
	if err != nil {
		return nil, err
	}
	w.env.setDSN(to, env.DSN)
	w.localDSN = env.LocalDSN
	for _, r := range w.env.Rcpts {
		if slices.Contains(env.LocalTo, r.Addr) {
			r.Local = true
			w.setLocalDSN(r)
		}
	}
	return w, nil
}

// setDSN records each recipient's DSN parameters (to and dsn parallel, as
// given to Begin; a dropped duplicate keeps the first one's).
func (e *envelope) setDSN(to []string, dsn []smtp.RcptDSN) {
	if len(dsn) == 0 {
		return
	}
	byAddr := make(map[string]*rcpt, len(e.Rcpts))
	for _, r := range e.Rcpts {
		byAddr[r.Addr] = r
	}
	for i := len(dsn) - 1; i >= 0 && i < len(to); i-- {
		r, d := byAddr[to[i]], dsn[i]
		if r == nil {
			continue
		}
		r.Notify, r.ORCPT = d.Notify.String(), nil
		if !d.ORCPT.IsZero() {
			o := d.ORCPT
			r.ORCPT = &o
		}
	}
}

// begin is Begin on addresses as the env file keeps them: from "" is the
// null sender; each recipient's domain is what follows its last '@'.
func (q *Queue) begin(from string, rcpts []string, meta Meta) (*Writer, error) {
	q.mu.Lock()
	closed := q.closed
	q.mu.Unlock()
	if closed {
		return nil, errClosed
	}
	now := q.now()
	e, err := newEnvelope(newID(now), from, rcpts, meta, now)
	if err != nil {
		return nil, err
	}
	w := &Writer{q: q, env: e}
	if q.journal == nil {
		if err := w.spill(); err != nil {
			return nil, err
		}
		return w, nil
	}
	w.held = heldPool.Get().(*[]byte)
	return w, nil
}

// heldPool recycles the Writers' in-memory buffers. They start at
// heldCap and grow, up to Options.JournalMax, for the messages that need
// it; one grown past heldCap is not kept for the next message.
var heldPool = sync.Pool{New: func() any { b := make([]byte, 0, heldCap); return &b }}

const heldCap = 64 << 10

// spill opens tmp/<id> and moves the bytes held so far there: from now on
// the message streams to its file.
func (w *Writer) spill() error {
	q := w.q
	tmp := q.dir.tmp(w.env.ID)
	f, err := q.dir.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return storageError(fmt.Errorf("queue: %w", err))
	}
	w.tmp, w.f, w.w = tmp, f, bufio.NewWriterSize(f, bufSize)
	if w.held != nil {
		_, err = w.w.Write(*w.held)
		w.release()
	}
	if err != nil {
		f.Close()
		q.dir.fs.Remove(tmp)
		w.f = nil
		return storageError(fmt.Errorf("queue: %w", err))
	}
	return nil
}

// release gives the in-memory buffer back.
func (w *Writer) release() {
	if w.held != nil {
		if cap(*w.held) <= heldCap {
			*w.held = (*w.held)[:0]
			heldPool.Put(w.held)
		}
		w.held = nil
	}
}

// newEnvelope is the envelope of a message arriving at now: exact
// duplicate recipients dropped, each recipient's domain what follows its
// last '@' (required), every recipient due at once.
func newEnvelope(id, from string, rcpts []string, meta Meta, now time.Time) (*envelope, error) {
	e := &envelope{Version: envelopeVersion, ID: id, From: from, Arrival: now, Meta: meta}
	seen := make(map[string]bool, len(rcpts))
	for _, a := range rcpts {
		if seen[a] {
			continue
		}
		seen[a] = true
		d := domainOf(a)
		if d == "" {
			return nil, fmt.Errorf("queue: recipient %q has no domain", a)
		}
		e.Rcpts = append(e.Rcpts, &rcpt{Addr: a, Domain: d, State: Queued, Next: now})
	}
	if len(e.Rcpts) == 0 {
		return nil, errors.New("queue: no recipients")
	}
	return e, nil
}

// Write appends p to the message.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("queue: write after commit or abort")
	}
	if w.f == nil && len(*w.held)+len(p) > w.q.opts.JournalMax-commitHeader {
		if err := w.spill(); err != nil {
			return 0, err
		}
	}
	if w.f == nil {
		*w.held = append(*w.held, p...)
		w.env.Size += int64(len(p))
		return len(p), nil
	}
	n, err := w.w.Write(p)
	w.env.Size += int64(n)
	return n, storageError(err)
}

// replyNoSpace answers a message the spool has no room for: 452 4.3.1,
// insufficient system storage (RFC 5321 §4.2.3; RFC 3463 §3.4 "mail
// system full"), as the Maildir path answers, so the client retries later.
var replyNoSpace = smtp.R(smtp.CodeInsufficientSpace, smtp.EnhSystemFull.Temp(), "Insufficient system storage, try again later")

// storageError gives an error that means "out of space" (ENOSPC, or
// EDQUOT: the spool's owner is over quota) the reply replyNoSpace. Any
// other error is returned as it is: the server answers it 451 4.3.0
// (unknown errors are temporary).
func storageError(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return smtp.Wrap(replyNoSpace, err)
	}
	return err
}

// Commit makes the message durable and schedules it: Prepare, then
// Publish. When it returns nil the message is on stable storage and may be
// acknowledged with 250.
func (w *Writer) Commit() (string, error) {
	id, err := w.Prepare()
	if err != nil {
		return "", err
	}
	w.Publish()
	return id, nil
}

// Prepare makes the message durable but does not hand it to the
// scheduler yet: nothing is delivered before Publish, and Withdraw can
// still take it back. When it returns nil the message survives a crash
// (and is delivered after it). A message whose envelope and bytes fit in
// a journal record (Options.JournalMax) is one record in the journal, durable
// with one fdatasync shared by every Commit in flight, and then written
// to msg/ and env/ unflushed (see journal.go). A larger one, or any
// message with Options.NoJournal:
//
//  1. the bytes are flushed and fsynced in tmp/<id>, then renamed to msg/<id>;
//  2. the envelope is written to tmp/, fsynced and renamed to env/<id>.json
//     (the commit point: recovery keeps exactly the messages that have one);
//  3. msg/ and env/ are fsynced (shared with concurrent Commits, see syncer).
//
// On error nothing of the message remains (or what remains is removed at
// the next Open) and the caller must answer with a temporary failure.
func (w *Writer) Prepare() (string, error) {
	if w.done {
		return "", errors.New("queue: commit after commit or abort")
	}
	w.done = true
	var id string
	var err error
	if w.f == nil {
		id, err = w.prepareJournaled()
	} else {
		id, err = w.prepareFiles()
	}
	if err != nil {
		return "", err
	}
	q := w.q
	w.m = newMessage(w.env)
	w.m.prepared = true
	q.mu.Lock()
	q.msgs[id] = w.m
	q.mu.Unlock()
	return id, nil
}

// prepareJournaled is Prepare for a message held in memory: one journal
// record, or the file path when the record would be too large.
func (w *Writer) prepareJournaled() (string, error) {
	data, err := w.env.marshal()
	if err != nil {
		w.release()
		return "", fmt.Errorf("queue: committing message: %w", err)
	}
	j := w.q.journal
	if w.q.fitsJournal(len(data), len(*w.held)) && !j.broken.Load() {
		err := j.commit(w.env.ID, data, *w.held)
		if !errors.Is(err, wal.ErrClosed) {
			w.release()
			if err != nil {
				return "", storageError(err)
			}
			return w.env.ID, nil
		}
		// A failed fdatasync closed the journal (its error went to the
		// commit that saw it): the file path does not need it.
		if j.broken.CompareAndSwap(false, true) {
			w.q.log.Error("queue: the journal stopped after a failed fdatasync; messages take the file path until a restart", "err", err)
		}
	}
	if err := w.spill(); err != nil {
		return "", err
	}
	return w.prepareFiles()
}

// prepareFiles is Prepare for a message in tmp/: steps 1 to 3 above.
func (w *Writer) prepareFiles() (string, error) {
	q, id := w.q, w.env.ID
	err := w.w.Flush()
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = q.dir.fs.Rename(w.tmp, q.dir.msg(id))
	}
	if err != nil {
		w.q.dir.fs.Remove(w.tmp)
		return "", storageError(fmt.Errorf("queue: writing message: %w", err))
	}
	data, err := w.env.marshal()
	if err == nil {
		err = q.dir.writeFileAtomic(q.dir.env(id), id+".env", data)
	}
	if err == nil {
		err = q.sync.Sync()
	}
	if err != nil {
		// Not acknowledged: take it back. If the env rename happened but its
		// durability is unknown, a crash may still bring the message back,
		// which delivers a message the client will send again (duplicate,
		// never loss).
		q.remove(id)
		return "", storageError(fmt.Errorf("queue: committing message: %w", err))
	}
	return id, nil
}

// Publish hands a prepared message to the scheduler.
func (w *Writer) Publish() {
	m, q := w.m, w.q
	if m == nil {
		return
	}
	w.m = nil
	m.mu.Lock()
	m.prepared = false
	e := m.env
	q.rearm(m) // onto the timeline (schedule.go)
	m.mu.Unlock()
	q.log.Info("queued", "msgid", e.ID, "from", e.From, "rcpts", len(e.Rcpts), "size", e.Size,
		"relay", e.Meta.Relay, "auth_user", e.Meta.AuthUser, "remote", e.Meta.ReceivedFrom)
	q.poke()
}

// Abort discards the message. It is safe to call after Commit (it does
// nothing then), so callers can defer it; after Prepare without Publish
// it withdraws the message.
func (w *Writer) Abort() {
	if w.m != nil {
		if err := w.Withdraw(); err != nil {
			w.q.log.Error("queue: withdrawing a prepared message", "msgid", w.env.ID, "err", err)
		}
		return
	}
	if w.done {
		return
	}
	w.done = true
	w.release()
	if w.f != nil {
		w.f.Close()
		w.q.dir.fs.Remove(w.tmp)
	}
}

// EnqueueBounce queues a DSN from the null sender to b.To, signed with
// Options.Sign. It is the default Options.Bounce.
func (q *Queue) EnqueueBounce(ctx context.Context, b Bounce) error {
	w, err := q.begin("", []string{b.To}, Meta{SMTPUTF8: b.SMTPUTF8, EightBit: b.EightBit})
	if err != nil {
		return err
	}
	defer w.Abort()
	if q.opts.Sign != nil {
		fields, err := q.opts.Sign(b.Message)
		if err != nil {
			return err
		}
		if err := w.Prepend(fields); err != nil {
			return err
		}
	}
	if _, err := w.Write(b.Message); err != nil {
		return err
	}
	_, err = w.Commit()
	return err
}
