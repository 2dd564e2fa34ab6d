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
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"smtpkit/internal/vfs"
)

// Dir is one Maildir: a directory holding tmp/, new/ and cur/.
type Dir struct{ Path string }

// dirMode is the mode of every directory Create makes: mail is private.
const dirMode = 0o700

// Create makes path and its tmp, new and cur subdirectories (mode 0700) on
// the Writer's file system (see SetFS) if they do not exist yet, and returns
// the Dir. Existing directories are left as they are. The new entries are
// fsynced into their parents so a Maildir that has received mail survives a
// crash.
func (n *Writer) Create(path string) (Dir, error) { return create(n.fsys, path) }

func create(fsys vfs.FS, path string) (Dir, error) {
	if path == "" {
		return Dir{}, errors.New("maildir: empty path")
	}
	if err := fsys.MkdirAll(path, dirMode); err != nil {
		return Dir{}, fmt.Errorf("maildir: %w", err)
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		err := fsys.Mkdir(filepath.Join(path, sub), dirMode)
		if err != nil && !errors.Is(err, os.ErrExist) {
			return Dir{}, fmt.Errorf("maildir: %w", err)
		}
	}
	// Persist the directory entries every time, also when the Maildir was
	// there already: it may be a concurrent Create's, whose syncs have not
	// run yet, and a delivery into it must not be acknowledged before they
	// did (the fan-out power-loss test lost a message that way). Callers
	// remember created Maildirs (inbound does), so this runs once per
	// mailbox, not per message.
	if err := syncDirs(fsys, path); err != nil {
		return Dir{}, fmt.Errorf("maildir: %w", err)
	}
	return Dir{Path: path}, nil
}

// syncDirs makes a freshly made Maildir's entries durable: its tmp, new
// and cur in path, and path in its parent. MkdirAll may have made more
// ancestors than the parent; their entries are flushed by the first
// delivery's syncfs or, with SyncFile, are the operator's (a data
// directory made at start).
func syncDirs(fsys vfs.FS, path string) error {
	if err := fsys.SyncDir(path); err != nil {
		return err
	}
	return fsys.SyncDir(filepath.Dir(filepath.Clean(path)))
}

// Writer writes messages into Maildirs for one delivering process (see
// Message): it makes their unique file names,
// "<sec>.M<usec>P<pid>Q<n>.<host>" (qmail's modern convention, as Dovecot
// writes it). The counter n is the Writer's own, so a long-lived server should
// create one Writer at start-up and share it between all deliveries; it is
// safe for concurrent use. A name collision (two Writers in the same process
// and microsecond) is still detected: creating and linking use exclusive
// operations and retry with the next counter value.
//
// The Writer also batches the disk flushes of concurrent deliveries (group
// commit, see Sync), so sharing one matters for speed as well.
type Writer struct {
	host  string
	pid   int
	now   func() time.Time
	seq   atomic.Uint64
	mode  Sync
	fsys  vfs.FS     // every file operation goes here (SetFS)
	boot  string     // this boot's id, recorded in journal records (SetBootID)
	syncs *groupSync // SyncFile: new/ directory fsyncs
	fs    *fsSyncer  // SyncFileSystem: syncfs per file system
	// bufs pools the Messages' write buffers.
	bufs sync.Pool
	// journal, when set, takes deliveries that fit in the write buffer
	// (see SetJournal).
	journal *journal
	// namedTmp turns O_TMPFILE off, so tests cover the named-file path.
	namedTmp bool
}

// NewWriter returns a Writer for this process and host. now may be nil for
// time.Now.
func NewWriter(now func() time.Time) *Writer {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	if now == nil {
		now = time.Now
	}
	n := &Writer{host: sanitizeHost(host), pid: os.Getpid(), now: now, boot: readBootID()}
	n.SetFS(vfs.OS{})
	return n
}

// SetSync chooses how deliveries are made durable (SyncFileSystem unless
// set). Call it before the first delivery.
func (n *Writer) SetSync(mode Sync) { n.mode = mode }

// SetFS makes the Writer do all its file operations — deliveries, Create,
// CleanTmp, Recover and the journal's checkpoints — on fsys instead of the
// host's file system (vfs.OS): tests put a power-loss simulation there.
// Call it before the first delivery.
func (n *Writer) SetFS(fsys vfs.FS) {
	n.fsys = fsys
	n.syncs = newGroupSync(fsys.SyncDir)
	n.fs = newFSSyncer(fsys)
}

// next returns a fresh base name (without the ",S=" size suffix).
func (n *Writer) next() string {
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
// many it removed. It works on the host's file system; Writer.CleanTmp on
// the Writer's.
func CleanTmp(root string, maxAge time.Duration, now time.Time) (int, error) {
	return cleanTmp(vfs.OS{}, root, maxAge, now)
}

// CleanTmp is the package's CleanTmp on the Writer's file system.
func (n *Writer) CleanTmp(root string, maxAge time.Duration, now time.Time) (int, error) {
	return cleanTmp(n.fsys, root, maxAge, now)
}

func cleanTmp(fsys vfs.FS, root string, maxAge time.Duration, now time.Time) (int, error) {
	removed := 0
	for _, dir := range tmpDirs(fsys, root) {
		entries, err := fsys.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			info, err := e.Info()
			if err != nil || !info.Mode().IsRegular() || now.Sub(info.ModTime()) < maxAge {
				continue
			}
			if fsys.Remove(filepath.Join(dir, e.Name())) == nil {
				removed++
			}
		}
	}
	return removed, nil
}

// tmpDirs lists root/*/*/tmp, the tmp/ directories of the
// <domain>/<user> layout (as filepath.Glob would, symbolic links
// followed), and root/*/*/.*/tmp, those of their Maildir++ folders
// (CreateFolder).
func tmpDirs(fsys vfs.FS, root string) []string {
	var dirs []string
	add := func(maildir string) {
		tmp := filepath.Join(maildir, "tmp")
		if fi, err := fsys.Stat(tmp); err == nil && fi.IsDir() {
			dirs = append(dirs, tmp)
		}
	}
	domains, _ := fsys.ReadDir(root)
	for _, d := range domains {
		users, _ := fsys.ReadDir(filepath.Join(root, d.Name())) // fails on a non-directory
		for _, u := range users {
			box := filepath.Join(root, d.Name(), u.Name())
			add(box)
			entries, _ := fsys.ReadDir(box)
			for _, e := range entries {
				if name := e.Name(); len(name) > 1 && name[0] == '.' && name != ".." {
					add(filepath.Join(box, name))
				}
			}
		}
	}
	return dirs
}
