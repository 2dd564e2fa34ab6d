package maildir

// recover.go: replaying the journal after a crash (Recover), and the
// restorer that brings message files back. The record format and the
// boot-id rule are in journal.go.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"smtpkit/internal/vfs"
	"smtpkit/internal/wal"
)

// RecoverStats says what Recover did.
type RecoverStats struct {
	Records   int // delivery records replayed
	Written   int // message files written because a crash had lost them
	Repaired  int // message files rewritten because a crash had damaged them
	Present   int // message files found intact
	Cancelled int // records skipped because their delivery had failed
	Deleted   int // message files missing after a process crash: removed on purpose, not written again
	// Unplaced lists the Maildirs a record names that are no longer
	// usable (not a directory, no permission): their messages are kept in
	// the journal's unplaced/ directory for an operator, and the replay
	// goes on with the other Maildirs.
	Unplaced []Unplaced
}

// Empty reports whether the replay found nothing to do.
func (st RecoverStats) Empty() bool {
	return st.Records == 0 && st.Written == 0 && st.Repaired == 0 && st.Present == 0 &&
		st.Cancelled == 0 && st.Deleted == 0 && len(st.Unplaced) == 0
}

// Unplaced is one message Recover could not put back into its Maildir.
type Unplaced struct {
	Maildir string // the Maildir the record names
	Saved   string // where the message is kept instead
	Err     error  // why the Maildir could not take it
}

// Recover replays the deliveries an earlier run left in log: every message
// file a record names is made present and intact in new/ (or kept where
// a mail client moved it in cur/) — except, when the record was written
// on the running boot, a file missing from both (see the top of this
// file) — then the file systems are flushed and the log's old segments
// dropped. Replaying twice changes nothing. Call it before SetJournal and
// before accepting mail; it works on n's file system and compares the
// records' boot id with n's.
func Recover(log *wal.Log, n *Writer) (RecoverStats, error) {
	var st RecoverStats
	var recs []record
	cancelled := map[uint64]bool{}
	seqs := []uint64{}
	err := log.Replay(func(seq uint64, p []byte) error {
		r, err := decodeRecord(p)
		if err != nil {
			return fmt.Errorf("%w (record %d in %s)", err, seq, log.Dir())
		}
		if r.kind == recCancel {
			cancelled[r.cancel] = true
			return nil
		}
		r.data = append([]byte(nil), r.data...) // the payload buffer is reused
		recs = append(recs, r)
		seqs = append(seqs, seq)
		return nil
	})
	if err != nil {
		return st, err
	}
	j := &journal{n: n, devs: map[string]string{}}
	rs := restorer{fsys: n.fsys, cur: map[string]map[string]string{}, st: &st, perFile: n.mode == SyncFile}
	for i, r := range recs {
		if cancelled[seqs[i]] {
			st.Cancelled++
			continue
		}
		st.Records++
		// Only a process crash on this boot: the page cache kept what the
		// process wrote.
		sameBoot := r.boot != "" && r.boot == n.boot
		for _, dir := range r.dirs {
			if err := rs.restore(dir, r.name, r.data, sameBoot); err != nil {
				if !unusableMaildir(err) {
					return st, err
				}
				// One broken Maildir must not keep the server from
				// starting, nor may its message be dropped.
				saved, serr := saveUnplaced(n.fsys, log.Dir(), r.name, r.data)
				if serr != nil {
					return st, fmt.Errorf("%w (and keeping its message: %v)", err, serr)
				}
				st.Unplaced = append(st.Unplaced, Unplaced{Maildir: dir, Saved: saved, Err: err})
				continue
			}
			if err := j.touch(filepath.Join(dir, "new")); err != nil && !errors.Is(err, os.ErrNotExist) {
				return st, fmt.Errorf("maildir: %w", err)
			}
		}
	}
	if err := log.Checkpoint(j.flush); err != nil {
		return st, err
	}
	return st, nil
}

