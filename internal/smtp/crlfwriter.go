package smtp

import (
	"errors"
	"io"
)

// CRLFWriter writes message text for BDAT (RFC 3030 §2): like DotWriter it
// turns a bare LF or bare CR into CRLF (a client must never send them,
// RFC 5321 §2.3.8) and completes an unterminated last line on Close, but it
// stuffs no dots and writes no terminator: BDAT frames data by its size.
// It is not for BODY=BINARYMIME data, which goes out as it is.
type CRLFWriter struct {
	w io.Writer
	lines
	closed bool
	buf    []byte
}

var errCRLFWriterClosed = errors.New("smtp: write to closed CRLFWriter")

// NewCRLFWriter returns a CRLFWriter that writes to w. Close does not close w.
func NewCRLFWriter(w io.Writer) *CRLFWriter {
	return &CRLFWriter{w: w, lines: lines{bol: true}}
}

// Write normalizes and writes p, in pieces of at most dotWriterChunk input
// octets. It returns len(p) unless the underlying writer fails.
func (c *CRLFWriter) Write(p []byte) (int, error) {
	if c.closed {
		return 0, errCRLFWriterClosed
	}
	written := 0
	for len(p) > 0 {
		chunk := p
		if len(chunk) > dotWriterChunk {
			chunk = chunk[:dotWriterChunk]
		}
		c.buf = c.transform(c.buf[:0], chunk)
		if _, err := c.w.Write(c.buf); err != nil {
			return written, err
		}
		written += len(chunk)
		p = p[len(chunk):]
	}
	return written, nil
}

// transform appends the CRLF-normalized form of in to out.
func (c *CRLFWriter) transform(out, in []byte) []byte { return c.lines.normalize(out, in, false) }

// Close completes an unterminated last line with CRLF. Empty data stays
// empty.
func (c *CRLFWriter) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	if c.cr || !c.bol {
		_, err := c.w.Write([]byte("\r\n"))
		return err
	}
	return nil
}
