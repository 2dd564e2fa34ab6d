package inbound

import (
	"context"
	"io"
	"strings"

	"smtpkit/internal/queue"
	"smtpkit/internal/server"
	"smtpkit/internal/smtp"
)

// Relay takes messages for remote recipients (the outbound queue, see
// QueueRelay).
type Relay interface {
	// Begin opens a queue entry for env; the message bytes follow, then
	// Prepare or Abort.
	Begin(ctx context.Context, env queue.Envelope) (RelayWriter, error)
}

// RelayWriter is one queue entry being written (queue.MessageWriter). Its two
// steps let the fan-out of a message to Maildirs and the queue be atomic
// as the client sees it (see writer.Commit).
type RelayWriter interface {
	io.Writer
	// Prepend adds header fields (the DKIM-Signature) that every
	// delivery attempt sends before the message (before Prepare).
	Prepend(fields string) error
	// Prepare makes the entry durable without releasing it for delivery.
	Prepare() (id string, err error)
	// AddLocal adds local mailboxes to a prepared entry, durably, for the
	// queue to deliver into their Maildirs later.
	AddLocal(boxes []string) error
	// Publish releases a prepared entry for delivery.
	Publish()
	// Withdraw takes a prepared entry back, durably.
	Withdraw() error
	// Abort discards an entry (before Prepare).
	Abort()
}

// QueueRelay is the outbound queue as a Relay.
func QueueRelay(q queue.Backend) Relay { return queueRelay{q} }

type queueRelay struct{ q queue.Backend }

func (r queueRelay) Begin(_ context.Context, env queue.Envelope) (RelayWriter, error) {
	w, err := r.q.Begin(env)
	if err != nil {
		return nil, smtp.Wrap(errQueueUnavailable, err)
	}
	return w, nil
}

// queueEnvelope is the queue's envelope for the remote recipients to of
// env, with what the session knew.
func queueEnvelope(env *server.Envelope, to []smtp.Address) queue.Envelope {
	meta := queue.Meta{SMTPUTF8: env.SMTPUTF8, EightBit: env.Body == smtp.Body8BitMIME, Binary: env.Body == smtp.BodyBinaryMIME,
		RequireTLS: env.RequireTLS,
		Relay:      relayKind(env.Session)}
	if s := env.Session; s != nil {
		meta.AuthUser = s.AuthUser
		if s.Remote != nil {
			meta.ReceivedFrom = s.Remote.String()
		}
	}
	meta.Ret, meta.EnvID = env.Ret, env.EnvID
	return queue.Envelope{From: env.From, To: to, DSN: rcptDSN(env, to), LocalDSN: localDSN(env), Meta: meta}
}

// rcptDSN is the NOTIFY and ORCPT (RFC 3461 §4.1, §4.2) of each of to, as
// RCPT gave them for the same address; an address RCPT did not name (an
// alias's target) has none, so it gets the default notices.
func rcptDSN(env *server.Envelope, to []smtp.Address) []smtp.RcptDSN {
	if len(env.DSN) == 0 {
		return nil
	}
	given := make(map[string]smtp.RcptDSN, len(env.DSN))
	for i, r := range env.Recipients {
		if i < len(env.DSN) {
			given[strings.ToLower(r.String())] = env.DSN[i]
		}
	}
	out := make([]smtp.RcptDSN, len(to))
	for i, a := range to {
		out[i] = given[strings.ToLower(a.String())]
	}
	return out
}

// localDSN is env's NOTIFY and ORCPT by address, for the local mailboxes
// the queue entry may take over (queue.Envelope.LocalDSN).
func localDSN(env *server.Envelope) map[string]smtp.RcptDSN {
	if len(env.DSN) == 0 {
		return nil
	}
	out := make(map[string]smtp.RcptDSN, len(env.DSN))
	for i, r := range env.Recipients {
		if i < len(env.DSN) && env.DSN[i] != (smtp.RcptDSN{}) {
			out[r.String()] = env.DSN[i]
			out[strings.ToLower(r.String())] = env.DSN[i]
		}
	}
	return out
}

// splitSuccess splits the local mailboxes boxes into those stored at once
// and those whose RCPT asked for NOTIFY=SUCCESS (RFC 3461 §4.1), which go
// to the queue's local courier when there is a queue: the Maildir
// delivery and its "delivered" notice (§6.2.1) then are one durable job,
// a moment after the 250. A mailbox is matched to RCPT by address
// (case-insensitively); one reached through an alias keeps the defaults.
func splitSuccess(env *server.Envelope, boxes []string, haveQueue bool) (direct, viaQueue []string) {
	if !haveQueue || len(env.DSN) == 0 || env.From.IsNull() {
		return boxes, nil
	}
	want := localDSN(env)
	for _, box := range boxes {
		if want[strings.ToLower(box)].Notify.Success() {
			viaQueue = append(viaQueue, box)
		} else {
			direct = append(direct, box)
		}
	}
	return direct, viaQueue
}

// splitHandoff moves the mailboxes of direct that Options.Handoff names
// (delivered by LMTP) to viaQueue: their delivery is the queue's.
func (b *Backend) splitHandoff(direct, viaQueue []string) ([]string, []string) {
	if b.opts.Handoff == nil {
		return direct, viaQueue
	}
	var kept []string
	for _, box := range direct {
		if b.opts.Handoff(box) {
			viaQueue = append(viaQueue, box)
		} else {
			kept = append(kept, box)
		}
	}
	return kept, viaQueue
}
