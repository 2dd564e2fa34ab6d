package maildir

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"smtpkit/internal/wal"
)

// Journaled delivery. A message that fits in the write buffer (bufSize) is
// made durable by one record in a write-ahead log (internal/wal) instead of
// flushes of its own: the record holds the message, its final file name and
// its Maildirs, and concurrent deliveries share one fdatasync of the log.
// Once the record is durable the message file is written and linked into
// every new/ without a flush of its own, so it is visible when Commit
// returns. A checkpoint (every second by default) runs syncfs(2) on the
// file systems of the Maildirs and only then drops the log segments; after
// a crash, Recover replays what is left, repairing or writing any file the
// crash lost. Larger messages take the SyncFileSystem path.
//
// Each record carries the boot id of the running kernel
// (/proc/sys/kernel/random/boot_id, see Writer.SetBootID), because what a
// missing file means depends on what the crash was:
//   - the same boot id: the process died (kill -9, a panic, the OOM
//     killer) but the kernel did not, so its page cache kept every write
//     and link the process made. A message file missing from both new/ and
//     cur/ was removed on purpose (a mail client expunged it) and is not
//     written again; a damaged one is repaired (it cannot be damaged by
//     the crash; rewriting it is harmless).
//   - another boot id (or none, in a record of an older version): the
//     machine lost power or the kernel crashed, and anything not yet
//     flushed by a checkpoint may be gone, so every missing or damaged
//     file is written again.
//
// The window that remains: a message expunged after its delivery and
// before the next checkpoint (CheckpointInterval, one second by default)
// comes back if the machine then loses power before that checkpoint,
// because a deletion and a file lost with the page cache look the same.
// And a storage device that loses power on its own while the kernel keeps
// running (an external disk, some network block devices) loses unflushed
// data with the same boot id: such mail stores need maildir.sync = "file".

// CheckpointInterval is how often, by default, the journal's applied
// records are made durable in the Maildirs and dropped from the log.
const CheckpointInterval = time.Second

// Record kinds.
const (
	recDeliver = 'B' // boot id, name, Maildirs, message
	recLegacy  = 'D' // name, Maildirs, message: a record without a boot id
	recCancel  = 'C' // the seq of a delivery that failed after its record
)

// bootIDPath holds the kernel's random id of the running boot (Linux).
const bootIDPath = "/proc/sys/kernel/random/boot_id"

// maxBootLen bounds a boot id (a UUID is 36 octets).
const maxBootLen = 64

// readBootID returns the running kernel's boot id, or "" where there is
// none: records without one are replayed as after a power loss.
func readBootID() string {
	b, err := os.ReadFile(bootIDPath)
	if err != nil {
		return ""
	}
	return validBootID(string(bytes.TrimSpace(b)))
}

func validBootID(id string) string {
	if len(id) > maxBootLen {
		return ""
	}
	return id
}

// SetBootID replaces the boot id the Writer records in journal records and
// compares them with in Recover (read from /proc/sys/kernel/random/boot_id
// by NewWriter): tests simulate a reboot with it. "" means unknown, which
// Recover treats as a power loss.
func (n *Writer) SetBootID(id string) { n.boot = validBootID(id) }

// journal is the Writer's write-ahead log and its checkpointer.
type journal struct {
	log   *wal.Log
	n     *Writer
	mu    sync.Mutex
	devs  map[string]string // file-system key → a directory on it
	stop  chan struct{}
	done  chan struct{}
	pool  sync.Pool   // record encoding buffers
	onErr func(error) // a failed checkpoint; nil to ignore
}

// SetJournal makes deliveries that fit in the write buffer go through log
// (see the top of this file) and starts the checkpointer, which runs every
// interval (CheckpointInterval when 0) and reports a failed checkpoint to
// onErr (may be nil): the segments stay for the next one, nothing is
// lost, but a disk that fails flushes needs an operator. Call Recover
// first, before the first delivery, and CloseJournal at shutdown.
func (n *Writer) SetJournal(log *wal.Log, every time.Duration, onErr func(error)) {
	if every <= 0 {
		every = CheckpointInterval
	}
	n.setJournal(log, every)
	n.journal.onErr = onErr
}

// setJournal is SetJournal with the checkpoint interval; 0 runs no
// checkpointer (tests that simulate a crash).
func (n *Writer) setJournal(log *wal.Log, every time.Duration) {
	j := &journal{log: log, n: n, devs: map[string]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	n.journal = j
	if every == 0 {
		close(j.done)
		return
	}
	go j.run(every)
}

// CloseJournal stops the checkpointer, runs a last checkpoint and closes
// the log. Messages must have stopped.
func (n *Writer) CloseJournal() error {
	j := n.journal
	if j == nil {
		return nil
	}
	close(j.stop)
	<-j.done
	err := j.log.Checkpoint(j.flush)
	if cerr := j.log.Close(); err == nil {
		err = cerr
	}
	return err
}

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
				// A failure leaves the segments for the next try or for
				// Recover after a restart: nothing is lost.
				if err := j.log.Checkpoint(j.flush); err != nil && j.onErr != nil {
					j.onErr(err)
				}
			}
		}
	}
}

// touch remembers the file system of dir for the checkpoints. The set only
// grows: a record may be applied on a file system between one checkpoint's
// snapshot and the next.
func (j *journal) touch(dir string) error {
	key, err := j.n.fs.key(dir)
	if err != nil {
		return err
	}
	j.mu.Lock()
	if _, ok := j.devs[key]; !ok {
		j.devs[key] = dir
	}
	j.mu.Unlock()
	return nil
}

