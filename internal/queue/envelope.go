package queue

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"smtpkit/internal/smtp"
)

// State is where one recipient of a queued message stands.
type State string

const (
	Queued    State = "queued"    // not yet attempted
	Deferred  State = "deferred"  // failed temporarily; retried at its next attempt time
	Delivered State = "delivered" // accepted by the next hop (final)
	Failed    State = "failed"    // failed permanently or expired (final once the bounce is handed off)
)

// Meta is what the receiving session knew about a message besides its
// envelope.
type Meta struct {
	SMTPUTF8 bool `json:"smtputf8,omitempty"` // the message needs SMTPUTF8 (RFC 6531) on the next hop
	EightBit bool `json:"eightbit,omitempty"` // BODY=8BITMIME (RFC 6152)
	// Binary: the message was received with BODY=BINARYMIME (RFC 3030 §3)
	// and is stored octet for octet; it goes on with BDAT BODY=BINARYMIME,
	// or converted where the next hop lacks BINARYMIME. Env files without
	// the field load as text messages.
	Binary bool `json:"binary,omitempty"`
	// RequireTLS: the message was received with REQUIRETLS (RFC 8689 §4.2)
	// and keeps that tag for every later attempt, across restarts.
	RequireTLS   bool   `json:"requiretls,omitempty"`
	ReceivedFrom string `json:"received_from,omitempty"` // the client's address, for logs and `queue show`
	AuthUser     string `json:"auth_user,omitempty"`     // the authenticated submitter, if any
	// Relay is why the message was accepted for other domains, for logs
	// and `queue show`: "auth" (authenticated submission), "trusted" (a
	// client in the trusted networks) or "forward" (forwarding through an
	// alias); "" for the queue's own mail (bounces, reports).
	Relay string `json:"relay,omitempty"`
	// Prepend are header fields (CRLF lines) put before the stored bytes
	// on every remote attempt: the DKIM-Signature fields made once, when
	// the message was accepted (Writer.Prepend). Size counts them.
	Prepend string `json:"prepend,omitempty"`
	// Ret and EnvID are MAIL's RET (smtp.RetFull, smtp.RetHdrs or "") and
	// decoded ENVID (RFC 3461 §4.3, §4.4): how much of the message our
	// DSNs return, and the Original-Envelope-Id they carry.
	Ret   string `json:"ret,omitempty"`
	EnvID string `json:"envid,omitempty"`
}

// envelopeVersion is the format version written into env files.
const envelopeVersion = 1

// envelope is the content of env/<id>.json: everything about a message but
// its bytes. It is rewritten atomically on every state change.
//
// The first fields are the file's index prefix (readPrefix in index.go):
// Open learns when a message is next due from them without decoding the
// rest, so they stay first and in this order.
type envelope struct {
	Version int `json:"v"`
	// Due is the earliest next attempt of a pending recipient, written by
	// marshal (zero when none is pending). Files written before it existed
	// lack it and are decoded whole at Open.
	Due     time.Time `json:"due,omitzero"`
	Held    bool      `json:"held,omitempty"`
	Warned  bool      `json:"warned,omitempty"` // the delay warning was handed off
	Arrival time.Time `json:"arrival"`
	Size    int64     `json:"size"`
	// Counts are the recipients by state (queued, deferred, delivered,
	// failed), written by marshal: what the index keeps for the queue's
	// gauges (Queue.Counts) without reading the rest.
	Counts   [numStates]int `json:"counts"`
	ID       string         `json:"id"`
	From     string         `json:"from"` // "" is the null reverse-path
	Meta     Meta           `json:"meta"`
	Rcpts    []*rcpt        `json:"rcpts"`
	bounceAt time.Time      // next try to hand off a pending bounce (not persisted: retried at once after a restart)
}

