package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// MaxLineLen is RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets
// including the CRLF.
const MaxLineLen = 1000

// Errors of the DotReader. Each is an *Error carrying the reply to send
// once the end of data has been read.
//
// Bare CR and LF get 500 5.5.2, a syntax error: the client broke the
// framing rule of RFC 5321 §2.3.8, it is not a content policy (550 5.6.0).
//
// A NUL octet gets 554 5.6.0: it breaks no framing rule, but text may not
// hold it (RFC 5322 §2.1 and §3.5; RFC 2045 §2.7 and §2.8 for 7bit and
// 8bit data, which is what 8BITMIME carries, RFC 6152 §2). Only binary data
// may, and that needs BODY=BINARYMIME (RFC 3030 §3), which smtpkit does not
// offer. A next hop that strips NULs would turn "\r\n\x00.\r\n" into an end
// of data, so a NUL relayed is a smuggling vector too.
var (
	ErrBareLF      error = E(CodeSyntax, EnhSyntax, "Bare LF in message data not allowed; lines must end in CRLF (RFC 5321 §2.3.8)")
	ErrBareCR      error = E(CodeSyntax, EnhSyntax, "Bare CR in message data not allowed; lines must end in CRLF (RFC 5321 §2.3.8)")
	ErrNUL         error = E(CodeTransactionFailed, EnhMedia, "NUL in message text not allowed (RFC 5322 §2.1, RFC 2045 §2.8)")
	ErrLineTooLong error = E(CodeSyntax, EnhSyntax, "Line too long (RFC 5321 §4.5.3.1.6)")
	ErrTooLarge    error = E(CodeExceededStorage, EnhTooBig, "Message size exceeds fixed maximum message size")
)

// DotReader reads the message text of DATA (RFC 5321 §4.1.1.4) strictly.
//
// The only end of data is CRLF "." CRLF. A bare CR or LF (one not part of a
// CRLF) is never a line break, so "\n.\n", "\r.\r" and the like cannot end
// the data early: that is the defence against SMTP smuggling
// (CVE-2023-51764, -51765, -51766). When the reader meets a bare CR or LF,
// a NUL, a line longer than the limit, or more data than the size limit, it
// remembers the first such error, stops passing data on, keeps reading up
// to the real end of data so that the session stays in step with the
// client, and then returns the error instead of io.EOF. Nothing after the
// terminator is consumed from the bufio.Reader.
//
// Lines starting with "." have that dot removed (§4.5.2). The output is the
// message as received, CRLF line endings included, without the final
// ".\r\n"; the CRLF before the terminating dot ends the message's last line.
// If the connection ends before the terminator, Read returns
// io.ErrUnexpectedEOF; other read errors (timeouts) are returned as they
// are.
type DotReader struct {
	r       *bufio.Reader
	maxSize int64
	maxLine int

	size    int64 // unstuffed octets read so far, including any drained after an error
	lineLen int   // octets of the current line so far, as on the wire
	bol     bool  // at the beginning of a line: the previous octets were CRLF, or nothing
	cr      bool  // the last octet consumed was a CR that may start a CRLF
	err     error // first framing or limit error; data is drained, not returned, after it
	done    bool
	final   error // what Read returns once done
}

// NewDotReader returns a reader of the message text that follows a 354
// reply. maxSize bounds the unstuffed octets (0 or less: no bound; the
// caller must then bound the message some other way) and maxLine the length
// of a line including CRLF (0 or less: MaxLineLen).
func NewDotReader(r *bufio.Reader, maxSize int64, maxLine int) *DotReader {
	if maxLine <= 0 {
		maxLine = MaxLineLen
	}
	return &DotReader{r: r, maxSize: maxSize, maxLine: maxLine, bol: true}
}

// Size returns the number of unstuffed octets read so far.
func (d *DotReader) Size() int64 { return d.size }

// Read reads message text into p. It returns io.EOF exactly at the end of
// data, or the first error described on DotReader after the end of data.
func (d *DotReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && !d.done {
		if d.bol {
			ok, err := d.startLine(n > 0)
			if err != nil {
				d.fail(err)
				break
			}
			if !ok {
				break // would block with data in hand
			}
			continue
		}
		buf, err := d.buffered(n > 0)
		if err != nil {
			d.fail(err)
			break
		}
		if buf == nil {
			break
		}
		if d.cr {
			d.afterCR(buf[0], p, &n)
			continue
		}
		if room := len(p) - n; len(buf) > room && d.err == nil {
			buf = buf[:room]
		}
		n += d.scan(buf, p[n:])
	}
	if n == 0 && d.done {
		return 0, d.final
	}
	return n, nil
}

