package queue

// snapshot.go: the index across a clean restart. Close writes the index
// (id and due of every message only on disk) to <root>/index.snap; the
// next Open takes it — reads it, removes it durably before anything in the
// spool changes — and indexes the env files it lists without opening them,
// which is what start-up costs with a deep queue (docs/performance.md).
// Env files it does not list (the active set at Close, anything newer) are
// indexed from their prefixes as usual. A snapshot is a hint, never the
// truth: each message's env file is read when it becomes due, and a wrong
// due could only make it early (read, found not due, parked again) or
// late; so it is used only when it can be exact — written after the last
// journal checkpoint of a clean Close, checked whole (CRC-32), and ignored
// when the journal had anything to replay at Open.

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io/fs"
	"path/filepath"
)

const (
	snapName  = "index.snap"
	snapMagic = "smtpkit queue index 2\n"
	// key, due (int64), size (uint32), counts (4 × uint16), big-endian
	snapEntry = len(msgKey{}) + 8 + 4 + 2*numStates
)

func (d spoolDir) snapPath() string { return filepath.Join(d.root, snapName) }

// writeSnapshot writes the index to index.snap (atomically, durable). The
// caller has stopped Run and the journal.
func (q *Queue) writeSnapshot() error {
	q.mu.Lock()
	data := make([]byte, 0, len(snapMagic)+snapEntry*q.idx.len()+4)
	data = append(data, snapMagic...)
	for k, p := range q.idx.due {
		data = append(data, k[:]...)
		data = binary.BigEndian.AppendUint64(data, uint64(p.due))
		data = binary.BigEndian.AppendUint32(data, p.size)
		for _, n := range p.counts {
			data = binary.BigEndian.AppendUint16(data, n)
		}
	}
	q.mu.Unlock()
	data = binary.BigEndian.AppendUint32(data, crc32.ChecksumIEEE(data))
	if err := q.dir.writeFileAtomic(q.dir.snapPath(), snapName, data); err != nil {
		return err
	}
	return q.dir.fs.SyncDir(q.dir.root)
}

// takeSnapshot reads and removes index.snap; nil when there is none, it
// is damaged, or the journal replayed something (the files may have
// changed since). The removal is durable when it returns, so a snapshot
// never outlives the run that took it.
func (q *Queue) takeSnapshot() (map[msgKey]parked, error) {
	data, err := q.dir.fs.ReadFile(q.dir.snapPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		q.log.Warn("queue: index snapshot unreadable, reading the envelopes", "err", err)
	}
	if rerr := q.dir.fs.Remove(q.dir.snapPath()); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		return nil, rerr
	}
	if serr := q.dir.fs.SyncDir(q.dir.root); serr != nil {
		return nil, serr
	}
	if err != nil || q.replayed {
		return nil, nil
	}
	snap, ok := parseSnapshot(data)
	if !ok {
		q.log.Warn("queue: index snapshot damaged, reading the envelopes")
		return nil, nil
	}
	return snap, nil
}

// parseSnapshot decodes index.snap.
func parseSnapshot(data []byte) (map[msgKey]parked, bool) {
	body, ok := checkSnapshot(data)
	if !ok {
		return nil, false
	}
	snap := make(map[msgKey]parked, len(body)/snapEntry)
	for ; len(body) > 0; body = body[snapEntry:] {
		var k msgKey
		copy(k[:], body)
		e := body[len(k):]
		p := parked{due: int64(binary.BigEndian.Uint64(e)), size: binary.BigEndian.Uint32(e[8:])}
		for i := range p.counts {
			p.counts[i] = binary.BigEndian.Uint16(e[12+2*i:])
		}
		if p.due < 0 || p.due > never {
			return nil, false
		}
		snap[k] = p
	}
	return snap, true
}

// checkSnapshot returns the entries of a whole snapshot.
func checkSnapshot(data []byte) ([]byte, bool) {
	if len(data) < len(snapMagic)+4 || string(data[:len(snapMagic)]) != snapMagic {
		return nil, false
	}
	sum := binary.BigEndian.Uint32(data[len(data)-4:])
	if crc32.ChecksumIEEE(data[:len(data)-4]) != sum {
		return nil, false
	}
	body := data[len(snapMagic) : len(data)-4]
	if len(body)%snapEntry != 0 {
		return nil, false
	}
	return body, true
}
