package queue

// journal.go: the journaled commit. A message whose record — its envelope
// and its bytes — fits in journalMax is made durable by one record in a
// write-ahead log (internal/wal) in <root>/journal instead of flushes of
// its own: concurrent Commits share one fdatasync of the log. Once the
// record is durable, msg/<id> and env/<id>.json are written (not flushed)
// so that everything else in the queue reads files as before. A
// checkpoint (every CheckpointInterval) flushes those files — one
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
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"smtpkit/internal/vfs"
	"smtpkit/internal/wal"
)

// journalMax bounds a journaled message: its whole record, envelope and
// bytes. Larger messages take the file path (Writer.Prepare).
const journalMax = 64 << 10

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

	begun atomic.Uint64 // checkpoints begun
	ckpt  sync.Mutex    // one checkpoint at a time (wal.Checkpoint's rule)
	stop  chan struct{}
	done  chan struct{}
	onErr func(error)
	pool  sync.Pool // record encoding buffers
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
	j := &journal{log: log, dir: q.dir, live: map[string]uint64{}, syncfs: syncFSBarrier(q.dir),
		stop: make(chan struct{}), done: make(chan struct{}),
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
		q.log.Warn("queue: journal replayed after an unclean stop", "records", st.Records, "written", st.Written,
			"repaired", st.Repaired, "present", st.Present, "removed", st.Removed)
	}
	if q.opts.NoJournal {
		return log.Close()
	}
	q.journal = j
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

// flush makes the files written for journaled messages, and the removals
// of journaled messages, durable.
func (j *journal) flush() error {
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
// removal is then durable once the files are gone. The caller removes the
// files and then calls done.
func (j *journal) remove(id string) (logged bool, done func(), err error) {
	j.mu.Lock()
	at, ok := j.live[id]
	live := ok && at >= j.completed
	j.mu.Unlock()
	if !live {
		return false, func() {}, nil
	}
	t, err := j.log.Append(encodeRemove(nil, id))
	if err != nil {
		return false, func() {}, fmt.Errorf("queue: journal: %w", err)
	}
	return true, func() {
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
	logged, done := false, func() {}
	var jerr error
	if q.journal != nil {
		logged, done, jerr = q.journal.remove(id)
	}
	err := q.dir.removeFiles(id)
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
func fitsJournal(envLen, size int) bool { return commitHeader+envLen+size <= journalMax }

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
