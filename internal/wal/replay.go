package wal

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"smtpkit/internal/vfs"
)

// Replay calls fn for every record of the segments an earlier run left, in
// order. It may be called once, before the log is checkpointed; the
// replayed segments are dropped by the next Checkpoint. An error from fn
// stops the replay and is returned.
func (l *Log) Replay(fn func(seq uint64, payload []byte) error) error {
	l.mu.Lock()
	segs := l.replay
	l.replay = nil
	l.mu.Unlock()
	for _, s := range segs {
		if err := readSegment(l.fs, s.path, s.first, fn); err != nil {
			return err
		}
	}
	l.mu.Lock()
	l.old = append(segs, l.old...)
	l.mu.Unlock()
	return nil
}

// readSegment calls fn for each intact record of the segment at path,
// whose first record is numbered first, stopping quietly at the first
// incomplete or damaged one.
func readSegment(fsys vfs.FS, path string, first uint64, fn func(seq uint64, payload []byte) error) error {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	defer f.Close()
	return ReadRecords(bufio.NewReaderSize(f, 64<<10), first, fn)
}

// ReadRecords calls fn for each intact record in r, in order, and stops at
// the end of r or at the first incomplete or damaged record (a torn tail).
// The first record must be numbered first and each later one must follow
// its predecessor; anything else ends the segment (in a reused file, what
// follows the new records is older ones).
func ReadRecords(r io.Reader, first uint64, fn func(seq uint64, payload []byte) error) error {
	var h [headerSize]byte
	var payload []byte
	prev := first - 1
	for {
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return nil
		}
		n := binary.LittleEndian.Uint32(h[0:4])
		seq := binary.LittleEndian.Uint64(h[8:16])
		if n > MaxPayload || seq != prev+1 {
			return nil
		}
		if cap(payload) < int(n) {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(r, payload); err != nil {
			return nil
		}
		crc := crc32.Update(0, castagnoli, h[8:16])
		if crc32.Update(crc, castagnoli, payload) != binary.LittleEndian.Uint32(h[4:8]) {
			return nil
		}
		if err := fn(seq, payload); err != nil {
			return err
		}
		prev = seq
	}
}
