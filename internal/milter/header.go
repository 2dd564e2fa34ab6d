package milter

import (
	"bufio"
	"bytes"
	"io"
)

// field is one header field as it was received: its name and its raw
// lines, CRLF included (RFC 5322 §2.2).
type field struct {
	name string
	raw  []byte
}

// value is the field body as milters get it: after the colon, without
// the one space that usually follows, without the final CRLF, folding
// kept (the milter protocol sends values unfolded only with
// SMFIP_HDR_LEADSPC, which we do not offer).
func (f field) value() string {
	v := f.raw[len(f.name)+1:]
	v = bytes.TrimSuffix(v, []byte("\r\n"))
	if len(v) > 0 && v[0] == ' ' {
		v = v[1:]
	}
	return string(v)
}

// maxHeader bounds the header block read into memory; the server's
// limits.header_size keeps real messages well below it. What follows a
// longer header block is treated as body.
const maxHeader = 4 << 20

// readHeader reads the header block of a message (RFC 5322 §2.1): the
// fields up to the empty line, which is consumed. A line that is neither
// a field nor a continuation ends the header block there and is left to
// the body, as is everything after maxHeader octets.
func readHeader(br *bufio.Reader) ([]field, error) {
	var fields []field
	size := 0
	for size < maxHeader {
		line, err := peekLine(br)
		if err != nil && len(line) == 0 {
			if err == io.EOF {
				return fields, nil
			}
			return fields, err
		}
		switch {
		case string(line) == "\r\n":
			br.Discard(len(line))
			return fields, nil
		case (line[0] == ' ' || line[0] == '\t') && len(fields) > 0:
			f := &fields[len(fields)-1]
			f.raw = append(f.raw, line...)
		default:
			name, ok := fieldName(line)
			if !ok {
				return fields, nil
			}
			fields = append(fields, field{name: name, raw: append([]byte(nil), line...)})
		}
		size += len(line)
		br.Discard(len(line))
	}
	return fields, nil
}

// peekLine returns the next line, CRLF included, without consuming it
// (up to the reader's buffer size: a longer line is returned cut).
func peekLine(br *bufio.Reader) ([]byte, error) {
	for n := 1; ; n++ {
		b, err := br.Peek(min(n*512, br.Size()))
		if i := bytes.Index(b, []byte("\r\n")); i >= 0 {
			return b[:i+2], nil
		}
		if err != nil || len(b) == br.Size() {
			if err == bufio.ErrBufferFull {
				err = nil
			}
			return b, err
		}
	}
}

// fieldName is the name of the field starting line: printable ASCII but
// colon up to a colon (RFC 5322 §3.6.8).
func fieldName(line []byte) (string, bool) {
	i := bytes.IndexByte(line, ':')
	if i < 1 {
		return "", false
	}
	for _, c := range line[:i] {
		if c < 33 || c > 126 {
			return "", false
		}
	}
	return string(line[:i]), true
}

// validFieldName reports whether name, as a milter gives it, is a whole
// field name: one or more printable ASCII characters but colon
// (RFC 5322 §3.6.8). A name with a colon in it would pass fieldName on
// name+":" and could carry a CR or LF after its first colon.
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}
