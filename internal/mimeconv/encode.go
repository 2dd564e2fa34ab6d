package mimeconv

import (
	"bufio"
	"encoding/base64"
	"io"
)

// encoder is a content transfer encoding being written.
type encoder interface {
	io.Writer
	// Close ends the encoded data; atEnd says nothing follows (no
	// delimiter CRLF), so the output must end its own last line.
	Close(atEnd bool) error
}

const hexDigits = "0123456789ABCDEF"

// qpEncoder writes quoted-printable (RFC 2045 §6.7): CRLF in the data is a
// hard line break; every other octet outside 33–126, "=" and white space
// that ends a line is =XX; lines are at most 76 octets, soft breaks "="
// between them. Decoding gives the octets back exactly.
type qpEncoder struct {
	w    *bufio.Writer
	line []byte
	cr   bool // a CR was the last octet seen, not yet written
	ws   bool // the line ends with a literal space or tab
}

func newQP(w *bufio.Writer) *qpEncoder { return &qpEncoder{w: w, line: make([]byte, 0, 80)} }

func (q *qpEncoder) Write(p []byte) (int, error) {
	for _, b := range p {
		if q.cr {
			q.cr = false
			if b == '\n' {
				q.hardBreak()
				continue
			}
			q.put('\r', false)
		}
		switch {
		case b == '\r':
			q.cr = true
		case b == ' ' || b == '\t':
			q.put(b, true)
		case b >= 33 && b <= 126 && b != '=':
			q.put(b, true)
		default:
			q.put(b, false)
		}
	}
	return len(p), nil
}

// put adds one octet, literal or as =XX, soft-breaking first if the line
// would grow past 75 octets (76 with the "=").
func (q *qpEncoder) put(b byte, literal bool) {
	n := 1
	if !literal {
		n = 3
	}
	if len(q.line)+n > 75 {
		q.line = append(q.line, '=', '\r', '\n')
		q.w.Write(q.line)
		q.line = q.line[:0]
	}
	if literal {
		q.line = append(q.line, b)
	} else {
		q.line = append(q.line, '=', hexDigits[b>>4], hexDigits[b&15])
	}
	q.ws = literal && (b == ' ' || b == '\t')
}

// endLine encodes a trailing space or tab (RFC 2045 §6.7 rule 3: a
// decoder drops it).
func (q *qpEncoder) endLine() {
	if q.ws {
		b := q.line[len(q.line)-1]
		q.line = q.line[:len(q.line)-1]
		q.put(b, false)
	}
}

func (q *qpEncoder) hardBreak() {
	q.endLine()
	q.line = append(q.line, '\r', '\n')
	q.w.Write(q.line)
	q.line = q.line[:0]
	q.ws = false
}

func (q *qpEncoder) Close(atEnd bool) error {
	if q.cr {
		q.cr = false
		q.put('\r', false)
	}
	q.endLine()
	if atEnd && len(q.line) > 0 {
		// A soft break ends the last line without adding a line break to
		// the data.
		q.line = append(q.line, '=', '\r', '\n')
	}
	_, err := q.w.Write(q.line)
	q.line = q.line[:0]
	return err
}

// b64Encoder writes base64 (RFC 2045 §6.8) in lines of 76 characters.
type b64Encoder struct {
	wrap *lineWrap
	enc  io.WriteCloser
}

func newB64(w *bufio.Writer) *b64Encoder {
	lw := &lineWrap{w: w}
	return &b64Encoder{wrap: lw, enc: base64.NewEncoder(base64.StdEncoding, lw)}
}

func (e *b64Encoder) Write(p []byte) (int, error) { return e.enc.Write(p) }

func (e *b64Encoder) Close(atEnd bool) error {
	if err := e.enc.Close(); err != nil {
		return err
	}
	if atEnd && e.wrap.col > 0 {
		_, err := e.wrap.w.WriteString("\r\n")
		return err
	}
	return nil
}

// lineWrap breaks what it is given into lines of 76 octets; the last line
// is left without its CRLF.
type lineWrap struct {
	w   *bufio.Writer
	col int
}

func (l *lineWrap) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if l.col == 76 {
			l.w.WriteString("\r\n")
			l.col = 0
		}
		k := min(76-l.col, len(p))
		l.w.Write(p[:k])
		l.col += k
		p = p[k:]
	}
	return n, nil
}