// unusableMaildir reports whether err says a Maildir itself is broken
// (something in its path is not a directory, or it may not be written),
// rather than the file system failing.
func unusableMaildir(err error) bool {
	for _, e := range []error{syscall.ENOTDIR, syscall.EISDIR, syscall.EACCES, syscall.EPERM, syscall.ELOOP, syscall.ENAMETOOLONG} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// saveUnplaced keeps a message a replay could not put into its Maildir:
// durably, as unplaced/<name> in the journal directory jdir, once however
// many Maildirs refused it.
func saveUnplaced(fsys vfs.FS, jdir, name string, data []byte) (string, error) {
	dir := filepath.Join(jdir, "unplaced")
	path := filepath.Join(dir, name)
	if got, err := fsys.ReadFile(path); err == nil && bytes.Equal(got, data) {
		return path, nil
	}
	if err := fsys.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := fsys.SyncDir(jdir); err != nil {
		return "", err
	}
	return path, vfs.Write(fsys, path, data, 0o600)
}

// restorer brings back the message files of replayed records.
type restorer struct {
	fsys vfs.FS
	cur  map[string]map[string]string // Maildir → base name → file in cur/
	st   *RecoverStats
	// perFile: the Writer runs in per-file mode, where the checkpoint's
	// syncfs may be no barrier (FUSE, network file systems: the mode
	// serve falls back to there), so every file a record names is made
	// durable with fsyncs of its own before the record is dropped.
	perFile bool
}

// restore makes the message name in Maildir dir hold data: intact where it
// is, rewritten where a crash damaged it, written into new/ where it is
// missing — unless sameBoot says the crash was the process's alone, when
// a missing file was deleted by the user and stays deleted.
func (rs *restorer) restore(dir, name string, data []byte, sameBoot bool) error {
	target := filepath.Join(dir, "new", name)
	if _, err := rs.fsys.Lstat(target); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("maildir: %w", err)
		}
		target = ""
		if moved := rs.curFile(dir, name); moved != "" {
			target = filepath.Join(dir, "cur", moved)
		}
	}
	if target == "" && sameBoot {
		rs.st.Deleted++
		return nil
	}
	if _, err := create(rs.fsys, dir); err != nil { // an accepted message is never dropped
		return err
	}
	if target == "" {
		rs.st.Written++
		target = filepath.Join(dir, "new", name)
		if err := rs.writeFile(dir, name, target, data); err != nil {
			return err
		}
		return rs.durable(target)
	}
	if same, err := rs.sameContent(target, data); err != nil {
		return err
	} else if same {
		rs.st.Present++
		return rs.durable(target)
	}
	rs.st.Repaired++
	if err := rs.writeFile(dir, name, target, data); err != nil {
		return err
	}
	return rs.durable(target)
}

// durable makes the file at path and its name durable on their own, in
// per-file mode; otherwise Recover's checkpoint flush does.
func (rs *restorer) durable(path string) error {
	if !rs.perFile {
		return nil
	}
	f, err := rs.fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = rs.fsys.SyncDir(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	return nil
}

// curFile finds the file in dir/cur/ whose base name (before ":") is name,
// listing each cur/ once.
func (rs *restorer) curFile(dir, name string) string {
	m, ok := rs.cur[dir]
	if !ok {
		m = map[string]string{}
		entries, _ := rs.fsys.ReadDir(filepath.Join(dir, "cur"))
		for _, e := range entries {
			base := e.Name()
			for i := 0; i < len(base); i++ {
				if base[i] == ':' {
					base = base[:i]
					break
				}
			}
			m[base] = e.Name()
		}
		rs.cur[dir] = m
	}
	return m[name]
}

func (rs *restorer) sameContent(path string, data []byte) (bool, error) {
	got, err := rs.fsys.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("maildir: %w", err)
	}
	return bytes.Equal(got, data), nil
}

// writeFile writes data under dir/tmp and renames it to dst. It is not
// flushed here: Recover's checkpoint flushes the file system before the
// record is dropped (or, in per-file mode, durable does), and a crash
// before that replays again. (Not
// vfs.Write: that puts its temporary file beside dst, in new/ or cur/
// where mail readers look, and fsyncs each file.)
func (rs *restorer) writeFile(dir, name, dst string, data []byte) error {
	tmp := filepath.Join(dir, "tmp", name+".recover")
	f, err := rs.fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = rs.fsys.Rename(tmp, dst)
	}
	if err != nil {
		rs.fsys.Remove(tmp)
		return fmt.Errorf("maildir: %w", err)
	}
	return nil
}
