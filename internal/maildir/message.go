package maildir

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"smtpkit/internal/vfs"
)

// bufSize is the write buffer of a Message: the message streams to disk in
// chunks of this size and is never held in memory as a whole. A message that
// fits is what the journal takes (see Writer.SetJournal).
const bufSize = 64 << 10

// maxNameTries bounds the retries after a file name collision.
const maxNameTries = 100

// Message is one message written once into a tmp/ directory and committed
// into the new/ directory of one or more Maildirs. Write, Commit and Abort
// must not be called concurrently on the same Message.
type Message struct {
	writer  *Writer
	tmpDir  string // the tmp/ directory the file was made in
	tmpPath string // "" for an anonymous O_TMPFILE file
	f       vfs.File
	buf     *[]byte // pooled write buffer (cap bufSize); nil once finished
	spilled bool    // part of the message already went to f
	size    int64
	done    bool // committed or aborted: the tmp file is gone
}

// NewMessage starts a delivery in tmp.Path/tmp. Where the kernel and file
// system support it the file is anonymous (O_TMPFILE, Linux 3.11+): it has
// no name until Commit links it into new/, so a crash or an abort leaves
// nothing behind and no tmp name is created or removed per message.
// Otherwise it is a new, uniquely named file (created exclusively, mode
// 0600), the classic qmail way.
func (n *Writer) NewMessage(tmp Dir) (*Message, error) {
	dir := filepath.Join(tmp.Path, "tmp")
	if !n.namedTmp {
		// Any failure (vfs.ErrUnsupported, an old kernel) falls back to a
		// named file, which reports a real problem with tmp/ itself.
		if f, err := n.fsys.OpenAnonymous(dir, 0o600); err == nil {
			return &Message{writer: n, tmpDir: dir, f: f, buf: n.getBuf()}, nil
		}
	}
	for range maxNameTries {
		p := filepath.Join(tmp.Path, "tmp", n.next())
		f, err := n.fsys.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("maildir: %w", err)
		}
		return &Message{writer: n, tmpDir: dir, tmpPath: p, f: f, buf: n.getBuf()}, nil
	}
	return nil, errors.New("maildir: could not find a unique tmp file name")
}

// Write appends p to the message.
func (d *Message) Write(p []byte) (int, error) {
	if d.done {
		return 0, errors.New("maildir: write after commit or abort")
	}
	b := *d.buf
	if len(b)+len(p) > cap(b) {
		if err := d.spill(); err != nil {
			return 0, err
		}
		if len(p) >= cap(b) { // large writes pass straight through
			d.spilled = true
			n, err := d.f.Write(p)
			d.size += int64(n)
			return n, err
		}
		b = (*d.buf)[:0]
	}
	*d.buf = append(b, p...)
	d.size += int64(len(p))
	return len(p), nil
}

// spill writes the buffered bytes to the tmp file.
func (d *Message) spill() error {
	b := *d.buf
	if len(b) == 0 {
		return nil
	}
	d.spilled = true
	_, err := d.f.Write(b)
	*d.buf = b[:0]
	return err
}

// Size is the number of bytes written so far.
func (d *Message) Size() int64 { return d.size }

