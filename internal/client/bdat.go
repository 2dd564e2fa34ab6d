package client

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"smtpkit/internal/smtp"
)

// DefaultChunkSize is the size of a BDAT chunk (RFC 3030 §2) when
// Options.ChunkSize is 0: large enough that a lockstep transfer waits for
// few replies, small enough that many concurrent transfers stay cheap.
const DefaultChunkSize = 256 << 10

// chunkWindow bounds how many BDAT chunks are sent before their replies are
// read when the server offers PIPELINING (RFC 3030 §4.2): the replies are
// small, so this many can never fill the socket buffers and stall both ends.
const chunkWindow = 8

var chunkBufs = sync.Pool{New: func() any { b := make([]byte, 0, DefaultChunkSize); return &b }}

// ErrChunkRefused is in the chain of Result.Data when the server refused a
// BDAT chunk before the last one: the transaction failed and no further
// chunk was sent (RFC 3030 §2).
var ErrChunkRefused = errors.New("client: BDAT chunk refused")

// chunkWriter frames what is written to it as BDAT chunks of at most
// cap(buf) octets. It stops at the first reply that is not 250.
type chunkWriter struct {
	c         *Conn
	buf       []byte
	window    int // replies that may be outstanding: 1 without PIPELINING
	pending   int // chunks sent whose replies are unread
	refusal   *smtp.Reply
	lastSent  bool
	sent      int64
	lastReply smtp.Reply
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if w.refusal != nil {
			return n, ErrChunkRefused
		}
		k := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+k]
		p, n = p[k:], n+k
		if len(w.buf) == cap(w.buf) {
			if err := w.emit(false); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// emit sends the buffered octets as one chunk, then reads replies until at
// most window-1 are outstanding (all of them after LAST).
func (w *chunkWriter) emit(last bool) error {
	line := "BDAT " + strconv.Itoa(len(w.buf))
	if last {
		line += " LAST"
	}
	if err := w.c.arm(w.c.t.DataBlock); err != nil {
		return err
	}
	if err := w.c.writeLine(line, line); err != nil {
		return err
	}
	w.c.logClient("<message data, " + strconv.Itoa(len(w.buf)) + " octets>")
	if _, err := w.c.w.Write(w.buf); err != nil {
		return w.c.transportErr(err)
	}
	if err := w.c.flush(); err != nil {
		return err
	}
	w.sent += int64(len(w.buf))
	w.buf = w.buf[:0]
	w.pending++
	w.lastSent = last
	keep := w.window - 1
	if last || w.refusal != nil {
		keep = 0
	}
	return w.drain(keep)
}

// drain reads chunk replies until keep are outstanding. The reply to LAST
// gets the DataEnd timeout (RFC 5321 §4.5.3.2.6: the server commits now).
func (w *chunkWriter) drain(keep int) error {
	for w.pending > keep {
		d := w.c.t.DataBlock
		final := w.lastSent && w.pending == 1
		if final {
			d = w.c.t.DataEnd
		}
		rep, err := w.c.readReply(d)
		if err != nil {
			if final {
				return fmt.Errorf("%w: %w", ErrNoFinalReply, err)
			}
			return err
		}
		w.pending--
		w.lastReply = rep
		if rep.Code != smtp.CodeOK && w.refusal == nil {
			w.refusal = &rep
		}
	}
	return nil
}

// close sends what is left as "BDAT n LAST" unless a chunk was refused,
// and returns the reply that ends the transfer: the reply to LAST, or the
// first refusal.
func (w *chunkWriter) close() (smtp.Reply, error) {
	if w.refusal == nil {
		if err := w.emit(true); err != nil {
			return smtp.Reply{}, err
		}
	}
	if err := w.drain(0); err != nil {
		return smtp.Reply{}, err
	}
	if w.refusal != nil {
		return *w.refusal, nil
	}
	return w.lastReply, nil
}

// writeChunks sends the message with BDAT (RFC 3030 §2): no dot stuffing,
// no terminator, each chunk framed by its size, the last marked LAST.
// Text (binary false) has bare CR and LF turned into CRLF as for DATA;
// BODY=BINARYMIME data goes out octet for octet. With PIPELINING up to
// chunkWindow chunks are in flight. A refused chunk ends the transfer: no
// further chunk is sent, the replies to those in flight are read, and the
// first refusal is returned as the transaction's reply. If the body cannot
// be read the connection is closed: sending LAST would deliver a truncated
// message.
func (c *Conn) writeChunks(body io.Reader, binary, pipelined bool) (smtp.Reply, error) {
	cw := &chunkWriter{c: c, window: 1}
	if pipelined {
		cw.window = chunkWindow
	}
	if size := c.opts.ChunkSize; size > 0 && size != DefaultChunkSize {
		cw.buf = make([]byte, 0, size)
	} else {
		bp := chunkBufs.Get().(*[]byte)
		defer chunkBufs.Put(bp)
		cw.buf = (*bp)[:0]
	}
	bufs := bodyBufs.Get().(*bodyBuf)
	defer bodyBufs.Put(bufs)
	var dst io.Writer = cw
	var text *smtp.CRLFWriter
	if !binary {
		text = smtp.NewCRLFWriter(cw)
		dst = text
	}
	_, err := copyBody(dst, body, bufs.copy)
	if err == nil && text != nil {
		err = text.Close()
	}
	var re bodyReadError
	switch {
	case errors.As(err, &re):
		c.Close()
		return smtp.Reply{}, fmt.Errorf("%w (connection closed without BDAT LAST)", err)
	case err != nil && !errors.Is(err, ErrChunkRefused):
		return smtp.Reply{}, err
	}
	return cw.close()
}
