package queue

// admin.go: what `smtpkit queue` does through the control socket.

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Summary is one message in List.
type Summary struct {
	ID         string       `json:"id"`
	From       string       `json:"from"` // "" is the null sender
	Arrival    time.Time    `json:"arrival"`
	Size       int64        `json:"size"`
	Held       bool         `json:"held,omitempty"`
	Recipients []RcptStatus `json:"recipients"`
}

// RcptStatus is one recipient's state as shown to an operator.
type RcptStatus struct {
	Addr        string    `json:"addr"`
	Local       bool      `json:"local,omitempty"` // a local mailbox the queue delivers (AddLocal)
	State       State     `json:"state"`
	Attempts    int       `json:"attempts"`
	InFlight    bool      `json:"in_flight,omitempty"`
	NextAttempt time.Time `json:"next_attempt,omitzero"` // for queued and deferred recipients
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastReply   string    `json:"last_reply,omitempty"` // the courier's detail, or the diagnostic
	Status      string    `json:"status,omitempty"`     // enhanced status code of the last attempt
}

// Detail is one message in Show: its Summary plus what the session knew
// and the message's header block.
type Detail struct {
	Summary
	Meta    Meta      `json:"meta"`
	Warned  bool      `json:"warned,omitempty"` // a delay warning was sent
	Expires time.Time `json:"expires"`          // recipients still pending then fail
	Headers string    `json:"headers"`          // the header block, at most maxShowHeaders bytes
}

// maxShowHeaders bounds the header block Show returns.
const maxShowHeaders = 16 << 10

// List returns every queued message, oldest first: those of the active
// set from memory, the others (the index) read from their env files.
func (q *Queue) List() []Summary {
	q.mu.Lock()
	active := make([]*message, 0, len(q.msgs))
	for _, m := range q.msgs {
		active = append(active, m)
	}
	parked := make([]string, 0, q.idx.len())
	for k := range q.idx.due {
		parked = append(parked, k.String())
	}
	q.mu.Unlock()
	out := make([]Summary, 0, len(active)+len(parked))
	seen := make(map[string]bool, len(active))
	for _, m := range active {
		m.mu.Lock()
		switch {
		case m.deleted || m.env == nil:
		case m.parked:
			parked = append(parked, m.id)
		default:
			out = append(out, summarize(m))
			seen[m.id] = true
		}
		m.mu.Unlock()
	}
	for _, id := range parked {
		if seen[id] {
			continue
		}
		seen[id] = true
		if e := q.readEnvQuiet(id); e != nil {
			out = append(out, summarize(newMessage(e)))
		}
	}
	slices.SortFunc(out, func(a, b Summary) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// summarize describes m; the caller holds m.mu.
func summarize(m *message) Summary { return summarizeEnv(m.env, m.busy) }

// summarizeEnv describes e; busy are the groups with a delivery in flight.
func summarizeEnv(e *envelope, busy map[string]bool) Summary {
	s := Summary{ID: e.ID, From: e.From, Arrival: e.Arrival, Size: e.Size, Held: e.Held}
	for _, r := range e.Rcpts {
		rs := RcptStatus{Addr: r.Addr, Local: r.Local, State: r.State, Attempts: r.Attempts, LastAttempt: r.Last,
			LastReply: r.Detail, Status: r.Status}
		if rs.LastReply == "" {
			rs.LastReply = r.diagnostic()
		}
		if r.pending() {
			rs.NextAttempt = r.Next
			rs.InFlight = busy[r.group()]
		}
		s.Recipients = append(s.Recipients, rs)
	}
	return s
}

// Show returns one message in detail.
func (q *Queue) Show(id string) (Detail, error) {
	var d Detail
	err := q.with(id, func(m *message) error {
		d = Detail{Summary: summarize(m), Meta: m.env.Meta, Warned: m.env.Warned,
			Expires: m.env.Arrival.Add(q.opts.MaxAge)}
		return nil
	})
	if err != nil {
		return Detail{}, err
	}
	hdr, err := q.readHeaders(id)
	if err != nil {
		return Detail{}, fmt.Errorf("queue: reading message %s: %w", id, err)
	}
	d.Headers = headerBlock(hdr, maxShowHeaders)
	return d, nil
}

// with runs fn on message id, brought into the active set for it (hold),
// and rearms it after (which parks it again when nothing of it is due).
func (q *Queue) with(id string, fn func(*message) error) error {
	m, err := q.hold(id)
	if err != nil {
		return err
	}
	defer m.mu.Unlock()
	defer q.rearm(m)
	return fn(m)
}

// headerBlock returns the header block at the start of msg, at most max bytes.
func headerBlock(msg []byte, max int) string {
	s := string(msg)
	if i := strings.Index(s, "\r\n\r\n"); i >= 0 {
		s = s[:i+2]
	}
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "")
	}
	return s
}

