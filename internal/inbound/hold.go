package inbound

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
)

// holdMem is how much of a held message stays in memory; the rest goes
// to a temporary file. It is the Maildir writer's buffer size, so a
// message the journal takes in one record is also held in memory.
const holdMem = 64 << 10

// hold keeps a message being verified until the end of DATA, when its
// Authentication-Results field is known and can be written above it, or
// being filtered until the milters have seen it and said what to change
// (milterwriter.go): every stored copy is then written once, with its
// final bytes. Up to
// holdMem it is memory; a larger message spills into an unlinked file in
// dir, never fsynced — it is not the durable copy, the Maildir and queue
// copies made from it at Commit are.
type hold struct {
	dir  string
	pool *sync.Pool // of *[]byte with cap holdMem (Backend.holds); nil: no pooling
	buf  *[]byte    // from pool: the memory part, then WriteTo's copy buffer
	mem  []byte
	f    *os.File
	size int64
}

func (h *hold) Write(p []byte) (int, error) {
	if h.buf == nil && h.pool != nil {
		h.buf = h.pool.Get().(*[]byte)
		h.mem = (*h.buf)[:0]
	}
	if h.f == nil && len(h.mem)+len(p) <= holdMem {
		h.mem = append(h.mem, p...)
		h.size += int64(len(p))
		return len(p), nil
	}
	if h.f == nil {
		if err := h.spill(); err != nil {
			return 0, err
		}
	}
	n, err := h.f.Write(p)
	h.size += int64(n)
	return n, err
}

// spill moves the held bytes into a temporary file that has no name (it
// is removed at once), so nothing is left behind by a crash.
func (h *hold) spill() error {
	f, err := os.CreateTemp(h.dir, "held-*")
	if err != nil {
		return fmt.Errorf("inbound: holding a message: %w", err)
	}
	os.Remove(f.Name())
	if _, err := f.Write(h.mem); err != nil {
		f.Close()
		return fmt.Errorf("inbound: holding a message: %w", err)
	}
	h.f, h.mem = f, nil
	return nil
}

// WriteTo writes the held message to w.
func (h *hold) WriteTo(w io.Writer) (int64, error) {
	if h.f == nil {
		n, err := w.Write(h.mem)
		return int64(n), err
	}
	var buf []byte
	if h.buf != nil {
		buf = (*h.buf)[:cap(*h.buf)]
	}
	return io.CopyBuffer(w, io.NewSectionReader(h.f, 0, h.size), buf)
}

// Reader reads the held message from its start; each call starts again.
func (h *hold) Reader() io.Reader {
	if h.f == nil {
		return bytes.NewReader(h.mem)
	}
	return io.NewSectionReader(h.f, 0, h.size)
}

// Close releases the memory and the file.
func (h *hold) Close() {
	h.mem = nil
	if h.buf != nil {
		h.pool.Put(h.buf)
		h.buf = nil
	}
	if h.f != nil {
		h.f.Close()
		h.f = nil
	}
}
