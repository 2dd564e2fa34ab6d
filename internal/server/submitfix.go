package server

import (
	"bytes"
	"fmt"
	"io"
	"time"
)

// maxFixupHeader bounds how much of the header block the submission fix-up
// holds in memory; a longer header block is passed through unchanged.
const maxFixupHeader = 64 << 10

// headerFixer adds Message-ID and Date to submitted messages that lack
// them, as RFC 6409 §8.2 and §8.3 allow a Message Submission Agent to do.
// It buffers only the header block, then streams the body through.
type headerFixer struct {
	w        io.Writer
	buf      bytes.Buffer
	passing  bool // header block done (or too long): everything goes straight through
	hostname string
	id       string
	now      time.Time
}

func newHeaderFixer(w io.Writer, hostname, id string, now time.Time) *headerFixer {
	return &headerFixer{w: w, hostname: hostname, id: id, now: now}
}

func (h *headerFixer) Write(p []byte) (int, error) {
	if h.passing {
		return h.w.Write(p)
	}
	h.buf.Write(p)
	b := h.buf.Bytes()
	if i := headerEnd(b); i >= 0 && i <= maxFixupHeader {
		return len(p), h.release(i)
	}
	if h.buf.Len() > maxFixupHeader {
		h.passing = true
		_, err := h.w.Write(h.buf.Bytes())
		h.buf = bytes.Buffer{}
		return len(p), err
	}
	return len(p), nil
}

// headerEnd returns the offset of the empty line that ends the header
// block (RFC 5322 §2.1), or -1. A message that starts with an empty line has
// no header fields.
func headerEnd(b []byte) int {
	if bytes.HasPrefix(b, []byte("\r\n")) {
		return 0
	}
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return i + 2
	}
	return -1
}

// release writes the header block up to end, the missing fields, and the
// rest of the buffer, then switches to pass-through.
func (h *headerFixer) release(end int) error {
	b := h.buf.Bytes()
	var out bytes.Buffer
	out.Write(b[:end])
	out.WriteString(h.missing(b[:end]))
	out.Write(b[end:])
	h.passing = true
	h.buf = bytes.Buffer{}
	_, err := h.w.Write(out.Bytes())
	return err
}

// Close flushes a message that ended inside its header block.
func (h *headerFixer) Close() error {
	if h.passing {
		return nil
	}
	b := h.buf.Bytes()
	end := len(b)
	if end > 0 && !bytes.HasSuffix(b, []byte("\r\n")) {
		// A last header line without CRLF: fields cannot be appended safely.
		h.passing = true
		_, err := h.w.Write(b)
		return err
	}
	return h.release(end)
}

// missing returns the Message-ID and Date fields the header lacks.
func (h *headerFixer) missing(header []byte) string {
	var add string
	if !hasField(header, "message-id") {
		add += fmt.Sprintf("Message-ID: <%s.%d@%s>\r\n", h.id, h.now.UnixNano(), h.hostname)
	}
	if !hasField(header, "date") {
		add += "Date: " + h.now.Format(time.RFC1123Z) + "\r\n"
	}
	return add
}

// hasField reports whether a header block has a field named name
// (case-insensitive, RFC 5322 §1.2.2).
func hasField(header []byte, name string) bool {
	for len(header) > 0 {
		line := header
		if i := bytes.Index(header, []byte("\r\n")); i >= 0 {
			line, header = header[:i], header[i+2:]
		} else {
			header = nil
		}
		field, _, ok := bytes.Cut(line, []byte(":"))
		if ok && len(field) > 0 && field[0] != ' ' && field[0] != '\t' &&
			bytes.EqualFold(bytes.TrimRight(field, " \t"), []byte(name)) {
			return true
		}
	}
	return false
}
