package server

import (
	"io"

	"smtpkit/internal/smtp"
)

// errHeaderTooLarge refuses a message whose header block is over the
// limit; like SIZE it is a permanent refusal of this message.
var errHeaderTooLarge = smtp.E(smtp.CodeExceededStorage, smtp.EnhTooBig, "Message header exceeds fixed maximum header size")

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
