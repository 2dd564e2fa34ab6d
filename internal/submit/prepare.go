package submit

// prepare.go: what sendmail does to the message a local program hands
// over, before it is sent (docs/send.md, "What sendmail does to the
// message").

import (
	"fmt"
	"net/mail"
	"strings"
	"time"

	"smtpkit/internal/client"
	"smtpkit/internal/compose"
	"smtpkit/internal/smtp"
)

// Request is what the sendmail command line asks for one message.
type Request struct {
	// From is the envelope sender (-f, -r): "" means Defaults.Sender,
	// "<>" the null reverse-path (RFC 5321 §4.5.5).
	From     string
	FullName string   // -F: the display name of an added From field
	Rcpts    []string // the arguments, each maybe a comma-separated list
	// HeaderRcpts (-t) adds the recipients of To, Cc and Bcc.
	HeaderRcpts bool
}

// Defaults are what the destination assumes.
type Defaults struct {
	Sender string // the envelope sender when Request.From is ""
	Domain string // qualifies recipients without a domain ("root")
}

// LoginDefaults are the defaults for a submission server one logs in to
// as user (RFC 6409 §4): a user that is an address is the sender, and its
// domain qualifies local names; else the sender is login@host and host
// qualifies them.
func LoginDefaults(user, login, host string) Defaults {
	if i := strings.LastIndexByte(user, '@'); i >= 0 {
		return Defaults{Sender: user, Domain: user[i+1:]}
	}
	return Defaults{Sender: login + "@" + host, Domain: host}
}

// ArgError is a request that cannot be sent as asked: a sender that is
// not an address, or no recipients. The other errors of Prepare are about
// the message.
type ArgError string

func (e ArgError) Error() string { return string(e) }

// Prepare turns a message read from a local program (CRLF text, see
// compose.ReadInput) into the envelope and the message to send:
// recipients from the arguments and, with -t, from To, Cc and Bcc; the Bcc
// field removed; local names in To and Cc qualified with d.Domain
// (compose.Header.QualifyRecipients); From (with the full name), Date (now) and Message-ID
// added when missing (compose.Header.Complete).
func Prepare(input []byte, r Request, d Defaults, now time.Time) (client.Envelope, []byte, error) {
	env := client.Envelope{From: r.From}
	switch env.From {
	case "":
		env.From = d.Sender
	case "<>":
		env.From = "" // the null reverse-path (RFC 5321 §4.5.5)
	}
	if env.From != "" {
		a, err := smtp.ParseAddress(env.From)
		if err != nil {
			return env, nil, ArgError(fmt.Sprintf("sender %q: %v", env.From, err))
		}
		env.From = a.String()
	}
	h, body := compose.Split(input)
	rcpts, err := recipients(r, &h, d.Domain)
	if err != nil {
		return env, nil, err
	}
	env.To = rcpts
	// RFC 5322 §3.6.3: Bcc recipients are not shown to the others.
	h.Del("Bcc")
	// Local names in To and Cc get the domain in the header too, as in
	// the envelope, so that replies reach them.
	h.QualifyRecipients(d.Domain)
	author := env.From
	if author == "" {
		author = d.Sender
	}
	h.Complete(compose.Origin{
		From:            mail.Address{Name: r.FullName, Address: author},
		Date:            now,
		MessageIDDomain: compose.SenderDomain(env.From, d.Domain),
	})
	return env, compose.Join(h, body), nil
}

// recipients collects the recipients: the arguments (each may be a
// comma-separated list), then with -t those of To, Cc and Bcc; names
// without a domain get domain (Postmaster stays as it is, RFC 5321
// §4.5.1); duplicates are dropped, case-insensitively.
func recipients(r Request, h *compose.Header, domain string) ([]string, error) {
	var addrs []string
	for _, arg := range r.Rcpts {
		for _, s := range strings.Split(arg, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if a, err := mail.ParseAddress(s); err == nil {
				s = a.Address
			}
			addrs = append(addrs, s)
		}
	}
	if r.HeaderRcpts {
		list, err := h.Recipients()
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, list...)
	}
	var out []string
	seen := map[string]bool{}
	for _, s := range addrs {
		if !strings.Contains(s, "@") && !strings.EqualFold(s, "postmaster") {
			s += "@" + domain
		}
		a, err := smtp.ParseAddress(s)
		if err != nil {
			return nil, fmt.Errorf("recipient %q: %v", s, err)
		}
		if key := strings.ToLower(a.String()); !seen[key] {
			seen[key] = true
			out = append(out, a.String())
		}
	}
	if len(out) == 0 {
		return nil, ArgError("no recipients: give them as arguments or use -t with To/Cc/Bcc")
	}
	return out, nil
}
