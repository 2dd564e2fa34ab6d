package queue

import (
	"bufio"
	"bytes"
	"io"
)

// MaxTLSRequiredScan bounds how much of a stored message TLSRequiredNo
// reads: its header section, up to this many bytes. A TLS-Required field
// further down is not seen, which keeps the recipient domain's policy (the
// stricter reading).
const MaxTLSRequiredScan = 64 << 10

// TLSRequiredNo reports whether the message asks, with a "TLS-Required: No"
// header field (RFC 8689 §3), that delivery ignore the recipient domain's
// TLS policy (DANE, MTA-STS) when it cannot be met: RFC 8689 §4.2.2, the
// client still prefers TLS. It is honoured only for a message received
// without REQUIRETLS: RFC 8689 §4.2 says the field MUST be ignored when the
// REQUIRETLS MAIL parameter was given. The message is read through Open, at
// most MaxTLSRequiredScan bytes of its header section; a message that
// cannot be read counts as not asking (false).
func (a *Attempt) TLSRequiredNo() bool {
	if a.RequireTLS || a.Open == nil {
		return false
	}
	rc, err := a.Open()
	if err != nil {
		return false
	}
	defer rc.Close()
	return tlsRequiredNo(io.LimitReader(rc, MaxTLSRequiredScan))
}

// tlsRequiredNo scans a header section (RFC 5322 §2.2, §3.2.2 folding) for
// the field RFC 8689 §3 defines: tls-required = "TLS-Required:" [FWS] "No"
// CRLF. The name and the value are case-insensitive (RFC 5322 §1.2.2,
// RFC 5234 §2.3); the value may be folded and have white space around it.
// A TLS-Required field with any other value asks nothing. The scan ends at
// the empty line that ends the header section, or at the end of r.
func tlsRequiredNo(r io.Reader) bool {
	br := bufio.NewReaderSize(r, 4096)
	var field []byte // the current field, unfolded
	found := false
	flush := func() {
		if isTLSRequiredNo(field) {
			found = true
		}
		field = field[:0]
	}
	for {
		line, err := readHeaderLine(br)
		if len(line) == 0 && err == nil {
			break // the empty line: the body follows
		}
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			if len(field) > 0 && len(field) < maxFieldScan {
				field = append(field, line...) // a continuation (RFC 5322 §2.2.3)
			}
		} else {
			flush()
			if len(line) < maxFieldScan {
				field = append(field, line...)
			}
		}
		if err != nil {
			break
		}
	}
	flush()
	return found
}

// maxFieldScan is the longest unfolded field worth keeping: a
// "TLS-Required: No" field with generous folding fits many times over.
const maxFieldScan = 1024

// readHeaderLine returns the next line without its CRLF (or bare LF, which
// stored messages do not have but a scan should not trip over). A line
// longer than the reader's buffer is returned in pieces as if they were
// lines; such lines are never the field looked for. err is io.EOF (or the
// read error) with the last, unterminated line.
func readHeaderLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		// Skip the rest of an overlong line; report it as one odd line.
		for err == bufio.ErrBufferFull {
			_, err = br.ReadSlice('\n')
		}
		if err != nil {
			return []byte{0}, err
		}
		return []byte{0}, nil
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if err != nil && len(line) == 0 {
		return []byte{0}, err // the end of r: not an empty line
	}
	return line, err
}

// isTLSRequiredNo reports whether an unfolded field is "TLS-Required: No".
func isTLSRequiredNo(field []byte) bool {
	name, value, ok := bytes.Cut(field, []byte(":"))
	if !ok {
		return false
	}
	// RFC 5322 §3.6.8: no white space in a field name; obsolete syntax
	// (RFC 5322 §4.5) allows it before the colon.
	name = bytes.TrimRight(name, " \t")
	return bytes.EqualFold(name, []byte("TLS-Required")) &&
		bytes.EqualFold(bytes.Trim(value, " \t\r\n"), []byte("No"))
}
