package local

import (
	"strings"

	"smtpkit/internal/smtp"
)

// Destinations is where a message's recipients go.
type Destinations struct {
	// Mailboxes are the local mailboxes (canonical addresses), each once,
	// in the order the recipients and their aliases name them.
	Mailboxes []string
	// Remote are the recipients in other domains. Local delivery cannot
	// store them; they go to the queue.
	Remote []smtp.Address
	// Forwarded are the members of local aliases that are outside the
	// local domains: they go to the queue too, and their copy's sender
	// may be rewritten (SRS, internal/inbound).
	Forwarded []smtp.Address
}

// Mailboxes returns what the local address rcpt delivers to (accounts, a
// +tag's account, an alias's members, postmaster), or ErrNoSuchUser.
func (s *Store) Mailboxes(rcpt smtp.Address) ([]string, error) {
	boxes, ok := s.opts.Accounts.Resolve(rcpt.String())
	if !ok {
		return nil, ErrNoSuchUser
	}
	return boxes, nil
}

// Resolve splits rcpts into local mailboxes and remote addresses. A local
// recipient that resolves to nothing fails the whole message with
// ErrNoSuchUser (the server checked each at RCPT; an account removed since
// is a reason to refuse, not to drop).
func (s *Store) Resolve(rcpts []smtp.Address) (Destinations, error) {
	var d Destinations
	seen := map[string]bool{}
	for _, rcpt := range rcpts {
		if !s.IsLocal(rcpt.Domain) {
			d.Remote = append(d.Remote, rcpt)
			continue
		}
		boxes, err := s.Mailboxes(rcpt)
		if err != nil {
			return Destinations{}, err
		}
		for _, box := range boxes {
			if seen[box] {
				continue
			}
			seen[box] = true
			at := strings.LastIndexByte(box, '@')
			if at >= 0 && !s.IsLocal(box[at+1:]) {
				// An alias pointing outside: forwarded through the queue.
				d.Forwarded = append(d.Forwarded, smtp.Address{Local: box[:at], Domain: box[at+1:]})
				continue
			}
			d.Mailboxes = append(d.Mailboxes, box)
		}
	}
	return d, nil
}
