package mimeconv

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// end is how an entity's content ended: at the delimiter line of
// bounds[idx] (close: the close delimiter), or at the end of the input
// (idx -1).
type end struct {
	idx   int
	close bool
}

var atEOF = end{idx: -1}

// entity converts one entity (the message, a part, an enclosed message)
// whose header h has been read; its content ends at a delimiter of bounds
// or at the end of the input, and the delimiter line has been copied when
// it returns.
func (c *conv) entity(h *header, bounds []string, depth int, top, digest bool) (end, error) {
	if top {
		_, mv := h.get("mime-version")
		_, ct := h.get("content-type")
		if !mv && !ct {
			return c.leaf(h, bounds, "text/plain", "", true)
		}
	}
	def := "text/plain"
	if digest {
		def = "message/rfc822" // RFC 2046 §5.1.5
	}
	mt, params := h.mediaType(def)
	cte := h.cte()
	switch {
	case strings.HasPrefix(mt, "multipart/") && params["boundary"] != "" && depth < MaxDepth && !encoded(cte):
		return c.multipart(h, params["boundary"], mt == "multipart/digest", bounds, depth)
	case mt == "message/rfc822" && depth < MaxDepth && !encoded(cte):
		return c.message(h, bounds, depth)
	case strings.HasPrefix(mt, "multipart/") || mt == "message/rfc822" || mt == "message/partial":
		// RFC 2045 §6.4: these may not be encoded; copied when 7-bit.
		return c.leaf(h, bounds, mt, "7bit-only", false)
	}
	return c.leaf(h, bounds, mt, cte, false)
}

// encoded reports a transfer encoding other than the identity ones.
func encoded(cte string) bool {
	return cte != "" && cte != "7bit" && cte != "8bit" && cte != "binary"
}

// writeHeader writes h with its 8-bit fields converted; a non-empty cte
// replaces the Content-Transfer-Encoding field (added when there is
// none), and extra fields go at the end.
func (c *conv) writeHeader(h *header, cte string, extra ...string) error {
	done := false
	for _, f := range h.fields {
		if f.name == "content-transfer-encoding" && cte != "" {
			if !done {
				c.out.WriteString("Content-Transfer-Encoding: " + cte + "\r\n")
				done = true
			}
			c.changed = true
			continue
		}
		b, err := convertField(f)
		if err != nil {
			return err
		}
		if !bytes.Equal(b, f.raw) {
			c.changed = true
		}
		c.out.Write(b)
	}
	for _, x := range extra {
		c.out.WriteString(x + "\r\n")
		c.changed = true
	}
	if cte != "" && !done {
		c.out.WriteString("Content-Transfer-Encoding: " + cte + "\r\n")
		c.changed = true
	}
	if h.sep == nil && (c.changed || len(extra) > 0) {
		h.sep = []byte("\r\n")
		c.changed = true
	}
	_, err := c.out.Write(h.sep)
	return err
}

// identityCTE is the Content-Transfer-Encoding a multipart or message
// entity gets: 7bit where it said 8bit or binary, since its content is
// converted (RFC 2045 §6.4); "" to keep the field.
func identityCTE(cte string) string {
	if cte == "8bit" || cte == "binary" {
		return "7bit"
	}
	return ""
}

// multipart converts a multipart entity (RFC 2046 §5.1.1): preamble, the
// parts between delimiters, epilogue.
func (c *conv) multipart(h *header, boundary string, digest bool, bounds []string, depth int) (end, error) {
	if err := c.writeHeader(h, identityCTE(h.cte())); err != nil {
		return end{}, err
	}
	inner := append(bounds[:len(bounds):len(bounds)], boundary)
	own := len(inner) - 1
	e, err := c.ignored(inner) // the preamble
	for err == nil && e.idx == own && !e.close {
		var ph *header
		if ph, err = c.readHeader(inner); err != nil {
			break
		}
		e, err = c.entity(ph, inner, depth+1, false, digest)
	}
	if err != nil || e.idx != own {
		return e, err // an outer delimiter or the end, before the close delimiter
	}
	return c.ignored(bounds) // the epilogue
}

// message converts an enclosed message (RFC 2046 §5.2.1): its header and
// body, as a message.
func (c *conv) message(h *header, bounds []string, depth int) (end, error) {
	if err := c.writeHeader(h, identityCTE(h.cte())); err != nil {
		return end{}, err
	}
	ih, err := c.readHeader(bounds)
	if err != nil {
		return end{}, err
	}
	return c.entity(ih, bounds, depth+1, true, false)
}

// delimiter copies the delimiter line p if it is one of bounds.
func (c *conv) delimiter(p piece, bounds []string) (end, bool) {
	i, cl := boundaryOf(p, bounds)
	if i < 0 {
		return end{}, false
	}
	c.out.Write(p.data)
	return end{idx: i, close: cl}, true
}

// ignored copies a preamble or epilogue (RFC 2046 §5.1.1: to be ignored)
// up to a delimiter of bounds; lines that are not 7-bit have their other
// octets replaced by "?" and are broken at 998 octets.
func (c *conv) ignored(bounds []string) (end, error) {
	col := 0
	for {
		p, ok, err := c.in.next()
		if err != nil || !ok {
			return atEOF, err
		}
		if e, ok := c.delimiter(p, bounds); ok {
			return e, nil
		}
		if col == 0 && p.sevenBit() {
			c.out.Write(p.data)
			continue
		}
		c.changed = true
		t, nl := p.data, false
		if p.crlf() {
			t, nl = p.text(), true
		}
		for _, b := range t {
			if col == maxLine {
				c.out.WriteString("\r\n")
				col = 0
			}
			if b == 0 || b >= 0x80 || b == '\r' || b == '\n' {
				b = '?'
			}
			c.out.WriteByte(b)
			col++
		}
		if nl || p.eof {
			c.out.WriteString("\r\n")
			col = 0
		}
	}
}

