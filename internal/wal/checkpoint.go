package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Pending reports whether the log holds records a checkpoint would drop.
func (l *Log) Pending() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.old) > 0 || (l.cur != nil && l.cur.size > 0)
}

// Checkpoint drops every segment whose records are all applied: it closes
// the current segment to appends (when it holds any record; its
// appenders still sync it), waits until every record in the closed
// segments is Done — so every Append into them has returned, and their
// records are durable — calls flush, which must make the applications
// durable (a syncfs of the file systems they were applied to), and then
// retires those segments (see retire). Checkpoints are not run
// concurrently with each other.
func (l *Log) Checkpoint(flush func() error) error {
	l.mu.Lock()
	if l.cur.size > 0 && !l.closed {
		if err := l.rotate(); err != nil {
			l.mu.Unlock()
			return err
		}
	}
	segs := l.old
	for _, s := range segs {
		for s.pending > 0 {
			l.cond.Wait()
		}
	}
	l.mu.Unlock()
	if len(segs) == 0 {
		return nil
	}
	if err := flush(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// Oldest first, each retirement durable before the next: after a
	// crash the segments left are always the newest ones. A record in an
	// older segment may be undone by one in a newer segment (maildir's
	// cancel of a failed delivery), so a replay must never see the older
	// without the newer — with the renames left to the kernel, a power
	// loss may keep any subset of them (the fan-out power-loss test saw a
	// cancelled delivery come back that way, as a duplicate).
	for i, s := range segs {
		if err := l.retire(s); err != nil {
			l.old = l.old[i:]
			return err
		}
		if err := l.fs.SyncDir(l.dir); err != nil {
			l.old = l.old[i+1:]
			return fmt.Errorf("wal: %w", err)
		}
	}
	l.old = l.old[len(segs):]
	return nil
}

// retire takes a segment whose records are applied and flushed out of the
// log: it becomes a spare, or is removed when there are enough. Called
// with mu held.
func (l *Log) retire(s *segment) error {
	if s.f != nil {
		// No appender is left (pending is 0), so none is syncing it.
		s.f.Close()
		s.f = nil
	}
	if len(l.spares) < maxSpares {
		l.spareN++
		// The name holds a bound on every sequence number the file has
		// ever held, so that Open can keep new numbers above them.
		spare := filepath.Join(l.dir, fmt.Sprintf("spare-%016x-%d", l.nextSeq, l.spareN))
		if err := l.fs.Rename(s.path, spare); err == nil {
			l.spares = append(l.spares, spare)
			return nil
		}
	}
	if err := l.fs.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("wal: %w", err)
	}
	return nil
}
