package mimeconv

import (
	"fmt"
	"mime"
	"net/mail"
	"strings"
	"unicode/utf8"
)

// addressFields are the fields whose value is an address list
// (RFC 5322 §3.6.2, §3.6.3, §3.6.6).
var addressFields = map[string]bool{
	"from": true, "sender": true, "reply-to": true, "to": true, "cc": true, "bcc": true,
	"resent-from": true, "resent-sender": true, "resent-to": true, "resent-cc": true, "resent-bcc": true,
	"disposition-notification-to": true,
}

// structuredFields are the structured fields with no place for an
// encoded-word (RFC 2047 §5): 8-bit octets in them cannot be converted.
var structuredFields = map[string]bool{
	"date": true, "message-id": true, "in-reply-to": true, "references": true, "received": true,
	"return-path": true, "mime-version": true, "content-transfer-encoding": true, "content-id": true,
	"resent-date": true, "resent-message-id": true, "dkim-signature": true, "arc-seal": true,
	"arc-message-signature": true, "arc-authentication-results": true, "authentication-results": true,
	"received-spf": true, "list-id": true, "list-unsubscribe": true, "list-post": true, "list-help": true,
	"list-subscribe": true, "list-owner": true, "list-archive": true,
}

// has8Bit reports whether b holds an octet above 127.
func has8Bit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// convertField returns the field in 7-bit form, as the package doc says;
// the field itself when it has no 8-bit octet.
func convertField(f field) ([]byte, error) {
	if !has8Bit(f.raw) {
		return f.raw, nil
	}
	if f.name == "" {
		return nil, fmt.Errorf("%w: 8-bit octets in a header line that is not a field", ErrCannotConvert)
	}
	name := string(f.raw[:strings.IndexByte(string(f.raw), ':')])
	v := f.value()
	var out string
	switch {
	case structuredFields[f.name]:
		return nil, fmt.Errorf("%w: 8-bit octets in the %s field", ErrCannotConvert, name)
	case addressFields[f.name]:
		list, err := mail.ParseAddressList(v)
		if err != nil {
			return nil, fmt.Errorf("%w: %s field: %v", ErrCannotConvert, name, err)
		}
		parts := make([]string, len(list))
		for i, a := range list {
			if has8Bit([]byte(a.Address)) {
				return nil, fmt.Errorf("%w: %s field: the address %q needs SMTPUTF8", ErrCannotConvert, name, a.Address)
			}
			parts[i] = a.String() // RFC 2047 §5(3): the display name as encoded-words
		}
		out = " " + strings.Join(parts, ", ")
	case f.name == "content-type" || f.name == "content-disposition":
		mt, params, err := mime.ParseMediaType(v)
		if err != nil {
			return nil, fmt.Errorf("%w: %s field: %v", ErrCannotConvert, name, err)
		}
		for k, pv := range params {
			if !utf8.ValidString(pv) {
				return nil, fmt.Errorf("%w: %s field: parameter %s is not UTF-8", ErrCannotConvert, name, k)
			}
		}
		out = " " + mime.FormatMediaType(mt, params) // RFC 2231 §4 for 8-bit values
		if strings.TrimSpace(out) == "" {
			return nil, fmt.Errorf("%w: %s field cannot be written", ErrCannotConvert, name)
		}
	default:
		// Unstructured (RFC 2047 §5(1)): the whole value, its leading
		// white space kept.
		text := strings.TrimLeft(v, " \t")
		out = v[:len(v)-len(text)] + encodeWords(text)
	}
	return []byte(fold(name+":"+out) + "\r\n"), nil
}

// encodeWords is text as RFC 2047 encoded-words: UTF-8 when it is UTF-8,
// else the unknown-8bit charset (RFC 1428), which carries the octets as
// they are.
func encodeWords(text string) string {
	cs := "utf-8"
	if !utf8.ValidString(text) {
		cs = "unknown-8bit"
	}
	e := mime.QEncoding
	n := 0
	for i := 0; i < len(text); i++ {
		if text[i] >= 0x80 {
			n++
		}
	}
	if n > len(text)/3 { // mostly 8-bit: B is shorter (RFC 2047 §4)
		e = mime.BEncoding
	}
	return e.Encode(cs, text)
}

// fold breaks a field longer than 78 octets before white space
// (RFC 5322 §2.2.3); unfolding gives the line back. No line is white
// space only (RFC 5322 §3.2.2).
func fold(line string) string {
	var b strings.Builder
	for len(line) > 78 {
		i := breakAt(line)
		if i < 0 || strings.TrimLeft(line[i:], " \t") == "" {
			break
		}
		b.WriteString(line[:i])
		b.WriteString("\r\n")
		line = line[i:]
	}
	b.WriteString(line)
	return b.String()
}

// breakAt is where fold breaks line: the last white space before octet
// 78 that follows other text, else the first one after; -1 if none.
func breakAt(line string) int {
	start := len(line) - len(strings.TrimLeft(line, " \t"))
	for i := min(78, len(line)-1); i > start; i-- {
		if line[i] == ' ' || line[i] == '\t' {
			return i
		}
	}
	for i := max(79, start+1); i < len(line); i++ {
		if line[i] == ' ' || line[i] == '\t' {
			return i
		}
	}
	return -1
}
