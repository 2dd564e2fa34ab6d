package metrics

// recent.go: the last delivery attempts, one event per recipient, in a
// bounded ring for the status page (internal/web).

import (
	"sync"
	"time"

	"smtpkit/internal/queue"
)

// RecentSize is how many delivery events RecentDeliveries keeps.
const RecentSize = 200

// Delivery is one recipient's delivery attempt.
type Delivery struct {
	Time     time.Time     // when the attempt ended
	Duration time.Duration // of the whole attempt to the domain
	ID       string        // queue id
	From     string        // "" is the null sender
	Rcpt     string
	Result   string // delivered, temporary_failure, permanent_failure
	Detail   string // who said what (queue.Result.Detail), "" when delivered without a reply
	Remote   string // host[address] of the next hop, "" when none was tried
	// TLS plan and outcome: the policy and what decided it ("" when no
	// next hop was tried), the version negotiated ("no TLS").
	TLSPolicy    string
	TLSMechanism string
	TLSVersion   string
}

// ring keeps the last RecentSize events.
type ring struct {
	mu   sync.Mutex
	buf  [RecentSize]Delivery
	next int // where the next event goes
	n    int // events held, ≤ RecentSize
}

func (r *ring) add(d Delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf[r.next] = d
	r.next = (r.next + 1) % RecentSize
	if r.n < RecentSize {
		r.n++
	}
}

// newestFirst copies the events out, the newest first.
func (r *ring) newestFirst() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Delivery, 0, r.n)
	for i := 1; i <= r.n; i++ {
		out = append(out, r.buf[(r.next-i+RecentSize)%RecentSize])
	}
	return out
}

// RecentDeliveries returns the last RecentSize delivery events the
// courier wrapper (Courier) saw, the newest first.
func (m *Metrics) RecentDeliveries() []Delivery { return m.recent.newestFirst() }

// record adds one recipient's outcome of attempt a.
func (m *Metrics) record(a *queue.Attempt, r queue.Result, end time.Time, took time.Duration) {
	d := Delivery{
		Time: end, Duration: took, ID: a.ID, From: a.From, Rcpt: r.Rcpt,
		Result: result(r.Err), Remote: r.Remote.String(),
		TLSPolicy: r.TLS.Policy, TLSMechanism: r.TLS.Mechanism, TLSVersion: r.TLS.String(),
	}
	if r.Err != nil || r.Said() {
		d.Detail = r.Detail()
	}
	m.recent.add(d)
}
