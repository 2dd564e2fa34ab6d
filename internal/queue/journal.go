package queue

// journal.go: the journaled commit. A message whose record — its envelope
// and its bytes — fits in Options.JournalMax is made durable by one record in a
// write-ahead log (internal/wal) in <root>/journal instead of flushes of
// its own: concurrent Commits share one fdatasync of the log. Once the
// record is durable the message is kept in memory (pending), not yet in
// files: one delivered and removed before the next checkpoint never costs
// a file. Its files are written, unflushed, when something needs them —
// the first env rewrite (saveEnv writes msg/ beside it), a load of its
// env file (a parked message), the checkpoint — and its bytes are read
// from memory until then (openMsg). Past Options.JournalMemory bytes held, messages
// are written at once instead. A checkpoint (every CheckpointInterval)
// writes what is pending and flushes those files — one
// syncfs(2) of the spool's file system, or, where syncfs is no durability
// barrier (FUSE, network and unknown kinds, vfs.Kind), an fsync of each
// file written since the last one and of msg/ and env/ — and only then
// drops the log's segments. Open replays what is left before it loads the
// spool (replay.go): every message a record holds gets its files back.
//
// A message removed (delivered, withdrawn, deleted) while its record may
// still be in the log would come back from a replay, so its removal is
// logged too: a remove record (a tombstone), durable before the files go,
// makes the replay delete them instead. A message whose record was dropped
// by a checkpoint is removed as before (unlink, then the directory fsync).
// The log retires its segments oldest first, so a replay never sees a
// commit without the tombstones written after it.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"smtpkit/internal/vfs"
	"smtpkit/internal/wal"
)

// DefaultJournalMax is Options.JournalMax by default: a journaled
// message's whole record, envelope and bytes, at most 256 KiB. Larger
// messages take the file path (Writer.Prepare). A message up to this size
// is held in memory while it arrives, so the bound is also the most a
// session in DATA holds (the connection limit times this, at worst).
const DefaultJournalMax = 256 << 10

// CheckpointInterval is how often, by default, the files of journaled
// messages are flushed and the journal's segments dropped.
const CheckpointInterval = time.Second

// Record kinds.
const (
	recCommit = 'M' // id, envelope (JSON, as in env/), the message bytes
	recRemove = 'R' // id: the message's files were removed on purpose
)

// journalDir is the log's directory under the spool root.
const journalDir = "journal"

// DefaultJournalMemory is Options.JournalMemory by default: the bytes of
// journaled messages held in memory before their files are written
// (about 640 messages of 100 KB, 64,000 of 1 KB). Past it, a message's
// files are written at its commit, and a relay that outruns its
// deliveries pays a file per message again: at 32 MiB the 100 KB relay
// benchmark ran at half the rate of 64 MiB (docs/performance.md).
const DefaultJournalMemory = 64 << 20

// pending is a journaled message whose files are not written yet.
type pending struct {
	mu        sync.Mutex
	env, body []byte
	done      bool // written, or the message was removed: gone from journal.pending
}

// journal is the queue's write-ahead log and its checkpointer.
type journal struct {
	log    *wal.Log
	dir    spoolDir
	syncfs bool // flush with one syncfs; false: fsync each file in dirty

	mu sync.Mutex
	// live holds the messages whose commit record may still be in the
	// log, with the number of checkpoints begun when it was durable: a
	// checkpoint numbered above that one has dropped it.
	live      map[string]uint64
	completed uint64   // the number of the last checkpoint that finished
	dirty     []string // files written since the last flush (per-file mode)
	pending   map[string]*pending
	held      int // bytes in pending
	holdMax   int // Options.JournalMemory, at least 0

	begun  atomic.Uint64 // checkpoints begun
	broken atomic.Bool   // a failed fdatasync closed the log: commits take the file path
	ckpt   sync.Mutex    // one checkpoint at a time (wal.Checkpoint's rule)
	stop   chan struct{}
	done   chan struct{}
	onErr  func(error)
	pool   sync.Pool // record encoding buffers
}

