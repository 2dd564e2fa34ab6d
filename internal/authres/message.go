package authres

import (
	"bytes"
	"io"
	"mime"
	"net/mail"
	"strings"
)

// maxHeader bounds the header section kept for DMARC (the From field) and
// the DKIM-Signature tags; a longer header section leaves DMARC permerror.
const maxHeader = 256 << 10

// headerScan keeps the header section of the message being written, up to
// the empty line that ends it (RFC 5322 §2.1).
type headerScan struct {
	buf      []byte
	done     bool // the empty line was seen
	overflow bool // more than maxHeader before it
}

func (h *headerScan) feed(p []byte) {
	if h.done || h.overflow {
		return
	}
	from := max(0, len(h.buf)-3)
	h.buf = append(h.buf, p...)
	if bytes.HasPrefix(h.buf, []byte("\r\n")) {
		h.buf, h.done = h.buf[:0], true
		return
	}
	if i := bytes.Index(h.buf[from:], []byte("\r\n\r\n")); i >= 0 {
		h.buf, h.done = h.buf[:from+i+2], true
		return
	}
	if len(h.buf) > maxHeader {
		h.buf, h.overflow = nil, true
	}
}

// message is what DMARC and the DKIM results need from the header section.
type message struct {
	fromDomain string // lower case; "" with fromErr or fromNone
	fromErr    string // why the From domain is unusable (DMARC permerror)
	fromNone   bool   // no From field at all
	signatures []sigTags
}

// sigTags are the DKIM-Signature tags reported per signature.
type sigTags struct{ domain, selector, algorithm string }

// field is one unfolded header field.
type field struct{ name, value string }

// fields splits a header section into fields, unfolding continuation lines
// (RFC 5322 §2.2.3). Lines without a colon are skipped.
func fields(hdr []byte) []field {
	var out []field
	for _, line := range strings.SplitAfter(string(hdr), "\r\n") {
		if line == "" {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && len(out) > 0 {
			out[len(out)-1].value += line
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		out = append(out, field{strings.TrimRight(name, " \t"), value})
	}
	for i := range out {
		out[i].value = strings.TrimSpace(strings.ReplaceAll(out[i].value, "\r\n", ""))
	}
	return out
}

func (h *headerScan) parse() message {
	var m message
	if h.overflow {
		m.fromErr = "header section too large"
		return m
	}
	var froms []string
	for _, f := range fields(h.buf) {
		switch {
		case strings.EqualFold(f.name, "From"):
			froms = append(froms, f.value)
		case strings.EqualFold(f.name, "DKIM-Signature"):
			m.signatures = append(m.signatures, parseSigTags(f.value))
		}
	}
	switch len(froms) {
	case 0:
		m.fromNone = true
	case 1:
		m.fromDomain, m.fromErr = fromDomain(froms[0])
	default:
		// RFC 7489 §6.6.1: a message with several From fields is
		// typically rejected; it cannot be evaluated.
		m.fromErr = "more than one From field"
	}
	return m
}

// fromDomain returns the one domain of a From field value (RFC 7489
// §6.6.1): several mailboxes must share it.
func fromDomain(value string) (string, string) {
	p := mail.AddressParser{WordDecoder: &mime.WordDecoder{
		CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil },
	}}
	var domains []string
	if list, err := p.ParseList(value); err == nil {
		for _, a := range list {
			domains = append(domains, a.Address[strings.LastIndexByte(a.Address, '@')+1:])
		}
	} else if d := looseDomain(value); d != "" {
		domains = append(domains, d)
	}
	if len(domains) == 0 {
		return "", "no domain in From"
	}
	d := strings.ToLower(strings.TrimSuffix(domains[0], "."))
	for _, o := range domains[1:] {
		if !strings.EqualFold(strings.TrimSuffix(o, "."), d) {
			return "", "From has mailboxes in different domains"
		}
	}
	if !validDomain(d) {
		return "", "no valid domain in From"
	}
	return d, ""
}

// looseDomain finds the domain of an address net/mail does not parse
// (obsolete syntax, stray characters): the part after the last '@' of the
// last <…>, or of the whole value.
func looseDomain(value string) string {
	if i := strings.LastIndexByte(value, '<'); i >= 0 {
		value = value[i+1:]
		if j := strings.IndexByte(value, '>'); j >= 0 {
			value = value[:j]
		}
	}
	i := strings.LastIndexByte(value, '@')
	if i < 0 {
		return ""
	}
	return strings.TrimSpace(value[i+1:])
}

// validDomain accepts a dot-separated name of letters, digits, hyphens and
// underscores (and UTF-8, for EAI), labels 1-63 octets, 253 in all.
func validDomain(d string) bool {
	if d == "" || len(d) > 253 || !strings.Contains(d, ".") {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if c < 0x80 && !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// parseSigTags reads d=, s= and a= from a DKIM-Signature value (RFC 6376
// §3.5 tag-list); the signature itself is verified by go-msgauth.
func parseSigTags(value string) sigTags {
	var t sigTags
	for _, spec := range strings.Split(value, ";") {
		k, v, ok := strings.Cut(spec, "=")
		if !ok {
			continue
		}
		v = strings.Join(strings.Fields(v), "")
		switch strings.TrimSpace(k) {
		case "d":
			t.domain = strings.ToLower(strings.TrimSuffix(v, "."))
		case "s":
			t.selector = v
		case "a":
			t.algorithm = strings.ToLower(v)
		}
	}
	return t
}