// buffered returns the bytes the bufio.Reader holds, reading more only when
// it holds none. It returns nil, nil when reading would block and the
// caller already has data to return.
func (d *DotReader) buffered(haveData bool) ([]byte, error) {
	if d.r.Buffered() == 0 {
		if haveData {
			return nil, nil
		}
		if _, err := d.r.Peek(1); err != nil {
			return nil, err
		}
	}
	buf, _ := d.r.Peek(d.r.Buffered())
	return buf, nil
}

// startLine looks at the first octets of a line: ".\r\n" ends the data, a
// leading "." is dot-stuffing and is removed (RFC 5321 §4.5.2). It reports
// false when it would have to block and haveData is set.
func (d *DotReader) startLine(haveData bool) (bool, error) {
	if haveData && d.r.Buffered() == 0 {
		return false, nil
	}
	b, err := d.r.Peek(1)
	if err != nil {
		return false, err
	}
	if b[0] != '.' {
		d.bol = false
		return true, nil
	}
	if haveData && d.r.Buffered() < 3 {
		return false, nil
	}
	if b, err = d.r.Peek(3); err != nil {
		return false, err
	}
	d.bol = false
	if b[1] == '\r' && b[2] == '\n' {
		d.r.Discard(3)
		d.done = true
		d.final = io.EOF
		if d.err != nil {
			d.final = d.err
		}
		return true, nil
	}
	d.r.Discard(1)
	d.lineLen = 1
	return true, nil
}

// afterCR settles a CR that ended the previous chunk: with an LF it ends
// the line, otherwise it was bare.
func (d *DotReader) afterCR(c byte, p []byte, n *int) {
	d.cr = false
	if c != '\n' {
		d.setErr(ErrBareCR)
		return
	}
	d.r.Discard(1)
	d.emit(p, n, []byte{'\n'})
	if d.lineLen++; d.lineLen > d.maxLine {
		d.setErr(ErrLineTooLong)
	}
	d.endLine()
}

// scan consumes buf up to and including its first LF, or all of it, copies
// what it may into out and returns how many octets it copied.
func (d *DotReader) scan(buf, out []byte) int {
	chunk := buf
	i := bytes.IndexByte(buf, '\n')
	if i >= 0 {
		chunk = buf[:i+1]
	}
	// body is the chunk without a trailing CRLF, LF or CR, which are
	// looked at separately; any CR inside it is bare.
	body := chunk
	eol := false
	switch {
	case i > 0 && chunk[i-1] == '\r':
		body, eol = chunk[:i-1], true
	case i >= 0:
		body = chunk[:i] // bare LF: data, not a line break
		d.setErr(ErrBareLF)
	case chunk[len(chunk)-1] == '\r':
		body, d.cr = chunk[:len(chunk)-1], true
	}
	if d.err == nil && bytes.IndexByte(body, '\r') >= 0 {
		d.setErr(ErrBareCR)
	}
	if d.err == nil && bytes.IndexByte(body, 0) >= 0 {
		d.setErr(ErrNUL)
	}
	d.lineLen += len(chunk)
	if d.lineLen > d.maxLine {
		d.setErr(ErrLineTooLong)
	}
	n := 0
	d.emit(out, &n, chunk)
	d.r.Discard(len(chunk))
	if eol {
		d.endLine()
	}
	return n
}

// emit counts b into the message size and copies it to out[*n:] unless an
// error has been seen. The caller guarantees room.
func (d *DotReader) emit(out []byte, n *int, b []byte) {
	d.size += int64(len(b))
	if d.maxSize > 0 && d.size > d.maxSize {
		d.setErr(ErrTooLarge)
	}
	if d.err == nil {
		*n += copy(out[*n:], b)
	}
}

func (d *DotReader) endLine() {
	d.bol = true
	d.lineLen = 0
}

func (d *DotReader) setErr(err error) {
	if d.err == nil {
		d.err = err
	}
}

// fail ends the reader on a read error from the connection.
func (d *DotReader) fail(err error) {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	d.done = true
	d.final = err
}