// openJournal opens <root>/journal, replays what an earlier run left in
// it and checkpoints, so that recover finds every journaled message as
// files. With Options.NoJournal an existing journal is replayed and
// closed; none is created.
func (q *Queue) openJournal() error {
	path := filepath.Join(q.dir.root, journalDir)
	if q.opts.NoJournal {
		if _, err := q.dir.fs.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
	}
	log, err := wal.OpenOptions(path, wal.Options{FS: q.dir.fs,
		SegmentSize: q.opts.journalSegment, PreallocSize: q.opts.journalPrealloc})
	if err != nil {
		return err
	}
	j := &journal{log: log, dir: q.dir, live: map[string]uint64{}, pending: map[string]*pending{}, syncfs: syncFSBarrier(q.dir),
		holdMax: max(q.opts.JournalMemory, 0), stop: make(chan struct{}), done: make(chan struct{}),
		onErr: func(err error) {
			q.log.Error("queue: journal checkpoint failed; will retry (messages stay in the journal)", "err", err)
		}}
	st, err := j.replay()
	if err == nil {
		err = j.checkpoint()
	}
	if err != nil {
		log.Close()
		return fmt.Errorf("journal replay: %w", err)
	}
	if !st.empty() {
		q.replayed = true // files changed since the last Close: no index snapshot
		q.log.Warn("queue: journal replayed after an unclean stop", "records", st.Records, "written", st.Written,
			"repaired", st.Repaired, "present", st.Present, "removed", st.Removed)
	}
	if q.opts.NoJournal {
		return log.Close()
	}
	q.journal = j
	flush := "syncfs"
	if !j.syncfs {
		flush = "fsync per file" // syncfs is no durability barrier on this file system
	}
	q.log.Info("queue: journal", "dir", path, "checkpoint_flush", flush)
	if q.opts.Checkpoint < 0 {
		close(j.done) // tests checkpoint by hand
		return nil
	}
	go j.run(q.opts.Checkpoint)
	return nil
}

// syncFSBarrier reports whether one syncfs of the spool's file system
// makes its files durable (vfs.Kind.SyncFSIsBarrier).
func syncFSBarrier(d spoolDir) bool {
	u, err := d.fs.Statfs(d.root)
	return err == nil && vfs.KindOf(u.Type).SyncFSIsBarrier()
}

// run checkpoints every interval until close.
func (j *journal) run(every time.Duration) {
	defer close(j.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-j.stop:
			return
		case <-t.C:
			if j.log.Pending() {
				// A failure leaves the segments for the next try or for the
				// replay after a restart: nothing is lost.
				if err := j.checkpoint(); err != nil {
					j.onErr(err)
				}
			}
		}
	}
}

// close stops the checkpointer, runs a last checkpoint and closes the log.
// Commits must have stopped.
func (j *journal) close() error {
	select {
	case <-j.stop:
		return nil
	default:
	}
	close(j.stop)
	<-j.done
	err := j.checkpoint()
	if cerr := j.log.Close(); err == nil {
		err = cerr
	}
	return err
}

// closeJournal stops the journal at Close (see journal.close).
func (q *Queue) closeJournal() error {
	if q.journal == nil {
		return nil
	}
	if err := q.journal.close(); err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	return nil
}

// checkpoint makes the files of every record appended so far durable and
// drops those records (wal.Log.Checkpoint with flush).
func (j *journal) checkpoint() error {
	j.ckpt.Lock()
	defer j.ckpt.Unlock()
	n := j.begun.Add(1)
	if err := j.log.Checkpoint(j.flush); err != nil {
		return fmt.Errorf("queue: checkpoint: %w", err)
	}
	j.mu.Lock()
	j.completed = n
	for id, at := range j.live {
		if at < n {
			delete(j.live, id)
		}
	}
	j.mu.Unlock()
	return nil
}

// flush writes the pending messages' files and makes the files written
// for journaled messages, and the removals of journaled messages, durable.
func (j *journal) flush() error {
	j.mu.Lock()
	ids := make([]string, 0, len(j.pending))
	for id := range j.pending {
		ids = append(ids, id)
	}
	j.mu.Unlock()
	for _, id := range ids {
		if err := j.writeOut(id, true); err != nil {
			return err
		}
	}
	if j.syncfs {
		return j.dir.fs.SyncFS(j.dir.root)
	}
	j.mu.Lock()
	paths := j.dirty
	j.dirty = nil
	j.mu.Unlock()
	err := fsyncAll(j.dir.fs, paths)
	if err == nil {
		err = j.dir.syncDirs()
	}
	if err != nil {
		// The records stay in the log; the next checkpoint must flush
		// these files again before it may drop them.
		j.mu.Lock()
		j.dirty = append(paths, j.dirty...)
		j.mu.Unlock()
	}
	return err
}

