package queue

// replay.go: bringing back the files of journaled messages after a crash
// (the record format and the checkpoint rule are in journal.go). Open runs
// it before recover, and then a checkpoint, so that recover and the
// scheduler see every journaled message as files, as if it had taken the
// file path:
//   - a message with a remove record (delivered, withdrawn, deleted, or
//     its commit failed after the record) has its files deleted, wherever
//     its commit record is: a crash may have lost the unlinks;
//   - every other commit record's msg/<id> is made to hold the record's
//     bytes (written when missing, rewritten when a crash left it short
//     or damaged);
//   - its env/<id>.json is kept when it parses — it is the record's state
//     or a later one (saveEnv replaces it whole, fsynced) — and written
//     from the record when missing or damaged (the message then starts
//     over: a repeated attempt, never a lost one).
//
// Replaying twice changes nothing.

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// replayStats says what a replay did.
type replayStats struct {
	Records  int // commit records replayed
	Written  int // files written because a crash had lost them
	Repaired int // files rewritten because a crash had damaged them
	Present  int // messages found whole
	Removed  int // messages with a remove record
}

func (st replayStats) empty() bool { return st == replayStats{} }

// replay applies the records an earlier run left (see the top of this
// file).
func (j *journal) replay() (replayStats, error) {
	var st replayStats
	var commits []jrecord
	removed := map[string]bool{}
	err := j.log.Replay(func(seq uint64, p []byte) error {
		r, err := decodeRecord(p)
		if err != nil {
			return fmt.Errorf("%w (record %d in %s)", err, seq, j.log.Dir())
		}
		switch r.kind {
		case recRemove:
			removed[r.id] = true
		case recCommit:
			// The payload buffer is reused by the next record.
			r.env, r.body = bytes.Clone(r.env), bytes.Clone(r.body)
			commits = append(commits, r)
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	for _, r := range commits {
		if removed[r.id] {
			continue
		}
		st.Records++
		if err := j.restore(r, &st); err != nil {
			return st, err
		}
	}
	for id := range removed {
		st.Removed++
		if err := j.dir.removeFiles(id); err != nil {
			return st, err
		}
	}
	return st, nil
}

// restore makes the files of commit record r whole.
func (j *journal) restore(r jrecord, st *replayStats) error {
	whole := true
	got, err := j.dir.fs.ReadFile(j.dir.msg(r.id))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err != nil || !bytes.Equal(got, r.body) {
		whole = false
		if err := j.rewrite(j.dir.msg(r.id), r.body, err == nil, st); err != nil {
			return err
		}
	}
	data, err := j.dir.fs.ReadFile(j.dir.env(r.id))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err == nil {
		if _, perr := parseEnvelope(data, r.id); perr == nil {
			if whole {
				st.Present++
			}
			return nil
		}
	}
	return j.rewrite(j.dir.env(r.id), r.env, err == nil, st)
}

// rewrite writes data to path (unflushed: the checkpoint after the replay
// flushes it before the record is dropped) and counts it.
func (j *journal) rewrite(path string, data []byte, existed bool, st *replayStats) error {
	if existed {
		st.Repaired++
	} else {
		st.Written++
	}
	if err := writeNew(j.dir.fs, path, data, os.O_TRUNC); err != nil {
		return err
	}
	if !j.syncfs {
		j.dirty = append(j.dirty, path)
	}
	return nil
}
