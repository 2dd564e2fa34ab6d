package queue

// spool.go: the files. Layout under Options.Dir:
//
//	msg/<id>       the message bytes, written once
//	env/<id>.json  envelope and per-recipient state; its presence commits the message
//	tmp/           files being written; anything here at startup is garbage
//	corrupt/       env files that could not be read, with their msg, set aside for a human

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// create makes the spool directories (mode 0700: mail is private) and
// makes their entries durable: each new directory's in its parent, and
// msg/, env/ and tmp/ in the root. Without that a power loss after the
// first Commit could take the whole directory, with the messages in it,
// away.
func (d spoolDir) create() error {
	var missing []string // outermost last
	for p := d.root; ; p = filepath.Dir(p) {
		if _, err := d.fs.Stat(p); err == nil {
			break
		}
		missing = append(missing, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	for _, p := range []string{d.root, d.msgDir(), d.envDir(), d.tmpDir()} {
		if err := d.fs.MkdirAll(p, 0o700); err != nil {
			return err
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := d.fs.SyncDir(filepath.Dir(missing[i])); err != nil {
			return err
		}
	}
	return d.fs.SyncDir(d.root)
}

// syncDirs fsyncs msg/ and env/, making the renames into them durable.
func (d spoolDir) syncDirs() error {
	if err := d.fs.SyncDir(d.msgDir()); err != nil {
		return err
	}
	return d.fs.SyncDir(d.envDir())
}

// writeFileAtomic replaces dst with data: write tmp/<name>, fsync, rename.
// A reader (or a crash) sees the old or the new content, never a mix. The
// directory is not synced: callers that must make the rename durable
// before going on sync it themselves.
func (d spoolDir) writeFileAtomic(dst, name string, data []byte) error {
	tmp := d.tmp(name)
	f, err := d.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = d.fs.Rename(tmp, dst)
	}
	if err != nil {
		d.fs.Remove(tmp)
	}
	return err
}

// saveEnv rewrites m's env file from m.env. The caller holds m.mu, which
// also makes the tmp name (derived from the id) unique.
//
// The env directory is not fsynced here: persist and AddLocal sync it
// after (group commit). Until then a crash that loses this rename brings
// the previous state back, which at worst repeats a delivery or a bounce
// (the queue may duplicate, never skip).
func (q *Queue) saveEnv(m *message) error {
	// A journaled message still in memory gets its msg/ file now: the env
	// file is about to exist, and what reads one expects both.
	if err := q.journal.writeOut(m.env.ID, false); err != nil {
		return err
	}
	data, err := m.env.marshal()
	if err != nil {
		return err
	}
	return q.dir.writeFileAtomic(q.dir.env(m.env.ID), m.env.ID+".env", data)
}

// recover brings the spool to a consistent state after a crash and fills
// the index (index.go) with every message, due when its prefix says:
//   - tmp/ holds only unacknowledged work: everything in it is removed;
//   - an env without its msg cannot be delivered (the msg rename precedes
//     the env rename, so this only happens through outside damage or a lost
//     directory entry): logged and removed;
//   - a msg without an env was never acknowledged: removed;
//   - an env that cannot be parsed is moved with its msg to corrupt/ and
//     logged, for a human to look at; it is never silently deleted;
//   - a message whose recipients are all final lost its removal: removed.
//
// An env file with a prefix (index.go) is not decoded here: its envelope is
// read when it becomes due, and the last three rules apply then (loadEnv).
// One without (older, or damaged at its start) is decoded now. After a
// clean Close, the messages the index snapshot lists are not even opened
// (snapshot.go).
func (q *Queue) recover() error {
	if err := q.clearTmp(); err != nil {
		return err
	}
	msgs, err := q.dir.fs.ReadDir(q.dir.msgDir())
	if err != nil {
		return err
	}
	data := make(map[string]bool, len(msgs))
	for _, de := range msgs {
		data[de.Name()] = true
	}
	envs, err := q.dir.fs.ReadDir(q.dir.envDir())
	if err != nil {
		return err
	}
	snap, err := q.takeSnapshot()
	if err != nil {
		return err
	}
	known := make(map[string]bool, len(envs))
	var ids []string
	var snapKeys []msgKey
	var snapVals []parked
	for _, de := range envs {
		id, ok := strings.CutSuffix(de.Name(), ".json")
		if !ok || !ValidID(id) {
			q.log.Warn("queue: ignoring unexpected file", "file", filepath.Join(q.dir.envDir(), de.Name()))
			continue
		}
		known[id] = true
		if !data[id] {
			q.log.Error("queue: envelope without message data, removing it", "msgid", id)
			if err := q.dir.fs.Remove(q.dir.env(id)); err != nil {
				return err
			}
			continue
		}
		if k, _ := keyOf(id); snap != nil {
			if p, ok := snap[k]; ok {
				snapKeys, snapVals = append(snapKeys, k), append(snapVals, p)
				continue
			}
		}
		ids = append(ids, id)
	}
	q.idx.putAll(snapKeys, snapVals)
	for _, id := range q.indexPrefixes(ids) {
		if err := q.recoverOne(id); err != nil {
			return err
		}
	}
	for _, de := range msgs {
		id := de.Name()
		if !ValidID(id) {
			q.log.Warn("queue: ignoring unexpected file", "file", q.dir.msg(id))
			continue
		}
		if known[id] {
			continue // indexed, set aside or removed above
		}
		q.log.Info("queue: removing unacknowledged message", "msgid", id)
		if err := q.dir.fs.Remove(q.dir.msg(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	q.log.Info("queue: opened", "dir", q.dir.root, "messages", q.idx.len()+len(q.msgs))
	return q.dir.syncDirs()
}

// clearTmp removes everything in tmp/.
func (q *Queue) clearTmp() error {
	tmps, err := q.dir.fs.ReadDir(q.dir.tmpDir())
	if err != nil {
		return err
	}
	for _, de := range tmps {
		if err := q.dir.fs.RemoveAll(q.dir.tmp(de.Name())); err != nil {
			return err
		}
	}
	return nil
}

// prefixReaders is how many env files Open reads at once: the reads are
// system calls on cached pages, which run in parallel.
const prefixReaders = 8

// indexPrefixes puts every message of ids whose env file has a prefix into
// the index, reading the files in parallel, and returns the others.
func (q *Queue) indexPrefixes(ids []string) (rest []string) {
	type found struct {
		keys []msgKey
		vals []parked
		rest []string
	}
	out := make([]found, prefixReaders)
	var wg sync.WaitGroup
	for w := range prefixReaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := &out[w]
			for i := w; i < len(ids); i += prefixReaders {
				id := ids[i]
				p, err := q.readPrefix(id)
				if err != nil || p.id != id || p.due.IsZero() || !p.hasCounts {
					f.rest = append(f.rest, id)
					continue
				}
				k, _ := keyOf(id)
				f.keys = append(f.keys, k)
				f.vals = append(f.vals, parkedOf(q.indexDue(p), p.size, p.counts))
			}
		}()
	}
	wg.Wait()
	var keys []msgKey
	var vals []parked
	for _, f := range out {
		keys, vals = append(keys, f.keys...), append(vals, f.vals...)
		rest = append(rest, f.rest...)
	}
	q.idx.putAll(keys, vals)
	slices.Sort(rest)
	return rest
}

// recoverOne decodes env/<id>.json whole (it has no prefix), applying the
// rules of recover.
func (q *Queue) recoverOne(id string) error {
	e, err := q.loadEnv(id)
	if e == nil || err != nil {
		return err
	}
	m := newMessage(e)
	m.mu.Lock()
	q.msgs[id] = m
	q.rearm(m) // parks it unless something is due
	m.mu.Unlock()
	return nil
}

// setAside moves a message's files to corrupt/.
func (q *Queue) setAside(id string) error {
	if err := q.dir.fs.MkdirAll(q.dir.corruptDir(), 0o700); err != nil {
		return err
	}
	for src, name := range map[string]string{q.dir.env(id): id + ".json", q.dir.msg(id): id} {
		if err := q.dir.fs.Rename(src, filepath.Join(q.dir.corruptDir(), name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("setting aside %s: %w", id, err)
		}
	}
	return nil
}
