package inbound

import (
	"reflect"
	"strings"
	"testing"

	"smtpkit/internal/server"
	"smtpkit/internal/smtp"
)

// TestQueueEnvelopeCarriesDSN: RET, ENVID and each recipient's NOTIFY and
// ORCPT (RFC 3461 §4) reach the queue entry, matched by address; a
// recipient RCPT did not name (an alias's target) has none.
func TestQueueEnvelopeCarriesDSN(t *testing.T) {
	succ := smtp.RcptDSN{Notify: smtp.NotifySuccess, ORCPT: smtp.ORCPT{Type: "rfc822", Addr: "o@x"}}
	env := &server.Envelope{
		From: addr("alice@example.com"), Ret: smtp.RetHdrs, EnvID: "E1",
		Recipients: []smtp.Address{addr("a@far.example"), addr("B@far.example")},
		DSN:        []smtp.RcptDSN{{Notify: smtp.NotifyNever}, succ},
	}
	q := queueEnvelope(env, []smtp.Address{addr("b@far.example"), addr("target@else.example"), addr("a@far.example")})
	want := []smtp.RcptDSN{succ, {}, {Notify: smtp.NotifyNever}}
	if q.Meta.Ret != smtp.RetHdrs || q.Meta.EnvID != "E1" || !reflect.DeepEqual(q.DSN, want) {
		t.Errorf("queue envelope Ret %q EnvID %q DSN %+v", q.Meta.Ret, q.Meta.EnvID, q.DSN)
	}
	if q := queueEnvelope(&server.Envelope{Recipients: env.Recipients}, env.Recipients); q.DSN != nil {
		t.Errorf("DSN %+v without parameters", q.DSN)
	}
}

// TestSplitSuccess: a local mailbox whose RCPT asked NOTIFY=SUCCESS goes
// to the queue (its local courier sends the "delivered" notice), unless
// there is no queue or the sender is null; the others are stored at once.
func TestSplitSuccess(t *testing.T) {
	env := &server.Envelope{From: addr("alice@example.com"),
		Recipients: []smtp.Address{addr("Bob@example.com"), addr("carol@example.com"), addr("dave@example.com")},
		DSN:        []smtp.RcptDSN{{Notify: smtp.NotifySuccess}, {Notify: smtp.NotifyFailure}, {}}}
	boxes := []string{"bob@example.com", "carol@example.com", "dave@example.com"}
	for _, tt := range []struct {
		name             string
		env              *server.Envelope
		queue            bool
		direct, viaQueue []string
	}{
		{"SUCCESS via the queue", env, true, boxes[1:], boxes[:1]},
		{"no queue", env, false, boxes, nil},
		{"null sender", &server.Envelope{Recipients: env.Recipients, DSN: env.DSN}, true, boxes, nil},
		{"no DSN parameters", &server.Envelope{From: env.From, Recipients: env.Recipients}, true, boxes, nil},
	} {
		d, q := splitSuccess(tt.env, boxes, tt.queue)
		if !reflect.DeepEqual(d, tt.direct) || !reflect.DeepEqual(q, tt.viaQueue) {
			t.Errorf("%s: direct %v via queue %v", tt.name, d, q)
		}
	}
}

// TestSplitHandoff: mailboxes delivered by LMTP (Options.Handoff) leave
// the Maildir fan-out for the queue, after the NOTIFY=SUCCESS ones.
func TestSplitHandoff(t *testing.T) {
	lmtp := func(box string) bool { return strings.HasSuffix(box, "@lmtp.example") }
	for _, tt := range []struct {
		name                   string
		handoff                func(string) bool
		direct, viaQueue       []string
		wantDirect, wantQueued []string
	}{
		{"no handoff", nil, []string{"a@lmtp.example"}, nil, []string{"a@lmtp.example"}, nil},
		{"lmtp moved", lmtp, []string{"a@lmtp.example", "b@disk.example", "c@lmtp.example"}, []string{"s@disk.example"},
			[]string{"b@disk.example"}, []string{"s@disk.example", "a@lmtp.example", "c@lmtp.example"}},
		{"all maildir", lmtp, []string{"b@disk.example"}, nil, []string{"b@disk.example"}, nil},
	} {
		b := &Backend{opts: Options{Handoff: tt.handoff}}
		d, q := b.splitHandoff(tt.direct, tt.viaQueue)
		if !reflect.DeepEqual(d, tt.wantDirect) || !reflect.DeepEqual(q, tt.wantQueued) {
			t.Errorf("%s: direct %v via queue %v", tt.name, d, q)
		}
	}
}
