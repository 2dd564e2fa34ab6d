// Package compose builds and edits Internet messages (RFC 5322) with MIME
// (RFC 2045-2049): the header fields a sender must supply, encoded-words for
// non-ASCII text (RFC 2047), quoted-printable or 8bit text bodies, and
// multipart/mixed messages with base64 attachments whose file names use
// RFC 2231 parameter encoding. Every line it writes ends in CRLF and none is
// longer than 998 octets (RFC 5322 §2.1.1).
//
// It also reads messages handed over by local programs (the sendmail
// interface): line endings normalised to CRLF, the header split into fields
// that can be inspected, removed and added to.
//
// It imports nothing of smtpkit's: it knows messages, not SMTP.
package compose

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
)

// Message is a message to compose.
type Message struct {
	From    mail.Address
	To, Cc  []mail.Address // Bcc recipients are envelope-only: never in the header
	Subject string
	// Date is the origination date (RFC 5322 §3.6.1); zero means now.
	Date time.Time
	// MessageID is the msg-id without angle brackets ("left@right",
	// RFC 5322 §3.6.4); empty means NewMessageID(the From domain).
	MessageID string
	// Extra are header fields added as given ("Name: value"), checked by
	// ParseField. A Date, Message-ID, From, To, Cc or Subject among them
	// replaces the generated field; MIME structure fields (MIME-Version,
	// Content-*) and Bcc are refused.
	Extra []string
	// Body is the text/plain body, UTF-8; LF and bare CR become CRLF.
	Body        string
	Attachments []Attachment
	// EightBit says the transport carries 8-bit data (SMTP 8BITMIME,
	// RFC 6152): a UTF-8 body with short lines is then sent as 8bit;
	// otherwise non-ASCII text is quoted-printable.
	EightBit bool
	// Boundary is the multipart boundary; empty means a random one.
	Boundary string
}

// Attachment is one file attached as a base64 body part.
type Attachment struct {
	// Filename is the name offered to the recipient, without directories.
	Filename string
	// ContentType is the media type; empty means TypeByName(Filename).
	ContentType string
	Data        []byte
}

// generated are the fields Build writes itself and Extra may replace.
var generated = []string{"Date", "Message-ID", "From", "To", "Cc", "Subject"}

// Build renders the message as CRLF text.
func (m *Message) Build() ([]byte, error) {
	if m.From.Address == "" {
		return nil, errors.New("compose: message without a From address")
	}
	extra, err := m.extraFields()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	for _, f := range m.standardFields() {
		if f.value == "" && f.name != "From" {
			continue
		}
		if _, ok := extra[strings.ToLower(f.name)]; ok {
			continue
		}
		b.WriteString(f.value)
	}
	for _, e := range m.Extra {
		b.WriteString(e)
		b.WriteString("\r\n")
	}
	b.WriteString("MIME-Version: 1.0\r\n")
	text := newTextPart(m.Body, m.EightBit)
	if len(m.Attachments) == 0 {
		text.writeTo(&b)
		return b.Bytes(), nil
	}
	if err := m.writeMultipart(&b, text); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

type field struct{ name, value string }

// standardFields renders the generated fields (each value a whole folded
// field with its CRLF, or "" when absent).
func (m *Message) standardFields() []field {
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	id := m.MessageID
	if id == "" {
		id = NewMessageID(domainOf(m.From.Address))
	}
	f := []field{
		{"Date", FormatField("Date", FormatDate(date))},
		{"Message-ID", FormatField("Message-ID", "<"+id+">")},
		{"From", FormatAddressField("From", []mail.Address{m.From})},
		{"To", FormatAddressField("To", m.To)},
		{"Cc", FormatAddressField("Cc", m.Cc)},
		{"Subject", ""},
	}
	if m.Subject != "" {
		f[5].value = FormatField("Subject", m.Subject)
	}
	return f
}

// extraFields checks Extra and returns the lower-cased names of the
// generated fields it replaces.
func (m *Message) extraFields() (map[string]bool, error) {
	replaced := map[string]bool{}
	for _, e := range m.Extra {
		name, _, err := ParseField(e)
		if err != nil {
			return nil, err
		}
		lower := strings.ToLower(name)
		if lower == "mime-version" || strings.HasPrefix(lower, "content-") || lower == "bcc" {
			return nil, fmt.Errorf("compose: header %q is set by the message structure and cannot be given", name)
		}
		for _, g := range generated {
			if strings.EqualFold(g, name) {
				replaced[lower] = true
			}
		}
	}
	return replaced, nil
}

// ParseField checks one "Name: value" header line given by a user: the
// name is printable ASCII without colon (RFC 5322 §3.6.8 ftext), the value
// has no CR, LF or NUL, and the line fits in 998 octets (§2.1.1).
func ParseField(s string) (name, value string, err error) {
	name, value, ok := strings.Cut(s, ":")
	if !ok || name == "" {
		return "", "", fmt.Errorf("compose: header %q: want \"Name: value\"", s)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 33 || c > 126 {
			return "", "", fmt.Errorf("compose: header name %q: only printable ASCII without spaces", name)
		}
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return "", "", fmt.Errorf("compose: header %q: value contains CR, LF or NUL", name)
	}
	if len(s) > maxLine {
		return "", "", fmt.Errorf("compose: header %q: longer than %d octets", name, maxLine)
	}
	return name, strings.TrimLeft(value, " \t"), nil
}

// NewMessageID returns a new globally unique msg-id for domain, without
// angle brackets (RFC 5322 §3.6.4): 128 random bits and the time, "@"
// domain. An empty domain gives "localhost".
func NewMessageID(domain string) string {
	if domain == "" {
		domain = "localhost"
	}
	return fmt.Sprintf("%d.%s@%s", time.Now().UnixNano(), rand.Text(), domain)
}

// FormatDate formats t as an RFC 5322 §3.3 date-time.
func FormatDate(t time.Time) string { return t.Format(time.RFC1123Z) }

// domainOf returns the part of addr after its last "@", or "".
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return addr[i+1:]
}

// Has8Bit reports whether b holds any octet above 127 (and so needs
// 8BITMIME or SMTPUTF8 to travel).
func Has8Bit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// ErrTooBig is returned by ReadInput when the input exceeds its limit.
var ErrTooBig = errors.New("compose: message too big")