// rcpt is one recipient's state.
type rcpt struct {
	Addr   string `json:"addr"`
	Domain string `json:"domain"` // lower-cased ASCII letters; the grouping key
	// Local marks a mailbox of ours, delivered by Options.Local (a Maildir
	// delivery that failed while the message was received, see AddLocal).
	Local    bool      `json:"local,omitempty"`
	State    State     `json:"state"`
	Attempts int       `json:"attempts,omitempty"`
	Next     time.Time `json:"next,omitzero"` // next attempt, for Queued and Deferred
	Last     time.Time `json:"last,omitzero"` // last attempt
	// Status, RemoteMTA, Reply, Diagnostic and DiagType describe the last
	// attempt's outcome, in DSN terms (RFC 3464 §2.3): the enhanced status;
	// the server that said Reply, when one did (Result.Reply); otherwise
	// smtpkit's own diagnostic and its type. Envelopes written before
	// Reply existed hold a server's reply in Diagnostic, type "smtp".
	Status     string      `json:"status,omitempty"`
	RemoteMTA  string      `json:"remote_mta,omitempty"`
	Reply      *savedReply `json:"reply,omitempty"`
	Diagnostic string      `json:"diagnostic,omitempty"`
	DiagType   string      `json:"diag_type,omitempty"`
	Detail     string      `json:"detail,omitempty"` // the attempt in one line (Result.Detail), for `queue show`
	// MaybeDelivered is set when an attempt lost the connection after the
	// end of data (Result.PossibleDuplicate): the next hop may have taken
	// the message, and later attempts are logged as possible duplicates.
	MaybeDelivered bool `json:"maybe_delivered,omitempty"`
	// Notified is set once the bounce for a Failed recipient was handed off
	// (or was not needed: null sender).
	Notified bool `json:"notified,omitempty"`
	// Notify is RCPT's NOTIFY (RFC 3461 §4.1) as its value ("" absent:
	// failures and delays are reported); ORCPT its original recipient
	// (§4.2), reported as Original-Recipient. Env files written before
	// them load with neither.
	Notify string      `json:"notify,omitempty"`
	ORCPT  *smtp.ORCPT `json:"orcpt,omitempty"`
	// Success is the success notice owed for a Delivered recipient whose
	// NOTIFY has SUCCESS (RFC 3461 §6.2.1): "delivered" (into a Maildir of
	// ours) or "relayed" (to a next hop without DSN); SuccessSent is set
	// once it was handed off. The message stays queued until then.
	Success     string `json:"success,omitempty"`
	SuccessSent bool   `json:"success_sent,omitempty"`
}

// rcptDSN is the NOTIFY and ORCPT of each of addrs, for an Attempt; nil
// when none has any.
func (m *message) rcptDSN(addrs []string) []smtp.RcptDSN {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.env.rcptDSN(addrs)
}

// rcptDSN is the NOTIFY and ORCPT of each of addrs; nil when none has any.
func (e *envelope) rcptDSN(addrs []string) []smtp.RcptDSN {
	var out []smtp.RcptDSN
	for i, a := range addrs {
		for _, r := range e.Rcpts {
			if r.Addr != a || (r.Notify == "" && r.ORCPT == nil) {
				continue
			}
			if out == nil {
				out = make([]smtp.RcptDSN, len(addrs))
			}
			out[i].Notify = r.notify()
			if r.ORCPT != nil {
				out[i].ORCPT = *r.ORCPT
			}
			break
		}
	}
	return out
}

// notify is r's NOTIFY set; a value that no longer parses (a hand-edited
// file) counts as absent.
func (r *rcpt) notify() smtp.Notify {
	if r.Notify == "" {
		return 0
	}
	n, err := smtp.ParseNotify(r.Notify)
	if err != nil {
		return 0
	}
	return n
}

// savedReply is a server's reply as an envelope keeps it: its text in
// one bounded line (oneLine).
type savedReply struct {
	Code     int    `json:"code"`
	Enhanced string `json:"enhanced,omitempty"`
	Text     string `json:"text,omitempty"`
}

func saveReply(rep smtp.Reply) *savedReply {
	return &savedReply{Code: rep.Code, Enhanced: string(rep.Enhanced), Text: oneLine(rep.Text())}
}

func (r *savedReply) reply() smtp.Reply {
	return smtp.R(r.Code, smtp.Enhanced(r.Enhanced), r.Text)
}

// diagnostic is the last outcome in one line, for logs and `queue show`:
// the server's reply, or smtpkit's own diagnostic.
func (r *rcpt) diagnostic() string {
	if r.Reply != nil {
		return formatReply(r.Reply.reply())
	}
	return r.Diagnostic
}

