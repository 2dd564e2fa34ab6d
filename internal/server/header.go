package server

import (
	"bytes"
	"io"

	"smtpkit/internal/smtp"
)

// headerLimiter passes the message on and fails once the header block
// (up to the first empty line, RFC 5322 §2.1) is longer than max octets.
// It keeps only a 4-state matcher for CRLF CRLF, whatever the chunking.
type headerLimiter struct {
	next  io.WriteCloser
	max   int64
	n     int64 // header octets seen so far
	state int   // progress through "\r\n\r\n"; 4 = header block ended
}

var endOfHeader = [4]byte{'\r', '\n', '\r', '\n'}

func (h *headerLimiter) Write(p []byte) (int, error) {
	if h.state < 4 {
		i := 0
		if h.n == 0 && h.state == 0 {
			// The message starts as if after a CRLF, so an empty first
			// line means no header fields at all.
			h.state = 2
		}
		for ; i < len(p) && h.state < 4; i++ {
			switch {
			case p[i] == endOfHeader[h.state]:
				h.state++
			case p[i] == '\r':
				h.state = 1
			default:
				h.state = 0
			}
		}
		h.n += int64(i)
		if h.n > h.max {
			return 0, errHeaderTooLarge
		}
	}
	return h.next.Write(p)
}

func (h *headerLimiter) Close() error { return h.next.Close() }

// textChecker holds BDAT data to the rules DATA's dot reader enforces: a
// text message (no BODY=BINARYMIME) has every line end in CRLF and at most
// maxLine octets with it (RFC 5321 §2.3.8, §4.5.3.1.6), and no octet is
// NUL (RFC 5322 §2.1, RFC 2045 §2.8). A bare CR or LF, or a NUL that a
// next hop strips, stored or relayed could smuggle a second message past
// a less careful next hop. For a BINARYMIME message (headerOnly) the rules
// hold for the header block only, up to its empty line: the body is
// binary (RFC 3030 §3), but the header fields stay RFC 5322 text.
type textChecker struct {
	next       io.WriteCloser
	maxLine    int
	headerOnly bool
	line       int  // octets of the current line so far
	cr         bool // the last octet was CR
	done       bool // headerOnly and the header block has ended
}

func (c *textChecker) Write(p []byte) (int, error) {
	for rest := p; len(rest) > 0 && !c.done; {
		n, clean := c.line1(rest)
		if !clean {
			for _, b := range rest[:n] {
				if c.done {
					break
				}
				if err := c.octet(b); err != nil {
					return 0, err
				}
			}
		}
		rest = rest[n:]
	}
	return c.next.Write(p)
}

// line1 checks the first line of p (through its LF, or all of p without
// one) in whole-line steps (bytes.IndexByte): when it breaks no rule it
// takes it in (clean) and says how many octets that was; otherwise it
// leaves the state alone and octet must look at those n octets one by one.
func (c *textChecker) line1(p []byte) (n int, clean bool) {
	lf := bytes.IndexByte(p, '\n')
	seg, n := p, len(p)
	if lf >= 0 {
		seg, n = p[:lf], lf+1
	}
	if c.cr || bytes.IndexByte(seg, 0) >= 0 || c.line+len(seg) > c.maxLine-1 {
		return n, false
	}
	// The only CR allowed is the line's last octet: the CR of its CRLF,
	// or, without an LF here yet, one whose LF the next Write brings.
	switch r := bytes.IndexByte(seg, '\r'); {
	case r < 0 && lf >= 0: // a bare LF
		return n, false
	case r >= 0 && r != len(seg)-1: // a bare CR
		return n, false
	}
	if lf < 0 {
		c.line += len(seg)
		c.cr = len(seg) > 0 && seg[len(seg)-1] == '\r'
		return n, true
	}
	c.done = c.headerOnly && c.line+len(seg) == 1 // an empty line ends the header block
	c.line, c.cr = 0, false
	return n, true
}

// octet applies the rules to one octet.
func (c *textChecker) octet(b byte) error {
	switch {
	case c.cr && b != '\n':
		return smtp.ErrBareCR
	case b == '\n' && !c.cr:
		return smtp.ErrBareLF
	case b == '\n':
		// An empty line (only its CR seen) ends the header block.
		c.done = c.headerOnly && c.line == 1
		c.line, c.cr = 0, false
		return nil
	case b == 0:
		return smtp.ErrNUL
	}
	c.cr = b == '\r'
	if c.line++; c.line > c.maxLine-1 { // maxLine counts the CRLF; the CR is in c.line
		return smtp.ErrLineTooLong
	}
	return nil
}

func (c *textChecker) Close() error {
	if c.cr && !c.done {
		return smtp.ErrBareCR
	}
	return c.next.Close()
}
