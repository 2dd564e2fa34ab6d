package queue

// shared.go: what another back-end (internal/pgqueue) shares with the
// files, so that both keep a message's state the same way and decide
// retries, expiry and DSNs with the same code: the record (the content of
// an env file), the rules that apply a Courier's Result to it, and the
// DSN it owes.

import (
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"time"

	"smtpkit/internal/smtp"
)

// Record is a queued message's state: everything but its bytes, with each
// recipient's state (the content of env/<id>.json).
type Record = envelope

// RcptRecord is one recipient's state in a Record.
type RcptRecord = rcpt

// NewID returns a new message id (ids sort by arrival).
func NewID(now time.Time) string { return newID(now) }

// NewRecord is the record of message id arriving at now for env, by
// Begin's rules: duplicates dropped, a domain required, each recipient's
// DSN parameters kept, env.LocalTo marked local.
func NewRecord(id string, env Envelope, now time.Time) (*Record, error) {
	to := make([]string, len(env.To))
	for i, a := range env.To {
		to[i] = a.String()
	}
	e, err := newEnvelope(id, env.From.String(), append(to, env.LocalTo...), env.Meta, now)
	if err != nil {
		return nil, err
	}
	e.setDSN(to, env.DSN)
	local := make(map[string]bool, len(env.LocalTo))
	for _, a := range env.LocalTo {
		local[a] = true
	}
	for _, r := range e.Rcpts {
		if local[r.Addr] {
			r.Local = true
			setLocalDSN(r, env.LocalDSN)
		}
	}
	return e, nil
}

// NewLocalRcpt is a local mailbox added to a prepared message at now
// (Writer.AddLocal), with its DSN parameters from byAddr.
func NewLocalRcpt(addr string, byAddr map[string]smtp.RcptDSN, now time.Time) (*RcptRecord, error) {
	e, err := newEnvelope("", "", []string{addr}, Meta{}, now)
	if err != nil {
		return nil, err
	}
	r := e.Rcpts[0]
	r.Local = true
	setLocalDSN(r, byAddr)
	return r, nil
}

// ParseRecord decodes and checks a record as Marshal wrote it.
func ParseRecord(data []byte, id string) (*Record, error) { return parseEnvelope(data, id) }

// Marshal encodes the record as the env files hold it.
func (e *envelope) Marshal() ([]byte, error) { return e.marshal() }

// Done reports whether every recipient is final: the message can go.
func (e *envelope) Done() bool { return e.done() }

// RetryNow makes the pending recipients due at now.
func (e *envelope) RetryNow(now time.Time) { e.retryNow(now) }

// RcptDSN is the NOTIFY and ORCPT of each of addrs, for an Attempt.
func (e *envelope) RcptDSN(addrs []string) []smtp.RcptDSN { return e.rcptDSN(addrs) }

// Summarize describes e for List; inFlight are the groups (RcptRecord.Group)
// with a delivery in flight.
func (e *envelope) Summarize(inFlight map[string]bool) Summary { return summarizeEnv(e, inFlight) }

// Pending reports whether r still needs delivery attempts.
func (r *rcpt) Pending() bool { return r.pending() }

// Group is the key deliveries are grouped by: the domain, local
// recipients apart.
func (r *rcpt) Group() string { return r.group() }

// LastReply is the last outcome in one line.
func (r *rcpt) LastReply() string { return r.diagnostic() }

// MarshalRcpt and ParseRcpt encode one recipient's state as the env files do.
func MarshalRcpt(r *RcptRecord) ([]byte, error) { return json.Marshal(r) }

// ParseRcpt decodes what MarshalRcpt wrote.
func ParseRcpt(data []byte) (*RcptRecord, error) {
	var r rcpt
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	if r.Domain == "" {
		r.Domain = domainOf(r.Addr)
	}
	return &r, nil
}

// HeaderBlock is the header block at the start of msg as Show returns it.
func HeaderBlock(msg []byte) string { return headerBlock(msg, maxShowHeaders) }

// Policy is the retry schedule and DSN settings of a back-end: the
// fields of Options they come from, with the same defaults.
type Policy struct {
	RetryMin, RetryMax, MaxAge, DelayWarning time.Duration
	Hostname                                 string
	Logger                                   *slog.Logger
}