// group is the key deliveries are grouped, limited and marked busy by:
// the domain, local recipients apart from remote ones.
func (r *rcpt) group() string {
	if r.Local {
		return "local " + r.Domain
	}
	return r.Domain
}

// pending reports whether r still needs delivery attempts.
func (r *rcpt) pending() bool { return r.State == Queued || r.State == Deferred }

// final reports whether nothing remains to be done for r.
func (r *rcpt) final() bool {
	return (r.State == Delivered && (r.Success == "" || r.SuccessSent)) || (r.State == Failed && r.Notified)
}

// done reports whether every recipient is final: the message can go.
func (e *envelope) done() bool {
	for _, r := range e.Rcpts {
		if !r.final() {
			return false
		}
	}
	return true
}

// marshal encodes e for its env file, with Due and Counts brought up to
// date.
func (e *envelope) marshal() ([]byte, error) {
	e.Due, e.Counts = e.nextAttempt(), e.countStates()
	return json.MarshalIndent(e, "", "\t")
}

// numStates is the number of recipient states; stateIndex orders them as
// envelope.Counts does.
const numStates = 4

func stateIndex(s State) int {
	switch s {
	case Queued:
		return 0
	case Deferred:
		return 1
	case Delivered:
		return 2
	}
	return 3
}

// States are the recipient states in the order of Counts.
var States = [numStates]State{Queued, Deferred, Delivered, Failed}

// countStates counts e's recipients by state.
func (e *envelope) countStates() [numStates]int {
	var c [numStates]int
	for _, r := range e.Rcpts {
		c[stateIndex(r.State)]++
	}
	return c
}

// nextAttempt is the earliest Next of a pending recipient, zero when no
// recipient is pending.
func (e *envelope) nextAttempt() time.Time {
	var t time.Time
	for _, r := range e.Rcpts {
		if r.pending() && (t.IsZero() || r.Next.Before(t)) {
			t = r.Next
		}
	}
	return t
}

// parseEnvelope decodes and checks an env file.
func parseEnvelope(data []byte, id string) (*envelope, error) {
	var e envelope
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, err
	}
	switch {
	case e.Version != envelopeVersion:
		return nil, fmt.Errorf("unknown envelope version %d", e.Version)
	case e.ID != id:
		return nil, fmt.Errorf("envelope names message %q", e.ID)
	case len(e.Rcpts) == 0:
		return nil, errors.New("envelope without recipients")
	}
	for _, r := range e.Rcpts {
		if r == nil || r.Addr == "" {
			return nil, errors.New("envelope with an empty recipient")
		}
		switch r.State {
		case Queued, Deferred, Delivered, Failed:
		default:
			return nil, fmt.Errorf("recipient %q in unknown state %q", r.Addr, r.State)
		}
	}
	return &e, nil
}

// domainOf returns the domain of a recipient address, for grouping:
// everything after the last '@', ASCII letters lower-cased (RFC 5321 §2.4).
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	b := []byte(addr[i+1:])
	for j, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[j] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// message is a message of the active set in memory: its envelope and the
// scheduler's bookkeeping. mu guards everything but items, and is held
// while the env file is rewritten so that rewrites of one message never
// interleave. Lock order: never take a message's mu while holding
// Queue.mu (the one exception, a message not yet in the table, cannot
// block: see activate).
type message struct {
	id        string // env.ID, immutable
	mu        sync.Mutex
	env       *envelope
	busy      map[string]bool // groups (rcpt.group) with a delivery in flight
	notifying bool            // a bounce hand-off is in progress
	prepared  bool            // committed by Writer.Prepare, not yet published: not scheduled
	deleted   bool            // removed by Delete; in-flight results are dropped
	// parked is set when the message left the active set for the index
	// (park): a holder of this pointer looks it up again.
	parked bool

	items map[string]*item // its wake-ups by group (noteGroup: the DSN); guarded by Queue.mu
}

func newMessage(e *envelope) *message {
	return &message{id: e.ID, env: e, busy: make(map[string]bool)}
}