// fsyncAll fsyncs each file of paths that still exists.
func fsyncAll(fsys vfs.FS, paths []string) error {
	for _, p := range paths {
		f, err := fsys.OpenFile(p, os.O_RDONLY, 0)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since: its removal is flushed by the directory fsync
		}
		if err != nil {
			return err
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// commit logs message id (envelope env, bytes body) and writes its files.
// When it returns nil the message survives a crash.
func (j *journal) commit(id string, env, body []byte) error {
	bp, _ := j.pool.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	*bp = encodeCommit((*bp)[:0], id, env, body)
	t, err := j.log.Append(*bp)
	j.pool.Put(bp)
	if err != nil {
		return fmt.Errorf("queue: journal: %w", err)
	}
	at := j.begun.Load() // after the record is durable: see checkpoint
	j.mu.Lock()
	hold := j.held+len(env)+len(body) <= j.holdMax
	if hold {
		j.pending[id] = &pending{env: env, body: bytes.Clone(body)}
		j.held += len(env) + len(body)
		j.live[id] = at
	}
	j.mu.Unlock()
	if hold {
		t.Done()
		return nil
	}
	if err := j.materialize(id, env, body); err != nil {
		// The record is durable: a replay would bring back what the
		// client is told failed. Log its removal first.
		rt, rerr := j.log.Append(encodeRemove(nil, id))
		j.dir.removeFiles(id)
		t.Done()
		if rerr == nil {
			rt.Done()
		}
		return fmt.Errorf("queue: writing message: %w", err)
	}
	j.mu.Lock()
	j.live[id] = at
	j.mu.Unlock()
	t.Done()
	return nil
}

// materialize writes msg/<id> and env/<id>.json, unflushed: the record
// holds them until a checkpoint has flushed them.
func (j *journal) materialize(id string, env, body []byte) error {
	for _, f := range []struct {
		path string
		data []byte
	}{{j.dir.msg(id), body}, {j.dir.env(id), env}} {
		if err := writeNew(j.dir.fs, f.path, f.data, os.O_EXCL); err != nil {
			return err
		}
		if !j.syncfs {
			j.mu.Lock()
			j.dirty = append(j.dirty, f.path)
			j.mu.Unlock()
		}
	}
	return nil
}

// writeOut writes the files of message id if it is pending: msg/<id>,
// and env/<id>.json from the record when withEnv and there is none yet (a
// saveEnv may have written a later state). Its bytes are read from the
// file afterwards.
func (j *journal) writeOut(id string, withEnv bool) error {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	p := j.pending[id]
	j.mu.Unlock()
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return nil
	}
	paths := []string{j.dir.msg(id)}
	if err := writeNew(j.dir.fs, paths[0], p.body, os.O_TRUNC); err != nil {
		return fmt.Errorf("queue: writing message: %w", err)
	}
	if withEnv {
		err := writeNew(j.dir.fs, j.dir.env(id), p.env, os.O_EXCL)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("queue: writing envelope: %w", err)
		}
		if err == nil {
			paths = append(paths, j.dir.env(id))
		}
	}
	p.done = true
	j.mu.Lock()
	j.drop(id, p)
	if !j.syncfs {
		j.dirty = append(j.dirty, paths...)
	}
	j.mu.Unlock()
	return nil
}

// drop forgets pending message p. Called with mu held.
func (j *journal) drop(id string, p *pending) {
	if j.pending[id] == p {
		delete(j.pending, id)
		j.held -= len(p.env) + len(p.body)
	}
}