// Flush makes every pending recipient of every message that is not held
// due now, and retries pending bounces now. Messages in the index are
// marked due; their recipients are made due when they are loaded.
func (q *Queue) Flush() {
	now := q.now()
	for _, m := range q.snapshot() {
		m.mu.Lock()
		if !m.deleted && !m.parked && m.env != nil && !m.env.Held {
			m.env.retryNow(now)
			q.rearm(m)
		}
		m.mu.Unlock()
	}
	q.mu.Lock()
	q.idx.flushAll(now)
	q.liftSuspensions()
	q.mu.Unlock()
	q.poke()
}

// Retry makes the pending recipients of message id due now, and lifts
// the suspensions of their destinations (dest.go): the retry is an
// attempt. A held message stays held (Release it).
func (q *Queue) Retry(id string) error {
	var groups []string
	err := q.change(id, false, func(e *envelope, now time.Time) error {
		if e.Held {
			return fmt.Errorf("queue: message %s is held; release it first", id)
		}
		for _, r := range e.Rcpts {
			if r.pending() {
				groups = append(groups, r.group())
			}
		}
		e.retryNow(now)
		return nil
	})
	if err == nil && len(groups) > 0 {
		q.mu.Lock()
		q.liftSuspensions(groups...)
		q.mu.Unlock()
		q.poke()
	}
	return err
}

// Hold stops delivery attempts and bounces for message id until Release.
// An attempt already in flight finishes and is recorded.
func (q *Queue) Hold(id string) error {
	return q.change(id, true, func(e *envelope, now time.Time) error {
		e.Held = true
		return nil
	})
}

// Release undoes Hold; the pending recipients are due at once.
func (q *Queue) Release(id string) error {
	return q.change(id, true, func(e *envelope, now time.Time) error {
		e.Held = false
		e.retryNow(now)
		return nil
	})
}

// Delete removes message id from the queue without a bounce. An attempt
// in flight finishes, but its results are dropped.
func (q *Queue) Delete(id string) error {
	return q.with(id, func(m *message) error {
		if err := q.remove(id); err != nil {
			return fmt.Errorf("queue: deleting %s: %w", id, err)
		}
		m.deleted = true
		q.forget(id)
		q.log.Info("queue: message deleted by the operator", "msgid", id)
		return nil
	})
}

// change applies fn to message id's envelope, saves it when save is set,
// and rearms it (which wakes the scheduler).
func (q *Queue) change(id string, save bool, fn func(*envelope, time.Time) error) error {
	return q.with(id, func(m *message) error {
		if err := fn(m.env, q.now()); err != nil {
			return err
		}
		if save {
			if err := q.saveEnv(m); err != nil {
				return fmt.Errorf("queue: saving %s: %w", id, err)
			}
		}
		return nil
	})
}

// retryNow makes pending recipients and a pending bounce due at now.
func (e *envelope) retryNow(now time.Time) {
	for _, r := range e.Rcpts {
		if r.pending() && r.Next.After(now) {
			r.Next = now
		}
	}
	e.bounceAt = time.Time{}
}

// Counts is what the queue's gauges report, without a List.
type Counts struct {
	Messages   int
	Held       int
	Bytes      int64
	Recipients map[State]int // every state, zeros included
	Oldest     time.Time     // arrival of the oldest message; zero when the queue is empty
}

// Counts adds up the active set (from memory) and the index (its running
// totals): no env file is read, so a metrics scrape of a deep queue costs
// a walk over memory, not a read of every file.
func (q *Queue) Counts() Counts {
	c := Counts{Recipients: make(map[State]int, numStates)}
	for _, s := range States {
		c.Recipients[s] = 0
	}
	q.mu.Lock()
	active := make([]*message, 0, len(q.msgs))
	for _, m := range q.msgs {
		active = append(active, m)
	}
	c.Messages, c.Held, c.Bytes = q.idx.len(), q.idx.held, q.idx.bytes
	for i, n := range q.idx.counts {
		c.Recipients[States[i]] += n
	}
	if k, ok := q.idx.oldest(); ok {
		c.Oldest = arrivalOf(k)
	}
	q.mu.Unlock()
	for _, m := range active {
		m.mu.Lock()
		if !m.deleted && !m.parked && m.env != nil {
			e := m.env
			c.Messages++
			if e.Held {
				c.Held++
			}
			c.Bytes += e.Size
			for _, r := range e.Rcpts {
				c.Recipients[r.State]++
			}
			if c.Oldest.IsZero() || e.Arrival.Before(c.Oldest) {
				c.Oldest = e.Arrival
			}
		}
		m.mu.Unlock()
	}
	return c
}

// arrivalOf is the arrival time an id begins with (milliseconds).
func arrivalOf(k msgKey) time.Time {
	var ms int64
	for _, b := range k[:6] {
		ms = ms<<8 | int64(b)
	}
	return time.UnixMilli(ms)
}
