package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Bounds on a server's reply. RFC 5321 §4.5.3.1.5 limits a reply line to
// 512 octets; broken servers exceed that, so we allow more, but not without
// limit.
const (
	MaxReplyLineLen = 4096
	MaxReplyLines   = 1000
)

// ErrBadReply is wrapped by ReadReply's syntax errors.
var ErrBadReply = errors.New("smtp: malformed reply")

func badReply(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadReply}, args...)...)
}

// ReadReply reads one reply, possibly multi-line, from a server
// (RFC 5321 §4.2.1): lines "ddd-text" followed by a last line "ddd text" or
// "ddd", all with the same code, the first digit 2 to 5 and the second 0 to
// 5 (§4.2). When every line starts with the same enhanced status code whose
// class matches the reply code (RFC 2034 §3, RFC 3463 §2), it goes to
// Reply.Enhanced and is removed from Lines; otherwise Lines hold the text as
// sent.
//
// Bare LF line endings from broken servers are tolerated; lines are bounded
// by MaxReplyLineLen and replies by MaxReplyLines. Syntax errors wrap
// ErrBadReply. A connection that ends before the first octet gives io.EOF,
// and one that ends within a reply io.ErrUnexpectedEOF.
func ReadReply(r *bufio.Reader) (Reply, error) {
	var rep Reply
	for n := 0; ; n++ {
		if n == MaxReplyLines {
			return Reply{}, badReply("more than %d lines", MaxReplyLines)
		}
		line, err := readReplyLine(r)
		if err != nil {
			if n > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Reply{}, err
		}
		code, last, text, err := splitReplyLine(line)
		if err != nil {
			return Reply{}, err
		}
		if n == 0 {
			rep.Code = code
		} else if code != rep.Code {
			return Reply{}, badReply("code %d in a %d reply", code, rep.Code)
		}
		rep.Lines = append(rep.Lines, text)
		if last {
			break
		}
	}
	splitEnhanced(&rep)
	return rep, nil
}

// readReplyLine reads one line and returns it without its LF or CRLF.
func readReplyLine(r *bufio.Reader) ([]byte, error) {
	var long []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(long)+len(frag) > MaxReplyLineLen+2 {
			return nil, badReply("line longer than %d octets", MaxReplyLineLen)
		}
		switch {
		case err == nil:
			if long != nil {
				frag = append(long, frag...)
			}
			frag = frag[:len(frag)-1]
			return bytes.TrimSuffix(frag, []byte{'\r'}), nil
		case errors.Is(err, bufio.ErrBufferFull):
			long = append(long, frag...)
		case errors.Is(err, io.EOF) && (len(long) > 0 || len(frag) > 0):
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// splitReplyLine checks Reply-code [("-" / SP) textstring] (RFC 5321 §4.2).
func splitReplyLine(line []byte) (code int, last bool, text string, err error) {
	if len(line) < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' || !isDigit(line[2]) {
		return 0, false, "", badReply("bad reply code in %q", truncate(line, 40))
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	if len(line) == 3 {
		return code, true, "", nil
	}
	switch line[3] {
	case ' ':
		last = true
	case '-':
	default:
		return 0, false, "", badReply("bad separator in %q", truncate(line, 40))
	}
	return code, last, string(line[4:]), nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// splitEnhanced moves a common enhanced status code from the front of every
// line to rep.Enhanced.
func splitEnhanced(rep *Reply) {
	var first string
	for i, l := range rep.Lines {
		e := enhancedPrefix(l)
		if e == "" || e[0] != byte('0'+rep.Code/100) || (i > 0 && e != first) {
			return
		}
		first = e
	}
	rep.Enhanced = Enhanced(first)
	for i, l := range rep.Lines {
		l = l[len(first):]
		if len(l) > 0 {
			l = l[1:] // the space after the code
		}
		rep.Lines[i] = l
	}
}

// enhancedPrefix returns the status-code at the start of s (RFC 3463 §2:
// class "." 1*3digit "." 1*3digit, class 2, 4 or 5) when it is followed by
// a space or the end of s, or "".
func enhancedPrefix(s string) string {
	if len(s) < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.' {
		return ""
	}
	i := 2
	for part := 0; part < 2; part++ {
		start := i
		for i < len(s) && i-start < 4 && isDigit(s[i]) {
			i++
		}
		if n := i - start; n == 0 || n > 3 {
			return ""
		}
		if part == 0 {
			if i >= len(s) || s[i] != '.' {
				return ""
			}
			i++
		}
	}
	if i < len(s) && s[i] != ' ' {
		return ""
	}
	return s[:i]
}
