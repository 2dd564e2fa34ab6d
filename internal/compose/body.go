package compose

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"
)

// Content-Transfer-Encoding values (RFC 2045 §6.1, RFC 6152).
const (
	cte7bit   = "7bit"
	cte8bit   = "8bit"
	cteQP     = "quoted-printable"
	cteBase64 = "base64"
)

// maxFilename bounds an attachment's name; with RFC 2231 percent-encoding
// (three octets per non-ASCII octet) its parameter still fits in a line.
const maxFilename = 255

// textPart is the text/plain body: its CRLF text and how it is encoded.
type textPart struct {
	text string // CRLF-normalised
	cte  string
}

// newTextPart normalises body to CRLF and chooses its transfer encoding
// (RFC 2045 §2.7-2.8, §6): 7bit for short-lined ASCII, 8bit for short-lined
// UTF-8 when the transport takes it, quoted-printable for anything else
// (non-ASCII without 8BITMIME, lines over 998 octets, NUL, invalid UTF-8).
func newTextPart(body string, eightBit bool) textPart {
	text := string(ToCRLF([]byte(body)))
	if text != "" && !strings.HasSuffix(text, "\r\n") {
		text += "\r\n"
	}
	long := false
	for _, l := range strings.Split(text, "\r\n") {
		long = long || len(l) > maxLine
	}
	has8 := Has8Bit([]byte(text))
	switch {
	case long || strings.IndexByte(text, 0) >= 0:
		return textPart{text, cteQP}
	case !has8:
		return textPart{text, cte7bit}
	case eightBit && utf8.ValidString(text):
		return textPart{text, cte8bit}
	}
	return textPart{text, cteQP}
}

// writeTo writes the part's Content-Type and Content-Transfer-Encoding
// fields, the empty line and the encoded text.
func (p textPart) writeTo(b *bytes.Buffer) {
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	b.WriteString("Content-Transfer-Encoding: " + p.cte + "\r\n\r\n")
	if p.cte != cteQP {
		b.WriteString(p.text)
		return
	}
	// Text mode: CRLF in the input is a hard line break, written as CRLF;
	// soft breaks keep lines within 76 octets (RFC 2045 §6.7 rule 5).
	qp := quotedprintable.NewWriter(b)
	qp.Write([]byte(p.text)) // writes to a bytes.Buffer cannot fail
	qp.Close()
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
}

// writeMultipart writes a multipart/mixed body (RFC 2046 §5.1.3): the text
// part first, then one base64 part per attachment.
func (m *Message) writeMultipart(b *bytes.Buffer, text textPart) error {
	parts := make([][]byte, 0, 1+len(m.Attachments))
	var tb bytes.Buffer
	text.writeTo(&tb)
	parts = append(parts, tb.Bytes())
	for _, a := range m.Attachments {
		p, err := a.part()
		if err != nil {
			return err
		}
		parts = append(parts, p)
	}
	boundary := m.Boundary
	if boundary == "" {
		boundary = "=_" + rand.Text()
	}
	for _, p := range parts {
		// RFC 2046 §5.1.1: the boundary must not occur in any part. Random
		// boundaries with "=_" cannot occur in base64 or quoted-printable;
		// a 7bit or 8bit text could hold one on purpose.
		if bytes.Contains(p, []byte("--"+boundary)) {
			return fmt.Errorf("compose: multipart boundary %q occurs in the message", boundary)
		}
	}
	ct, err := paramField("Content-Type", "multipart/mixed", map[string]string{"boundary": boundary})
	if err != nil {
		return err
	}
	b.WriteString(ct)
	b.WriteString("\r\nThis is a multi-part message in MIME format.\r\n")
	for _, p := range parts {
		b.WriteString("\r\n--" + boundary + "\r\n")
		// Every part ends in CRLF, and the CRLF before a delimiter belongs
		// to the delimiter (RFC 2046 §5.1.1), so the text keeps its last
		// line break.
		b.Write(p)
	}
	b.WriteString("\r\n--" + boundary + "--\r\n")
	return nil
}

// part renders an attachment: its Content-Type, Content-Disposition with
// the file name (RFC 2183; RFC 2231 encoding when not ASCII), and the data
// in base64 lines of 76 characters (RFC 2045 §6.8).
func (a Attachment) part() ([]byte, error) {
	name := a.Filename
	if name == "" || len(name) > maxFilename || strings.ContainsAny(name, "/\\") {
		return nil, fmt.Errorf("compose: attachment name %q: want a file name of 1 to %d octets without directories", name, maxFilename)
	}
	ct := a.ContentType
	if ct == "" {
		ct = TypeByName(name)
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, fmt.Errorf("compose: attachment %q: content type %q: %v", name, ct, err)
	}
	ctField, err := paramField("Content-Type", mt, params)
	if err != nil {
		return nil, fmt.Errorf("compose: attachment %q: %v", name, err)
	}
	dispField, err := paramField("Content-Disposition", "attachment", map[string]string{"filename": name})
	if err != nil {
		return nil, fmt.Errorf("compose: attachment %q: %v", name, err)
	}
	var b bytes.Buffer
	b.WriteString(ctField)
	b.WriteString("Content-Transfer-Encoding: base64\r\n")
	b.WriteString(dispField)
	b.WriteString("\r\n")
	writeBase64(&b, a.Data)
	return b.Bytes(), nil
}

// paramField renders a field with a value and parameters (RFC 2045 §5.1,
// RFC 2183 §2), each parameter formatted by mime.FormatMediaType (quoted,
// or RFC 2231 encoded when not ASCII) in sorted order. Lines are folded
// only between parameters, never inside a quoted value, because readers
// such as net/textproto collapse the whitespace of a fold.
func paramField(name, value string, params map[string]string) (string, error) {
	if mime.FormatMediaType(value, nil) == "" {
		return "", fmt.Errorf("invalid %s value %q", name, value)
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(name + ": " + value)
	line := b.Len()
	for _, k := range keys {
		p := mime.FormatMediaType("x", map[string]string{k: params[k]})
		if p == "" {
			return "", fmt.Errorf("%s parameter %s=%q cannot be encoded", name, k, params[k])
		}
		p = strings.TrimPrefix(p, "x; ")
		if line+2+len(p) > foldAt {
			b.WriteString(";\r\n " + p)
			line = 1 + len(p)
		} else {
			b.WriteString("; " + p)
			line += 2 + len(p)
		}
		if line > maxLine {
			return "", fmt.Errorf("%s parameter %s too long", name, k)
		}
	}
	b.WriteString("\r\n")
	return b.String(), nil
}

// writeBase64 writes data as base64 lines of 76 characters (57 octets
// each), every line ending in CRLF.
func writeBase64(b *bytes.Buffer, data []byte) {
	const chunk = 57
	line := make([]byte, base64.StdEncoding.EncodedLen(chunk))
	for len(data) > 0 {
		n := min(chunk, len(data))
		base64.StdEncoding.Encode(line, data[:n])
		b.Write(line[:base64.StdEncoding.EncodedLen(n)])
		b.WriteString("\r\n")
		data = data[n:]
	}
}

// TypeByName is the media type for a file name's extension
// (mime.TypeByExtension), application/octet-stream when unknown.
func TypeByName(name string) string {
	if t := mime.TypeByExtension(filepath.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}