// heldBody is the bytes of message id while it is pending.
func (j *journal) heldBody(id string) ([]byte, bool) {
	if j == nil {
		return nil, false
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if p := j.pending[id]; p != nil {
		return p.body, true
	}
	return nil, false
}

// openMsg opens message id's bytes: from memory while it is pending in
// the journal, else msg/<id>.
func (q *Queue) openMsg(id string) (io.ReadCloser, error) {
	if b, ok := q.journal.heldBody(id); ok {
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	f, err := q.dir.fs.OpenFile(q.dir.msg(id), os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// writeNew writes data to path without flushing it; flag is os.O_EXCL for
// a new file or os.O_TRUNC to replace one.
func writeNew(fsys vfs.FS, path string, data []byte, flag int) error {
	f, err := fsys.OpenFile(path, os.O_WRONLY|os.O_CREATE|flag, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// remove logs the removal of message id when its commit record may still
// be replayed (see the top of this file), and reports whether it did: the
// removal is then durable once the files are gone. noFiles says the
// message was still pending: it never had files. The caller removes the
// files and then calls done.
func (j *journal) remove(id string) (logged, noFiles bool, done func(), err error) {
	j.mu.Lock()
	at, ok := j.live[id]
	live := ok && at >= j.completed
	p := j.pending[id]
	j.mu.Unlock()
	if p != nil { // its files will not be written
		p.mu.Lock()
		noFiles = !p.done
		p.done = true
		p.mu.Unlock()
		j.mu.Lock()
		j.drop(id, p)
		j.mu.Unlock()
	}
	if !live {
		return false, noFiles, func() {}, nil
	}
	t, err := j.log.Append(encodeRemove(nil, id))
	if err != nil {
		return false, noFiles, func() {}, fmt.Errorf("queue: journal: %w", err)
	}
	return true, noFiles, func() {
		j.mu.Lock()
		delete(j.live, id)
		j.mu.Unlock()
		t.Done()
	}, nil
}

// removeFiles deletes the files of message id: env first (the commit
// point, so that a crash in between leaves a msg without env, which Open
// removes), then msg. A message whose journal record may still be replayed
// gets a remove record first, and then removeFiles reports true: the
// removal is durable. Otherwise the caller makes it durable (q.sync).
func (q *Queue) removeFiles(id string) (bool, error) {
	logged, noFiles, done := false, false, func() {}
	var jerr error
	if q.journal != nil {
		logged, noFiles, done, jerr = q.journal.remove(id)
	}
	var err error
	if !noFiles {
		err = q.dir.removeFiles(id)
	}
	done()
	if jerr != nil {
		return false, jerr
	}
	return logged, err
}

// removeDurable removes message id's files and makes the removal durable:
// by its remove record, or by a directory fsync (group commit).
func (q *Queue) removeDurable(id string) error {
	logged, err := q.removeFiles(id)
	if err != nil || logged {
		return err
	}
	return q.sync.Sync()
}

// removeFiles deletes env/<id>.json, then msg/<id>.
func (d spoolDir) removeFiles(id string) error {
	if err := d.fs.Remove(d.env(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := d.fs.Remove(d.msg(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// A record is its kind, then
//
//	recCommit: id (idLen octets), envelope length (uint32 LE), envelope, bytes
//	recRemove: id (idLen octets)
const commitHeader = 1 + idLen + 4

// fitsJournal reports whether a message with an envelope of envLen octets
// and size bytes is journaled.
func (q *Queue) fitsJournal(envLen, size int) bool {
	return commitHeader+envLen+size <= q.opts.JournalMax
}

func encodeCommit(b []byte, id string, env, body []byte) []byte {
	b = append(b, recCommit)
	b = append(b, id...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(env)))
	b = append(b, env...)
	return append(b, body...)
}

func encodeRemove(b []byte, id string) []byte {
	b = append(b, recRemove)
	return append(b, id...)
}

// jrecord is a decoded journal record.
type jrecord struct {
	kind      byte
	id        string
	env, body []byte // recCommit; slices of the payload
}

var errBadRecord = errors.New("queue: damaged journal record")

// decodeRecord parses a journal record. The payload passed the log's CRC,
// so damage here means a bug or a foreign file, reported as an error.
func decodeRecord(p []byte) (jrecord, error) {
	if len(p) < 1+idLen {
		return jrecord{}, errBadRecord
	}
	r := jrecord{kind: p[0], id: string(p[1 : 1+idLen])}
	if !ValidID(r.id) {
		return jrecord{}, errBadRecord
	}
	p = p[1+idLen:]
	switch r.kind {
	case recRemove:
		if len(p) != 0 {
			return jrecord{}, errBadRecord
		}
		return r, nil
	case recCommit:
		if len(p) < 4 {
			return jrecord{}, errBadRecord
		}
		n := binary.LittleEndian.Uint32(p)
		p = p[4:]
		if uint64(n) > uint64(len(p)) {
			return jrecord{}, errBadRecord
		}
		r.env, r.body = p[:n], p[n:]
		return r, nil
	}
	return jrecord{}, errBadRecord
}
