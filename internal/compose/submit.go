package compose

// submit.go: what a submitter does to a message a local program hands
// over (the sendmail interface): read the recipients from the header (-t)
// and add the origination fields the message lacks.

import (
	"net/mail"
	"strings"
	"time"
)

// Recipients returns the addresses of the To, Cc and Bcc fields (RFC 5322
// §3.6.3), in header order. A field that is not an RFC 5322 address list
// may still be a list of local names ("To: root, admin"), as cron writes
// them: those names are returned as they are, to be qualified by the
// caller. A field that is neither is an error naming it.
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
		for _, name := range strings.Split(f.Value(), ",") {
			name = strings.TrimSpace(name)
			if name == "" || strings.ContainsAny(name, "@<>\" ()[]:;") {
				return nil, err
			}
			out = append(out, name)
		}
	}
	return out, nil
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
