package mimeconv

import (
	"bytes"
	"fmt"
	"mime"
	"strings"
)

// field is one header field as it came, all its lines with their CRLFs.
type field struct {
	name string // lower case; "" for a line that is not a field
	raw  []byte
}

// value is the field's body unfolded (RFC 5322 §2.2.3), without the final
// CRLF.
func (f field) value() string {
	i := bytes.IndexByte(f.raw, ':')
	v := f.raw[i+1:]
	v = bytes.TrimSuffix(v, []byte("\r\n"))
	return string(bytes.ReplaceAll(v, []byte("\r\n"), nil))
}

// header is one entity's header block.
type header struct {
	fields []field
	sep    []byte // the empty line that ended it; nil when the body (or a boundary, or the end) came first
}

// get returns the first value of the field name (lower case).
func (h *header) get(name string) (string, bool) {
	for _, f := range h.fields {
		if f.name == name {
			return f.value(), true
		}
	}
	return "", false
}

// mediaType is the entity's content type, lower case, with its
// parameters: def when there is no Content-Type (RFC 2045 §5.2, RFC 2046
// §5.1.5), "" when it is not valid syntax.
func (h *header) mediaType(def string) (string, map[string]string) {
	v, ok := h.get("content-type")
	if !ok {
		return def, nil
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil && mt == "" {
		return "", nil
	}
	return mt, params
}

// cte is the entity's Content-Transfer-Encoding, lower case; "" when absent
// (RFC 2045 §6.1: 7bit).
func (h *header) cte() string {
	v, _ := h.get("content-transfer-encoding")
	if i := strings.IndexByte(v, '('); i >= 0 {
		v = v[:i] // a comment (RFC 822 §3.4.3)
	}
	return strings.ToLower(strings.TrimSpace(v))
}

// readHeader reads a header block: fields up to the empty line. A line that
// is a boundary of bounds, or that cannot start a field, ends the block
// without an empty line and is left to be read as the body.
func (c *conv) readHeader(bounds []string) (*header, error) {
	h := &header{}
	size := 0
	cont := false // the previous piece did not end its line
	for {
		p, ok, err := c.in.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			return h, nil
		}
		size += len(p.data)
		if size > MaxHeader {
			return nil, fmt.Errorf("%w: header block over %d octets", ErrCannotConvert, MaxHeader)
		}
		switch {
		case cont || (len(h.fields) > 0 && (p.data[0] == ' ' || p.data[0] == '\t')):
			f := &h.fields[len(h.fields)-1]
			f.raw = append(f.raw, p.data...)
		case string(p.data) == "\r\n":
			h.sep = []byte("\r\n")
			return h, nil
		case isBoundary(p, bounds) || fieldName(p.data) == "":
			c.in.unread(p)
			return h, nil
		default:
			h.fields = append(h.fields, field{name: fieldName(p.data), raw: append([]byte(nil), p.data...)})
		}
		cont = p.data[len(p.data)-1] != '\n'
	}
}

// fieldName returns the lower-cased name of the field line starts, "" when
// it does not start one (RFC 5322 §3.6.8: printable ASCII but colon).
func fieldName(line []byte) string {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return ""
	}
	for _, b := range line[:i] {
		if b < 33 || b > 126 {
			return ""
		}
	}
	return strings.ToLower(string(line[:i]))
}

// boundaryOf returns the index in bounds of the boundary whose delimiter
// line p is (RFC 2046 §5.1.1: "--" boundary, "--" for the close delimiter,
// trailing white space, CRLF), innermost first; -1 when none.
// close reports a close delimiter.
func boundaryOf(p piece, bounds []string) (i int, close bool) {
	if !p.lineStart || len(bounds) == 0 || !bytes.HasPrefix(p.data, []byte("--")) {
		return -1, false
	}
	if !p.crlf() && !p.eof {
		return -1, false
	}
	line := bytes.TrimRight(p.text(), " \t")
	for i := len(bounds) - 1; i >= 0; i-- {
		rest, ok := bytes.CutPrefix(line[2:], []byte(bounds[i]))
		if ok && (len(rest) == 0 || string(rest) == "--") {
			return i, len(rest) > 0
		}
	}
	return -1, false
}

func isBoundary(p piece, bounds []string) bool {
	i, _ := boundaryOf(p, bounds)
	return i >= 0
}
