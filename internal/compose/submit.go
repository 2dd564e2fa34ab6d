package compose

// submit.go: what a submitter does to a message a local program hands
// over (the sendmail interface): read the recipients from the header (-t)
// and add the origination fields the message lacks.

import (
	"fmt"
	"net/mail"
	"strings"
	"time"
)

// Recipients returns the addresses of the To, Cc and Bcc fields (RFC 5322
// §3.6.3), in header order. A field that is not an RFC 5322 address list
// may still name local users without a domain, as cron and scripts write
// them ("To: root, admin", "To: alice, bob@example.org", "To: Alice
// <alice>"): those names are returned as they are, to be qualified by the
// caller, as every sendmail does (looseList). A field that is neither is
// an error naming it.
func (h *Header) Recipients() ([]string, error) {
	var out []string
	for _, f := range h.Fields {
		if !strings.EqualFold(f.Name, "To") && !strings.EqualFold(f.Name, "Cc") && !strings.EqualFold(f.Name, "Bcc") {
			continue
		}
		one := Header{Fields: []Field{f}}
		list, err := one.Addresses(f.Name)
		if err == nil {
			for _, a := range list {
				out = append(out, a.Address)
			}
			continue
		}
		names, lerr := looseList(f.Value())
		if lerr != nil {
			return nil, fmt.Errorf("%w (%v)", err, lerr)
		}
		out = append(out, names...)
	}
	return out, nil
}

// looseList reads an address list whose members may lack a domain: the
// value is split at the commas outside quoted strings, comments and angle
// brackets (a group's "name:" and ";" dropped); each member is an address
// net/mail accepts, or a local name alone or in angle brackets after a
// display name ("Alice <alice>"), returned without its display name.
func looseList(v string) ([]string, error) {
	list, err := looseAddrs(v)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = a.Address
	}
	return out, nil
}

// looseAddrs is looseList with the display names.
func looseAddrs(v string) ([]mail.Address, error) {
	var out []mail.Address
	for _, m := range splitMembers(v) {
		m = strings.TrimSpace(m)
		if m == "" {
			continue
		}
		if a, err := mail.ParseAddress(m); err == nil {
			out = append(out, *a)
			continue
		}
		name, display := m, ""
		if i := strings.LastIndexByte(m, '<'); i >= 0 && strings.HasSuffix(m, ">") {
			name, display = m[i+1:len(m)-1], strings.TrimSpace(m[:i])
		}
		if !isDotAtom(name) {
			return nil, fmt.Errorf("%q is neither an address nor a local name", m)
		}
		if len(display) >= 2 && display[0] == '"' && display[len(display)-1] == '"' {
			display = strings.ReplaceAll(display[1:len(display)-1], "\\\"", "\"")
		}
		out = append(out, mail.Address{Name: display, Address: name})
	}
	return out, nil
}

// QualifyRecipients rewrites the To, Cc and Bcc fields that name local
// users without a domain (see Recipients) as address lists with domain
// added to those names ("To: alice, bob@example.org" becomes "To:
// alice@DOMAIN, bob@example.org"), as sendmail and Postfix do for
// locally submitted mail: display names are kept, comments and group
// names dropped. A field that is an RFC 5322 address list, or neither, is
// left as written.
func (h *Header) QualifyRecipients(domain string) {
	for i, f := range h.Fields {
		if !strings.EqualFold(f.Name, "To") && !strings.EqualFold(f.Name, "Cc") && !strings.EqualFold(f.Name, "Bcc") {
			continue
		}
		one := Header{Fields: []Field{f}}
		if _, err := one.Addresses(f.Name); err == nil {
			continue
		}
		list, err := looseAddrs(f.Value())
		if err != nil || len(list) == 0 {
			continue
		}
		for j := range list {
			if !strings.Contains(list[j].Address, "@") {
				list[j].Address += "@" + domain
			}
		}
		h.Fields[i] = Field{Name: f.Name, Raw: FormatAddressField(f.Name, list)}
	}
}

// splitMembers splits an address list at its top-level commas and group
// delimiters; comments and the display name before a group's ':' are
// dropped.
func splitMembers(v string) []string {
	var out []string
	var cur strings.Builder
	quoted, escaped, angle, comment := false, false, false, 0
	for _, r := range v {
		switch {
		case escaped:
			escaped = false
			if comment > 0 {
				continue
			}
		case (quoted || comment > 0) && r == '\\':
			escaped = true
			if comment > 0 {
				continue
			}
		case quoted:
			quoted = r != '"'
		case comment > 0:
			if r == '(' {
				comment++
			} else if r == ')' {
				comment--
			}
			continue // comments are dropped
		case r == '"':
			quoted = true
		case r == '(':
			comment = 1
			cur.WriteByte(' ')
			continue
		case angle:
			angle = r != '>'
		case r == '<':
			angle = true
		case r == ':':
			cur.Reset() // a group's display name
			continue
		case r == ',' || r == ';':
			out = append(out, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteRune(r)
	}
	return append(out, cur.String())
}

// isDotAtom reports whether s is a dot-atom (RFC 5322 §3.2.3), the form of
// a local name without a domain.
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.':
		case strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// Origin is what Complete writes into a header that lacks it.
type Origin struct {
	From mail.Address // the author, for a missing From
	Date time.Time    // the origination date, for a missing Date
	// MessageIDDomain is the right side of a new Message-ID (see
	// NewMessageID), for a missing one.
	MessageIDDomain string
}

// Complete adds, in this order, the From, Date and Message-ID fields the
// header lacks and keeps those it has: RFC 5322 §3.6 requires From and
// Date (§3.6.4 asks for Message-ID), and RFC 6409 §8.1-8.3 lets a
// submission agent add them.
func (h *Header) Complete(o Origin) {
	if !h.Has("From") {
		h.Add(FormatAddressField("From", []mail.Address{o.From}))
	}
	if !h.Has("Date") {
		h.Add(FormatField("Date", FormatDate(o.Date)))
	}
	if !h.Has("Message-ID") {
		h.Add(FormatField("Message-ID", "<"+NewMessageID(o.MessageIDDomain)+">"))
	}
}

// SenderDomain is the domain a Message-ID is made in for a message from
// sender: the part after its last "@", or fallback when there is none
// (a null sender, or an address without a domain).
func SenderDomain(sender, fallback string) string {
	if d := domainOf(sender); d != "" {
		return d
	}
	return fallback
}