// leaf converts a leaf entity of media type mt and transfer encoding cte.
// "7bit-only" copies it when it is 7-bit and fails otherwise. nonMIME
// makes a converted body text/plain with MIME header fields.
func (c *conv) leaf(h *header, bounds []string, mt, cte string, nonMIME bool) (end, error) {
	switch cte {
	case "8bit", "binary":
		return c.encode(h, bounds, mt, nil, nil)
	case "", "7bit":
		// Held: the header changes if the part is not 7-bit.
	default:
		if err := c.writeHeader(h, ""); err != nil {
			return end{}, err
		}
		return c.copy7(bounds, cte)
	}
	held, e, done, err := c.hold(bounds)
	if err != nil {
		return end{}, err
	}
	seven := true
	for _, p := range held {
		seven = seven && p.sevenBit()
	}
	if seven {
		if err := c.writeHeader(h, ""); err != nil {
			return end{}, err
		}
		for _, p := range held {
			c.out.Write(p.data)
		}
		if done {
			c.out.Write(c.delim) // the delimiter line hold stopped at
			return e, nil
		}
		return c.copy7(bounds, "7bit")
	}
	var extra []string
	if nonMIME {
		text := true
		for _, p := range held {
			text = text && p.textLine()
		}
		if !text {
			return end{}, ErrNotMIME
		}
		cs := "utf-8"
		if !validUTF8(held) {
			cs = "unknown-8bit" // RFC 1428
		}
		extra = []string{"MIME-Version: 1.0", "Content-Type: text/plain; charset=" + cs}
		mt = "text/plain"
	}
	return c.encode(h, bounds, mt, held, extra, doneEnd(done, e)...)
}

// doneEnd passes hold's delimiter on to encode.
func doneEnd(done bool, e end) []end {
	if done {
		return []end{e}
	}
	return nil
}

func validUTF8(held []piece) bool {
	var b []byte
	for _, p := range held {
		b = append(b, p.data...)
	}
	return utf8.Valid(b)
}

// hold reads pieces (copied) up to a delimiter, the end, or MaxHold octets.
// done reports that it stopped at a delimiter or the end (e says which;
// a delimiter line is left in c.delim, not yet written).
func (c *conv) hold(bounds []string) (held []piece, e end, done bool, err error) {
	size := 0
	for size < MaxHold {
		p, ok, err := c.in.next()
		if err != nil {
			return nil, end{}, false, err
		}
		if !ok {
			c.delim = c.delim[:0]
			return held, atEOF, true, nil
		}
		if i, cl := boundaryOf(p, bounds); i >= 0 {
			c.delim = append(c.delim[:0], p.data...)
			return held, end{idx: i, close: cl}, true, nil
		}
		p.data = append([]byte(nil), p.data...)
		held = append(held, p)
		size += len(p.data)
	}
	return held, end{}, false, nil
}

// copy7 copies content that must already be 7-bit up to a delimiter.
func (c *conv) copy7(bounds []string, cte string) (end, error) {
	for {
		p, ok, err := c.in.next()
		if err != nil || !ok {
			return atEOF, err
		}
		if e, ok := c.delimiter(p, bounds); ok {
			return e, nil
		}
		if !p.sevenBit() {
			return end{}, fmt.Errorf("%w: 8-bit or binary data in a part declared %s", ErrCannotConvert, cte)
		}
		c.out.Write(p.data)
	}
}

// encode writes the header with the new transfer encoding and the content
// — held pieces first, then the rest up to a delimiter — quoted-printable
// for text, base64 for the rest. The CRLF before a delimiter belongs to
// it (RFC 2046 §5.1.1), not to the content. stopped is the delimiter hold
// already reached.
func (c *conv) encode(h *header, bounds []string, mt string, held []piece, extra []string, stopped ...end) (end, error) {
	name := "base64"
	if strings.HasPrefix(mt, "text/") {
		name = "quoted-printable"
	}
	if err := c.writeHeader(h, name, extra...); err != nil {
		return end{}, err
	}
	c.changed = true
	var enc encoder
	if name == "base64" {
		enc = newB64(c.out)
	} else {
		enc = newQP(c.out)
	}
	pendingCRLF := false
	nl := []byte("\r\n")
	feed := func(p piece) {
		if pendingCRLF {
			enc.Write(nl)
		}
		pendingCRLF = p.crlf()
		enc.Write(p.text())
	}
	for _, p := range held {
		feed(p)
	}
	finish := func(e end) (end, error) {
		if e.idx < 0 {
			if pendingCRLF {
				enc.Write(nl)
			}
			return e, enc.Close(true)
		}
		if err := enc.Close(false); err != nil {
			return end{}, err
		}
		if pendingCRLF {
			c.out.WriteString("\r\n")
		}
		_, err := c.out.Write(c.delim)
		return e, err
	}
	if len(stopped) > 0 {
		return finish(stopped[0])
	}
	for {
		p, ok, err := c.in.next()
		if err != nil {
			return end{}, err
		}
		if !ok {
			return finish(atEOF)
		}
		if i, cl := boundaryOf(p, bounds); i >= 0 {
			c.delim = append(c.delim[:0], p.data...)
			return finish(end{idx: i, close: cl})
		}
		feed(p)
	}
}