// rules is a Queue that holds only p's options: apply, warnAt and
// dueNotice read nothing else of it.
func (p Policy) rules() *Queue {
	o := Options{RetryMin: p.RetryMin, RetryMax: p.RetryMax, MaxAge: p.MaxAge,
		DelayWarning: p.DelayWarning, Hostname: p.Hostname, Logger: p.Logger}
	o.setDefaults()
	return &Queue{opts: o, log: o.Logger}
}

// Defaults returns p with the documented defaults filled in.
func (p Policy) Defaults() Policy {
	o := p.rules().opts
	return Policy{RetryMin: o.RetryMin, RetryMax: o.RetryMax, MaxAge: o.MaxAge,
		DelayWarning: o.DelayWarning, Hostname: o.Hostname, Logger: o.Logger}
}

// Apply records one attempt's outcome for r of e at now: delivered,
// failed (a permanent reply, or a temporary one after MaxAge; a bounce of
// the null sender is marked notified) or deferred with backoff.
func (p Policy) Apply(e *Record, r *RcptRecord, res Result, now time.Time) {
	p.rules().apply(e, r, res, now)
}

// Abandoned reports whether a result that arrived after its attempt was
// cancelled is dropped: everything but a delivery or a permanent failure.
func Abandoned(res Result) bool { return res.Err != nil && !isPermanent(res.Err) }

// NoResult is the Result of a recipient the Courier returned none for.
func NoResult(rcpt string) Result { return Result{Rcpt: rcpt, Err: errNoResult} }

// Expires is when e's pending recipients fail.
func (p Policy) Expires(e *Record) time.Time { return e.Arrival.Add(p.Defaults().MaxAge) }

// NextWarning is when e's delay warning is due, if it still needs one.
func (p Policy) NextWarning(e *Record) (time.Time, bool) { return p.rules().warnAt(e) }

// NoticeDue reports whether e owes a DSN at now: a failure report, a
// success notice or the delay warning.
func (p Policy) NoticeDue(e *Record, now time.Time) bool {
	if len(e.unnotified()) > 0 || len(e.unsucceeded()) > 0 {
		return true
	}
	w, ok := p.NextWarning(e)
	return ok && !w.After(now)
}

// Notice is the DSN a record owes: Wanted is false when NOTIFY asks for
// none (Mark all the same).
type Notice struct {
	Bounce Bounce
	Wanted bool
	Kind   string // "bounce", "delay warning" or "success notice", for logs
	n      notice
}

// Notice builds the DSN e owes at now (NoticeDue said one is): headers
// reads the start of the message (dsn.MaxHeaders), whole the message when
// it is at most dsn.MaxFull (nil otherwise).
func (p Policy) Notice(e *Record, now time.Time, headers func() ([]byte, error), whole func() []byte) (Notice, error) {
	q := p.rules()
	n := q.dueNotice(e, now)
	out := Notice{n: n}
	if len(n.rep.Recipients) == 0 {
		return out, nil
	}
	b, err := buildBounce(e.ID, n.rep, n.full, headers, whole, q.log)
	if err != nil {
		return out, err
	}
	out.Bounce, out.Wanted, out.Kind = b, true, bounceKind(b, n.rep)
	return out, nil
}

// Mark records in e that the notice was handed off (or was not wanted).
func (n Notice) Mark(e *Record) { n.n.mark(e) }

// Opener returns an Attempt.Open that puts prefix (Meta.Prepend) before
// the stream open returns, unless raw (local deliveries).
func Opener(prefix string, raw bool, open func() (io.ReadCloser, error)) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		rc, err := open()
		if err != nil || prefix == "" || raw {
			return rc, err
		}
		return prefixed{Reader: io.MultiReader(strings.NewReader(prefix), rc), Closer: rc}, nil
	}
}

// CheckFields checks header fields for Prepend: whole CRLF lines.
func CheckFields(fields string) error { return checkFields(fields) }

// StorageError gives an out-of-space error the reply 452 4.3.1.
func StorageError(err error) error { return storageError(err) }
