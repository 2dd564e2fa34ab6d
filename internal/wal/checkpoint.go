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
	// Oldest first, each retirement durable before the next: after a
	// crash the segments left are always the newest ones. A record in an
	// older segment may be undone by one in a newer segment (maildir's
	// cancel of a failed delivery), so a replay must never see the older
	// without the newer — with the renames left to the kernel, a power
	// loss may keep any subset of them (the fan-out power-loss test saw a
	// cancelled delivery come back that way, as a duplicate). The
	// directory fsync runs without the lock, so appends go on meanwhile;
	// a spare is offered for reuse only once its rename is durable.
	for _, s := range segs {
		l.mu.Lock()
		spare, err := l.retire(s)
		l.mu.Unlock()
		if err != nil {
			return err
		}
		if err := l.fs.SyncDir(l.dir); err != nil {
			return fmt.Errorf("wal: %w", err)
		}
		l.mu.Lock()
		if spare != "" {
			l.spares = append(l.spares, spare)
		}
		l.old = l.old[1:] // s: checkpoints do not overlap, rotate only appends
		l.mu.Unlock()
	}
	return nil
}

// retire takes a segment whose records are applied and flushed out of the
// log: it is renamed to a spare, whose name it returns for the caller to
// offer once the rename is durable, or removed when there are enough
// spares (""). Called with mu held.
func (l *Log) retire(s *segment) (string, error) {
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
			return spare, nil
		}
	}
	if err := l.fs.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("wal: %w", err)
	}
	return "", nil
}
