package smtp

import (
	"bytes"
	"errors"
	"io"
)

// DotWriter writes message text for DATA (RFC 5321 §4.1.1.4), the client's
// half of the DotReader: lines starting with "." get another "." in front
// (§4.5.2), and Close sends the terminating ".\r\n".
//
// The input should be CRLF text. Because a client must never send a bare CR
// or LF (§2.3.8, and servers that defend against SMTP smuggling refuse
// them), a bare LF or bare CR in the input is written as CRLF. Line length
// is not checked here; that is the caller's business.
type DotWriter struct {
	w io.Writer
	lines
	closed bool
	buf    []byte
}

// dotWriterChunk bounds the scratch buffer: input is processed in pieces of
// this size, each written with one call to the underlying writer.
const dotWriterChunk = 32 << 10

var errDotWriterClosed = errors.New("smtp: write to closed DotWriter")

// NewDotWriter returns a DotWriter that writes to w. Close does not close w.
func NewDotWriter(w io.Writer) *DotWriter {
	return &DotWriter{w: w, lines: lines{bol: true}}
}

// Write stuffs and writes p. It returns len(p) unless the underlying writer
// fails.
func (d *DotWriter) Write(p []byte) (int, error) {
	if d.closed {
		return 0, errDotWriterClosed
	}
	written := 0
	for len(p) > 0 {
		chunk := p
		if len(chunk) > dotWriterChunk {
			chunk = chunk[:dotWriterChunk]
		}
		d.buf = d.transform(d.buf[:0], chunk)
		if _, err := d.w.Write(d.buf); err != nil {
			return written, err
		}
		written += len(chunk)
		p = p[len(chunk):]
	}
	return written, nil
}

// transform appends the stuffed, CRLF-normalized form of in to out.
func (d *DotWriter) transform(out, in []byte) []byte { return d.lines.normalize(out, in, true) }

// lines is the state DotWriter and CRLFWriter keep between Writes.
type lines struct {
	bol bool // at the beginning of a line (or of the data)
	cr  bool // the last input octet was a CR whose LF may follow in the next Write
}

// normalize appends in to out with every bare CR and bare LF made CRLF
// (RFC 5321 §2.3.8) and, with stuff, a "." added before a line's leading
// "." (§4.5.2). It copies each run of octets between line ends whole
// (found with bytes.IndexByte), so that its cost per octet is a copy,
// not a branch.
func (l *lines) normalize(out, in []byte, stuff bool) []byte {
	for len(in) > 0 {
		if l.cr {
			l.cr = false
			out = append(out, '\r', '\n')
			l.bol = true
			if in[0] == '\n' {
				in = in[1:] // the LF of a CRLF
				continue
			}
		}
		if stuff && l.bol && in[0] == '.' {
			out = append(out, '.')
		}
		i := lineEnd(in)
		if i < 0 {
			l.bol = false
			return append(out, in...)
		}
		if i > 0 {
			out = append(out, in[:i]...)
			l.bol = false
		}
		if in[i] == '\r' {
			l.cr = true
		} else {
			out = append(out, '\r', '\n') // bare LF
			l.bol = true
		}
		in = in[i+1:]
	}
	return out
}

// lineEnd is the index of the first CR or LF in p, or -1.
func lineEnd(p []byte) int {
	n := bytes.IndexByte(p, '\n')
	seg := p
	if n >= 0 {
		seg = p[:n]
	}
	if r := bytes.IndexByte(seg, '\r'); r >= 0 {
		return r
	}
	return n
}

// Close ends the data: it completes an unterminated last line with CRLF and
// writes ".\r\n". Empty data gives just ".\r\n", an empty message.
func (d *DotWriter) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	out := d.buf[:0]
	if d.cr || !d.bol {
		out = append(out, '\r', '\n')
	}
	out = append(out, '.', '\r', '\n')
	_, err := d.w.Write(out)
	return err
}
