package milter

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	gomilter "github.com/emersion/go-milter"
)

// Edits are the modifications a milter asked for at the end of a message
// (SMFIR_ADDHEADER, SMFIR_INSHEADER, SMFIR_CHGHEADER, SMFIR_CHGFROM,
// SMFIR_ADDRCPT, SMFIR_DELRCPT, SMFIR_REPLBODY, SMFIR_QUARANTINE).
type Edits struct {
	// Header are the header changes, in the order given.
	Header []HeaderEdit
	// From is the new envelope sender when ChangeFrom is set ("" is the
	// null sender).
	From       string
	ChangeFrom bool
	// AddRcpt and DelRcpt are envelope recipients to add and remove.
	AddRcpt, DelRcpt []string
	// Body replaces the body when ReplaceBody is set (the SMFIR_REPLBODY
	// chunks joined, line ends made CRLF).
	Body        []byte
	ReplaceBody bool
	// Quarantine is the milter's reason when it asked for the message to
	// be quarantined.
	Quarantine string
}

// Envelope reports whether the edits change the envelope.
func (e *Edits) Envelope() bool {
	return e != nil && (e.ChangeFrom || len(e.AddRcpt)+len(e.DelRcpt) > 0)
}

// HeaderOp is the kind of a header change.
type HeaderOp int

const (
	// AddHeader appends the field at the end of the header.
	AddHeader HeaderOp = iota
	// InsertHeader inserts the field at Index among all fields (0 = the
	// top).
	InsertHeader
	// ChangeHeader replaces the Index-th (1-based) field named Name;
	// an empty Value deletes it. A change of a field that is not there
	// adds it, as Sendmail does.
	ChangeHeader
)

// HeaderEdit is one header change.
type HeaderEdit struct {
	Op    HeaderOp
	Index int
	Name  string
	Value string
}

// maxBody bounds a replacement body held in memory.
const maxBody = 64 << 20

// edits converts go-milter's modifications.
func edits(mods []gomilter.ModifyAction) (*Edits, error) {
	e := &Edits{}
	var body bytes.Buffer
	for _, m := range mods {
		switch m.Code {
		case gomilter.ActAddHeader, gomilter.ActInsertHeader, gomilter.ActChangeHeader:
			if !validFieldName(m.HeaderName) {
				return nil, fmt.Errorf("milter: header change with a bad field name %q", m.HeaderName)
			}
			op := map[gomilter.ModifyActCode]HeaderOp{gomilter.ActAddHeader: AddHeader,
				gomilter.ActInsertHeader: InsertHeader, gomilter.ActChangeHeader: ChangeHeader}[m.Code]
			e.Header = append(e.Header, HeaderEdit{Op: op, Index: int(m.HeaderIndex), Name: m.HeaderName, Value: m.HeaderValue})
		case gomilter.ActChangeFrom:
			e.From, e.ChangeFrom = unbracket(m.From), true
		case gomilter.ActAddRcpt:
			e.AddRcpt = append(e.AddRcpt, unbracket(m.Rcpt))
		case gomilter.ActDelRcpt:
			e.DelRcpt = append(e.DelRcpt, unbracket(m.Rcpt))
		case gomilter.ActReplBody:
			if body.Len()+len(m.Body) > maxBody {
				return nil, errors.New("milter: replacement body too large")
			}
			body.Write(m.Body)
			e.ReplaceBody = true
		case gomilter.ActQuarantine:
			e.Quarantine = m.Reason
			if e.Quarantine == "" {
				e.Quarantine = "quarantined"
			}
		}
	}
	if e.ReplaceBody {
		e.Body = crlf(body.Bytes())
	}
	return e, nil
}

// Apply writes the message read from r to w with the edits made: the
// header changes, in order, then the body, replaced or as it was. A nil
// Edits copies the message.
func (e *Edits) Apply(r io.Reader, w io.Writer) error {
	if e == nil || len(e.Header) == 0 && !e.ReplaceBody {
		_, err := io.Copy(w, r)
		return err
	}
	br := bufio.NewReaderSize(r, 64<<10)
	fields, err := readHeader(br)
	if err != nil {
		return err
	}
	for _, h := range e.Header {
		fields = h.apply(fields)
	}
	bw := bufio.NewWriterSize(w, 32<<10)
	for _, f := range fields {
		bw.Write(f.raw)
	}
	bw.WriteString("\r\n")
	if e.ReplaceBody {
		bw.Write(e.Body)
	} else if _, err := io.Copy(bw, br); err != nil {
		return err
	}
	return bw.Flush()
}

// apply makes one change to fields.
func (h HeaderEdit) apply(fields []field) []field {
	f := field{name: h.Name, raw: formatField(h.Name, h.Value)}
	switch h.Op {
	case InsertHeader:
		i := min(max(h.Index, 0), len(fields))
		return append(fields[:i], append([]field{f}, fields[i:]...)...)
	case ChangeHeader:
		n := 0
		for i := range fields {
			if !strings.EqualFold(fields[i].name, h.Name) {
				continue
			}
			if n++; n == max(h.Index, 1) {
				if h.Value == "" {
					return append(fields[:i], fields[i+1:]...)
				}
				fields[i] = f
				return fields
			}
		}
		if h.Value == "" {
			return fields
		}
	}
	return append(fields, f)
}

// formatField is "Name: value" CRLF with the value's line breaks (a
// milter may fold with LF or CRLF) made CRLF followed by white space
// (RFC 5322 §2.2.3), empty lines and NULs dropped: a field the milter
// gives cannot end the header or smuggle a line.
func formatField(name, value string) []byte {
	value = strings.ReplaceAll(value, "\x00", "")
	var b bytes.Buffer
	b.WriteString(name)
	b.WriteString(":")
	lines := strings.FieldsFunc(value, func(r rune) bool { return r == '\r' || r == '\n' })
	n := 0
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if n++; n == 1 {
			b.WriteString(" ")
		} else {
			b.WriteString("\r\n")
			if l[0] != ' ' && l[0] != '\t' {
				b.WriteString("\t")
			}
		}
		b.WriteString(l)
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// crlf makes every line end of b CRLF: a bare LF or bare CR becomes
// CRLF (CRLF is law in what we store).
func crlf(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/32)
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\r' && i+1 < len(b) && b[i+1] == '\n':
			out = append(out, '\r', '\n')
			i++
		case c == '\r' || c == '\n':
			out = append(out, '\r', '\n')
		case c == 0:
		default:
			out = append(out, c)
		}
	}
	return out
}

// unbracket is an address without its angle brackets: milters send
// "<a@b>" or "a@b".
func unbracket(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") {
		s = s[1 : len(s)-1]
	}
	return s
}