// Commit makes the message durable and visible in new/ of every dir:
// it makes the tmp file durable, hard-links it into each new/ under a
// unique name "<sec>.M<usec>P<pid>Q<n>.<host>,S=<size>" (copying into that
// Maildir's tmp/ with fsync and then linking when the link crosses file
// systems), makes the new/ entries durable and removes the tmp file. It
// returns the final paths, one per dir, in order.
//
// The flushes are shared with the other deliveries in flight (group
// commit). With SyncFileSystem one syncfs of the file system covers the
// data of every message waiting for it, and the next one their links; with
// SyncFile the file gets its own fsync and each new/ directory one fsync
// shared by the deliveries to it. Either way the data is durable before
// any new/ names it, and the names are durable before Commit returns.
//
// On any error Commit removes every file it created, so no new/ holds a
// partial result, removes the tmp file, and returns the error. Either way the
// Message is finished afterwards.
func (d *Message) Commit(dirs []Dir) ([]string, error) {
	if d.done {
		return nil, errors.New("maildir: commit after commit or abort")
	}
	defer d.Abort()
	if len(dirs) == 0 {
		return nil, errors.New("maildir: commit with no destination")
	}
	if d.writer.journal != nil && !d.spilled && fitsRecord(dirs, len(*d.buf)) {
		return d.commitJournaled(dirs)
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	paths := make([]string, 0, len(dirs))
	for _, dir := range dirs {
		p, err := d.place(dir)
		if err != nil {
			removeAll(d.writer.fsys, paths)
			return nil, err
		}
		paths = append(paths, p)
	}
	// Drop the tmp name before the directory flush, so that a crash during
	// the flush rarely leaves a second link behind in tmp/ (CleanTmp
	// removes any that remain).
	d.Abort()
	if err := d.syncLinks(paths); err != nil {
		removeAll(d.writer.fsys, paths)
		return nil, err
	}
	return paths, nil
}

// syncLinks makes the new/ entries durable together with those of the
// other deliveries in flight (group commit): one flush per new/ directory
// (SyncFile) or per file system (SyncFileSystem, where flushes of the same
// file system are shared whatever the directory).
func (d *Message) syncLinks(paths []string) error {
	var flushed [4]string // distinct directories, in order; few recipients is the rule
	seen := flushed[:0]
next:
	for _, p := range paths {
		dir := filepath.Dir(p)
		for _, s := range seen {
			if s == dir {
				continue next
			}
		}
		seen = append(seen, dir)
		var err error
		if d.writer.mode != SyncFile {
			if err = d.writer.fs.Flush(dir); err != nil {
				err = fmt.Errorf("maildir: %w", err)
			}
		} else {
			err = d.writer.syncs.Flush(dir)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// finish writes out and flushes the tmp file (its own fsync, or a syncfs
// shared with the deliveries in flight): it is durable before anything
// links to it, so new/ never names a file whose data could be lost. A named
// tmp file is closed here; an anonymous one stays open for linking.
func (d *Message) finish() error {
	err := d.spill()
	d.writer.putBuf(d.buf)
	d.buf = nil
	if err == nil {
		if d.writer.mode != SyncFile {
			err = d.writer.fs.Flush(d.tmpDir)
		} else {
			err = d.f.Sync()
		}
	}
	if d.tmpPath != "" {
		if cerr := d.f.Close(); err == nil {
			err = cerr
		}
		d.f = nil
	}
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	return nil
}

// link gives the message the name dst: a hard link of the named tmp
// file, or linkat(2) of the anonymous one's descriptor (vfs.File.LinkTo).
func (d *Message) link(dst string) error {
	if d.tmpPath != "" {
		return d.writer.fsys.Link(d.tmpPath, dst)
	}
	return d.f.LinkTo(dst)
}

// place links (or copies) the tmp file into dir/new under a fresh unique
// name and returns that name.
func (d *Message) place(dir Dir) (string, error) {
	for range maxNameTries {
		name := fmt.Sprintf("%s,S=%d", d.writer.next(), d.size)
		dst := filepath.Join(dir.Path, "new", name)
		err := d.link(dst)
		if errors.Is(err, syscall.EXDEV) {
			err = d.copyInto(dir, name, dst)
		}
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("maildir: deliver into %s: %w", dir.Path, err)
		}
		return dst, nil
	}
	return "", fmt.Errorf("maildir: no unique name in %s", dir.Path)
}

// copyInto is the cross-file-system fallback: copy the message into
// dir/tmp/name, fsync it, link it into dst and remove the copy's tmp name.
func (d *Message) copyInto(dir Dir, name, dst string) error {
	fsys := d.writer.fsys
	tmp := filepath.Join(dir.Path, "tmp", name)
	if err := d.copyFile(tmp); err != nil {
		fsys.Remove(tmp)
		return err
	}
	err := fsys.Link(tmp, dst)
	fsys.Remove(tmp)
	return err
}

// copyFile copies the message into a new file dst (which must not exist)
// and fsyncs it.
func (d *Message) copyFile(dst string) error {
	fsys := d.writer.fsys
	var in io.Reader
	if d.tmpPath == "" {
		in = io.NewSectionReader(d.f, 0, d.size)
	} else {
		f, err := fsys.OpenFile(d.tmpPath, os.O_RDONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	out, err := fsys.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeAll removes committed files during a rollback and makes the
// removals durable (fsync of each new/ touched): a caller that delivers
// the message another way after the error — the inbound fan-out queues the
// local recipients then — must not find a rolled-back link back after a
// power loss, which would be a second copy.
func removeAll(fsys vfs.FS, paths []string) {
	var dirs []string
	for _, p := range paths {
		fsys.Remove(p)
		if d := filepath.Dir(p); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	for _, d := range dirs {
		fsys.SyncDir(d)
	}
}

// Abort discards the message: it closes and removes the tmp file. It is safe
// to call after Commit and more than once.
func (d *Message) Abort() {
	if d.done {
		return
	}
	d.done = true
	if d.buf != nil {
		d.writer.putBuf(d.buf)
		d.buf = nil
	}
	if d.f != nil {
		d.f.Close() // an anonymous file disappears here
		d.f = nil
	}
	if d.tmpPath != "" {
		d.writer.fsys.Remove(d.tmpPath)
	}
}

// getBuf takes a write buffer from the Writer's pool: a delivering server
// would otherwise allocate bufSize per message.
func (n *Writer) getBuf() *[]byte {
	if b, _ := n.bufs.Get().(*[]byte); b != nil {
		return b
	}
	b := make([]byte, 0, bufSize)
	return &b
}

func (n *Writer) putBuf(b *[]byte) {
	*b = (*b)[:0]
	n.bufs.Put(b)
}
