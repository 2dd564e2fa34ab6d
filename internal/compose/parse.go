package compose

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
)

// ToCRLF returns b with every line ending CRLF: a bare LF or a bare CR
// becomes CRLF (RFC 5322 §2.3 forbids them alone), as smtp.DotWriter does
// on the wire.
func ToCRLF(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); i++ {
		c := b[i]
		bare := (c == '\n' && (i == 0 || b[i-1] != '\r')) || (c == '\r' && (i+1 == len(b) || b[i+1] != '\n'))
		if !bare {
			if out != nil {
				out = append(out, c)
			}
			continue
		}
		if out == nil {
			out = append(make([]byte, 0, len(b)+len(b)/16+2), b[:i]...)
		}
		out = append(out, '\r', '\n')
	}
	if out == nil {
		return b
	}
	return out
}

// ReadInput reads a message handed over by a local program, as sendmail
// does: line endings become CRLF (see ToCRLF), a last line without an
// ending gets one, and when dotEnds is set a line holding a single "."
// ends the input (the rest is not read). More than max octets of result is
// ErrTooBig.
func ReadInput(r io.Reader, dotEnds bool, max int64) ([]byte, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var out bytes.Buffer
	for {
		line, err := readLine(br, max-int64(out.Len()))
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if len(line) > 0 {
			content := bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
			if dotEnds && bytes.Equal(content, []byte(".")) {
				return out.Bytes(), nil
			}
			out.Write(ToCRLF(content))
			out.WriteString("\r\n")
			if int64(out.Len()) > max {
				return nil, ErrTooBig
			}
		}
		if err != nil {
			return out.Bytes(), nil
		}
	}
}

// readLine reads up to and including the next LF, failing with ErrTooBig
// once the line alone is longer than limit.
func readLine(br *bufio.Reader, limit int64) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if int64(len(line)) > limit+2 {
			return nil, ErrTooBig
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, err
		}
	}
}

// Field is one header field as it appeared, continuation lines included.
type Field struct {
	Name string // as written
	Raw  string // "Name: value" with its folds and final CRLF
}

// Value is the field body unfolded, without the leading whitespace.
func (f Field) Value() string {
	v := strings.TrimSuffix(f.Raw[len(f.Name)+1:], "\r\n")
	return strings.TrimLeft(Unfold(v), " \t")
}

// Header is a message's header section, in order.
type Header struct {
	Fields []Field
}

// Split parses msg (CRLF text) into its header fields and its body. The
// header ends at the first empty line, which is consumed, or at the first
// line that is neither a field ("name:", RFC 5322 §2.2) nor a continuation,
// which starts the body. Join puts an empty line back between the two.
func Split(msg []byte) (Header, []byte) {
	var h Header
	rest := msg
	for len(rest) > 0 {
		end := bytes.Index(rest, []byte("\r\n"))
		if end < 0 {
			break
		}
		line := rest[:end]
		if end == 0 {
			return h, rest[2:]
		}
		if (line[0] == ' ' || line[0] == '\t') && len(h.Fields) > 0 {
			h.Fields[len(h.Fields)-1].Raw += string(rest[:end+2])
			rest = rest[end+2:]
			continue
		}
		name, ok := fieldName(line)
		if !ok {
			break
		}
		h.Fields = append(h.Fields, Field{Name: name, Raw: string(rest[:end+2])})
		rest = rest[end+2:]
	}
	return h, rest
}

// fieldName returns the name of a header line: one or more printable ASCII
// characters other than ":" before a colon (RFC 5322 §3.6.8).
func fieldName(line []byte) (string, bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return "", false
	}
	for _, c := range line[:i] {
		if c < 33 || c > 126 {
			return "", false
		}
	}
	return string(line[:i]), true
}

// Join renders the header, an empty line and body.
func Join(h Header, body []byte) []byte {
	var b bytes.Buffer
	for _, f := range h.Fields {
		b.WriteString(f.Raw)
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// Has reports whether a field named name (case-insensitive) is present.
func (h *Header) Has(name string) bool {
	for _, f := range h.Fields {
		if strings.EqualFold(f.Name, name) {
			return true
		}
	}
	return false
}

// Del removes every field named name and reports how many there were.
func (h *Header) Del(name string) int {
	kept := h.Fields[:0]
	for _, f := range h.Fields {
		if !strings.EqualFold(f.Name, name) {
			kept = append(kept, f)
		}
	}
	n := len(h.Fields) - len(kept)
	h.Fields = kept
	return n
}

// Add appends a field already rendered by FormatField or
// FormatAddressField ("Name: value" CRLF).
func (h *Header) Add(raw string) {
	name, _, _ := strings.Cut(raw, ":")
	h.Fields = append(h.Fields, Field{Name: name, Raw: raw})
}

// Addresses returns the addresses of every field named in names, in
// header order (RFC 5322 §3.4 address lists; groups give their members).
// A field that does not parse is an error naming it.
func (h *Header) Addresses(names ...string) ([]*mail.Address, error) {
	var out []*mail.Address
	for _, f := range h.Fields {
		for _, n := range names {
			if !strings.EqualFold(f.Name, n) {
				continue
			}
			v := strings.TrimSpace(f.Value())
			if v == "" {
				continue
			}
			list, err := mail.ParseAddressList(v)
			if err != nil {
				return nil, fmt.Errorf("compose: %s header: %v", f.Name, err)
			}
			out = append(out, list...)
		}
	}
	return out, nil
}
