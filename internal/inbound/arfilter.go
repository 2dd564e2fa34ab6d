package inbound

import (
	"bytes"
	"io"
)

// arFilter removes from a message's header section every
// Authentication-Results field that carries our authserv-id: RFC 8601
// §5 — such fields arriving from outside are forgeries (or our own from
// an earlier hop) and a reader must be able to trust the ones with our
// id. Fields with another id, and everything after the header section,
// pass through unchanged, byte for byte.
//
// It streams: a field is held only while it may be an
// Authentication-Results field (bounded by maxARField; a longer one is
// removed, since no genuine result needs that much and it cannot be
// judged), every other field is passed on as soon as its name is known.
// Input must be CRLF lines, as the server's dot reader guarantees.
type arFilter struct {
	out     io.Writer
	ours    func(value string) bool // authres.IsOurs with our id
	body    bool                    // past the header section: pass through
	bol     bool                    // the next byte begins a line
	mode    fieldMode
	pend    []byte // the current field while mode is fieldPending
	removed int    // fields removed
}

type fieldMode int

const (
	fieldPending fieldMode = iota // name not known yet, or an A-R field
	fieldKeep                     // passed on
	fieldDrop                     // removed
)

// maxARField bounds a held field (and so the filter's memory).
const maxARField = 16 << 10

// maxFieldName bounds the search for the colon of a field name: a
// longer "name" is not an Authentication-Results field.
const maxFieldName = 64

const arName = "Authentication-Results"

func newARFilter(out io.Writer, ours func(string) bool) *arFilter {
	return &arFilter{out: out, ours: ours, bol: true}
}

func (f *arFilter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if f.body {
			_, err := f.out.Write(p)
			return n, err
		}
		if f.bol {
			// RFC 5322 §2.2.3: a line starting with WSP continues the
			// field; anything else ends it. An empty line ends the header
			// section.
			if c := p[0]; c != ' ' && c != '\t' {
				if err := f.endField(); err != nil {
					return 0, err
				}
				if c == '\r' || c == '\n' {
					f.body = true
					continue
				}
				f.mode = fieldPending
			}
			f.bol = false
		}
		line := p
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line, f.bol = p[:i+1], true
		}
		if err := f.field(line); err != nil {
			return 0, err
		}
		p = p[len(line):]
	}
	return n, nil
}

// field takes the next bytes of the current field.
func (f *arFilter) field(b []byte) error {
	switch f.mode {
	case fieldKeep:
		_, err := f.out.Write(b)
		return err
	case fieldDrop:
		return nil
	}
	f.pend = append(f.pend, b...)
	colon := bytes.IndexByte(f.pend, ':')
	switch {
	case colon < 0 && len(f.pend) <= maxFieldName && !f.bol:
		return nil // the name goes on
	case colon < 0 || !isARName(f.pend[:colon]):
		f.mode = fieldKeep
		_, err := f.out.Write(f.pend)
		f.pend = f.pend[:0]
		return err
	case len(f.pend) > maxARField:
		f.mode = fieldDrop
		f.pend = f.pend[:0]
		f.removed++
	}
	return nil
}

// endField decides a held field once it is complete.
func (f *arFilter) endField() error {
	if f.mode != fieldPending || len(f.pend) == 0 {
		return nil
	}
	defer func() { f.pend = f.pend[:0] }()
	colon := bytes.IndexByte(f.pend, ':')
	if colon >= 0 && isARName(f.pend[:colon]) {
		value := bytes.TrimSuffix(f.pend[colon+1:], []byte("\r\n"))
		if f.ours(string(value)) {
			f.removed++
			return nil
		}
	}
	_, err := f.out.Write(f.pend)
	return err
}

// Flush passes on a field still held when the message ends inside its
// header section (a message without a body).
func (f *arFilter) Flush() error {
	if f.body {
		return nil
	}
	err := f.endField()
	f.mode = fieldKeep
	return err
}

// isARName reports whether name (the bytes before the colon, RFC 5322
// §3.6.8 allows WSP before it in the obsolete syntax) is
// Authentication-Results, case-insensitively.
func isARName(name []byte) bool {
	return bytes.EqualFold(bytes.TrimRight(name, " \t"), []byte(arName))
}