// flush makes everything applied so far durable: one syncfs per file
// system the journal has delivered to (shared with concurrent deliveries).
func (j *journal) flush() error {
	j.mu.Lock()
	dirs := make([]string, 0, len(j.devs))
	for _, d := range j.devs {
		dirs = append(dirs, d)
	}
	j.mu.Unlock()
	for _, d := range dirs {
		if err := j.n.fs.Flush(d); err != nil {
			return fmt.Errorf("maildir: checkpoint: %w", err)
		}
	}
	return nil
}

// commitJournaled is Commit for a message held whole in the buffer.
func (d *Message) commitJournaled(dirs []Dir) ([]string, error) {
	j := d.writer.journal
	data := *d.buf
	// The file gets its bytes before the record is written, so that
	// linking after it costs no more than the link.
	if _, err := d.f.Write(data); err != nil {
		return nil, fmt.Errorf("maildir: %w", err)
	}
	name := fmt.Sprintf("%s,S=%d", d.writer.next(), d.size)
	for _, dir := range dirs {
		if err := j.touch(filepath.Join(dir.Path, "new")); err != nil {
			return nil, fmt.Errorf("maildir: %w", err)
		}
	}
	bp, _ := j.pool.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	*bp = encodeDeliver((*bp)[:0], d.writer.boot, name, dirs, data)
	ticket, err := j.log.Append(*bp)
	j.pool.Put(bp)
	if err != nil {
		return nil, fmt.Errorf("maildir: journal: %w", err)
	}
	defer ticket.Done()
	paths := make([]string, 0, len(dirs))
	for _, dir := range dirs {
		dst := filepath.Join(dir.Path, "new", name)
		err := d.link(dst)
		if errors.Is(err, syscall.EXDEV) {
			err = d.copyInto(dir, name, dst)
		}
		if err != nil {
			removeAll(d.writer.fsys, paths)
			// The record is durable: cancel it, or a replay would deliver
			// what the client was told failed.
			if t, cerr := j.log.Append(encodeCancel(nil, ticket.Seq)); cerr == nil {
				t.Done()
			}
			return nil, fmt.Errorf("maildir: deliver into %s: %w", dir.Path, err)
		}
		paths = append(paths, dst)
	}
	return paths, nil
}

// maxNameLen bounds the file name a record carries: time, pid and counter
// take under 50 octets, the host name at most 253, each of its characters
// escaped to at most 4 (sanitizeHost).
const maxNameLen = 50 + 4*253

// fitsRecord reports whether a delivery of size bytes to dirs can be one
// journal record: the counts and lengths fit its 16-bit fields and the
// whole fits wal.MaxPayload. One that does not (thousands of recipients)
// takes the SyncFileSystem path instead of failing.
func fitsRecord(dirs []Dir, size int) bool {
	if len(dirs) > math.MaxUint16 {
		return false
	}
	n := 1 + 2 + maxBootLen + 2 + maxNameLen + 2 + size
	for _, d := range dirs {
		if len(d.Path) > math.MaxUint16 {
			return false
		}
		n += 2 + len(d.Path)
	}
	return n <= wal.MaxPayload
}

func encodeDeliver(b []byte, boot, name string, dirs []Dir, data []byte) []byte {
	b = append(b, recDeliver)
	b = appendString(b, boot)
	return appendDelivery(b, name, dirs, data)
}

// appendDelivery is the part of a delivery record after the boot id: all
// of a recLegacy record but its kind.
func appendDelivery(b []byte, name string, dirs []Dir, data []byte) []byte {
	b = appendString(b, name)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(dirs)))
	for _, d := range dirs {
		b = appendString(b, d.Path)
	}
	return append(b, data...)
}

func encodeCancel(b []byte, seq uint64) []byte {
	b = append(b, recCancel)
	return binary.LittleEndian.AppendUint64(b, seq)
}

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// record is a decoded journal record.
type record struct {
	kind   byte
	boot   string // "" in a recLegacy record
	name   string
	dirs   []string
	data   []byte
	cancel uint64
}

var errBadRecord = errors.New("maildir: damaged journal record")

// decodeRecord parses a journal record. The payload passed the log's CRC,
// so damage here means a bug or a foreign file, reported as an error.
func decodeRecord(p []byte) (record, error) {
	if len(p) == 0 {
		return record{}, errBadRecord
	}
	r := record{kind: p[0]}
	p = p[1:]
	switch r.kind {
	case recCancel:
		if len(p) != 8 {
			return record{}, errBadRecord
		}
		r.cancel = binary.LittleEndian.Uint64(p)
		return r, nil
	case recDeliver, recLegacy:
		var ok bool
		if r.kind == recDeliver {
			if r.boot, p, ok = readString(p); !ok || len(r.boot) > maxBootLen {
				return record{}, errBadRecord
			}
		}
		if r.name, p, ok = readString(p); !ok || !validName(r.name) {
			return record{}, errBadRecord
		}
		if len(p) < 2 {
			return record{}, errBadRecord
		}
		n := int(binary.LittleEndian.Uint16(p))
		p = p[2:]
		if n == 0 {
			return record{}, errBadRecord
		}
		for range n {
			var dir string
			if dir, p, ok = readString(p); !ok || dir == "" {
				return record{}, errBadRecord
			}
			r.dirs = append(r.dirs, dir)
		}
		r.data = p
		return r, nil
	}
	return record{}, errBadRecord
}

func readString(p []byte) (string, []byte, bool) {
	if len(p) < 2 {
		return "", nil, false
	}
	n := int(binary.LittleEndian.Uint16(p))
	if len(p) < 2+n {
		return "", nil, false
	}
	return string(p[2 : 2+n]), p[2+n:], true
}

// validName accepts a Maildir file name we could have made: no path
// separators, no ":" (the info separator), not a dot name.
func validName(s string) bool {
	if s == "" || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '/' || s[i] == ':' || s[i] == 0 {
			return false
		}
	}
	return true
}
