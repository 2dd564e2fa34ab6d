// Package maildir delivers messages into Maildir directories the qmail way:
// write the message once into tmp/, make it durable, hard-link it into new/
// of every recipient's Maildir, make the links durable, then drop the tmp
// file. Concurrent deliveries share their disk flushes (group commit, see
// Sync).
// A reader (an IMAP server, a mail client) only ever sees complete messages,
// because a file appears in new/ atomically and only after its bytes are on
// disk. See https://cr.yp.to/proto/maildir.html and Dovecot's maildir naming
// (https://doc.dovecot.org/admin_manual/mailbox_formats/maildir/).
package maildir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"smtpkit/internal/atomicfile"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Dir is one Maildir: a directory holding tmp/, new/ and cur/.
type Dir struct{ Path string }

// dirMode is the mode of every directory Create makes: mail is private.
const dirMode = 0o700

// Create makes path and its tmp, new and cur subdirectories (mode 0700) if
// they do not exist yet, and returns the Dir. Existing directories are left
// as they are. The new entries are fsynced into their parents so a Maildir
// that has received mail survives a crash.
func Create(path string) (Dir, error) {
	if path == "" {
		return Dir{}, errors.New("maildir: empty path")
	}
	_, statErr := os.Stat(filepath.Join(path, "cur"))
	if err := os.MkdirAll(path, dirMode); err != nil {
		return Dir{}, fmt.Errorf("maildir: %w", err)
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		err := os.Mkdir(filepath.Join(path, sub), dirMode)
		if err != nil && !errors.Is(err, os.ErrExist) {
			return Dir{}, fmt.Errorf("maildir: %w", err)
		}
	}
	if statErr != nil { // freshly made: persist the directory entries
		if err := atomicfile.SyncDir(path); err != nil {
			return Dir{}, err
		}
		if err := atomicfile.SyncDir(filepath.Dir(filepath.Clean(path))); err != nil {
			return Dir{}, err
		}
	}
	return Dir{Path: path}, nil
}

// Namer makes the unique file names of one delivering process:
// "<sec>.M<usec>P<pid>Q<n>.<host>" (qmail's modern convention, as Dovecot
// writes it). The counter n is the Namer's own, so a long-lived server should
// create one Namer at start-up and share it between all deliveries; it is
// safe for concurrent use. A name collision (two Namers in the same process
// and microsecond) is still detected: creating and linking use exclusive
// operations and retry with the next counter value.
//
// The Namer also batches the disk flushes of concurrent deliveries (group
// commit, see Sync), so sharing one matters for speed as well.
type Namer struct {
	host  string
	pid   int
	now   func() time.Time
	seq   atomic.Uint64
	mode  Sync
	syncs *groupSync // SyncFile: new/ directory fsyncs
	fs    *fsSyncer  // SyncFileSystem: syncfs per file system
	// bufs pools the Deliveries' write buffers.
	bufs sync.Pool
	// journal, when set, takes deliveries that fit in the write buffer
	// (see SetJournal).
	journal *journal
	// namedTmp turns O_TMPFILE off, so tests cover the named-file path.
	namedTmp bool
}

// NewNamer returns a Namer for this process and host. now may be nil for
// time.Now.
func NewNamer(now func() time.Time) *Namer {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	if now == nil {
		now = time.Now
	}
	return &Namer{host: sanitizeHost(host), pid: os.Getpid(), now: now, syncs: newGroupSync(), fs: newFSSyncer()}
}

// SetSync chooses how deliveries are made durable (SyncFileSystem unless
// set). Call it before the first delivery.
func (n *Namer) SetSync(mode Sync) { n.mode = mode }

// next returns a fresh base name (without the ",S=" size suffix).
func (n *Namer) next() string {
	t := n.now()
	q := n.seq.Add(1)
	return fmt.Sprintf("%d.M%dP%dQ%d.%s", t.Unix(), t.Nanosecond()/1000, n.pid, q, n.host)
}

// sanitizeHost replaces the characters a Maildir name reserves: "/" and ":"
// as the maildir specification says (\057, \072), and "," because Dovecot
// uses it to separate the ",S=" size field.
func sanitizeHost(h string) string {
	return strings.NewReplacer("/", `\057`, ":", `\072`, ",", `\054`).Replace(h)
}

// TmpMaxAge is how old a file in tmp/ must be before CleanTmp removes it:
// 36 hours, the qmail convention, so that a delivery in progress by any
// program is never touched.
const TmpMaxAge = 36 * time.Hour

// CleanTmp removes files older than maxAge from the tmp/ directories of
// every Maildir directly under root/*/* (the <data_dir>/mail/<domain>/<user>
// layout): leftovers of deliveries cut short by a crash. It returns how
// many it removed.
func CleanTmp(root string, maxAge time.Duration, now time.Time) (int, error) {
	dirs, err := filepath.Glob(filepath.Join(root, "*", "*", "tmp"))
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			info, err := e.Info()
			if err != nil || !info.Mode().IsRegular() || now.Sub(info.ModTime()) < maxAge {
				continue
			}
			if os.Remove(filepath.Join(dir, e.Name())) == nil {
				removed++
			}
		}
	}
	return removed, nil
}
