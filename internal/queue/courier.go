package queue

import (
	"context"
	"io"
	"sync"

	"smtpkit/internal/smtp"
)

// Courier delivers one message to some recipients of ONE domain (internal/
// delivery implements it). It must honour ctx and return one Result per
// recipient; a recipient without a Result counts as a temporary failure.
type Courier interface {
	Deliver(ctx context.Context, d *Attempt) []Result
}

// Attempt is one delivery attempt handed to a Courier: one message, its
// recipients of one domain, and how to read the bytes.
type Attempt struct {
	ID         string
	From       string // "" is the null reverse-path
	Domain     string
	Recipients []string
	Size       int64
	SMTPUTF8   bool
	EightBit   bool
	// Binary: BODY=BINARYMIME (Meta.Binary); the bytes are not text.
	Binary bool
	// RequireTLS: the message was received with REQUIRETLS (RFC 8689
	// §4.2); delivery must meet RFC 8689 §4.2.1 or fail with 5.7.30.
	RequireTLS bool
	// Ret, EnvID and DSN are the DSN parameters (RFC 3461 §4) to pass to a
	// next hop that offers DSN: MAIL's RET and ENVID, each recipient's
	// NOTIFY and ORCPT parallel to Recipients.
	Ret   string
	EnvID string
	DSN   []smtp.RcptDSN
	// Prepend are the header fields Open puts before the stored bytes
	// (Meta.Prepend: our DKIM-Signature fields), "" for local delivery. A
	// courier that changes the message (delivery's 7-bit conversion) signs
	// it again instead of sending them.
	Prepend string
	// Open returns the message bytes as a stream; it may be called more
	// than once (for example once per MX tried). The caller closes it.
	Open func() (io.ReadCloser, error)
}

// Bounce is a built DSN on its way back to the original sender.
type Bounce struct {
	ID       string // the original message's id
	To       string // the original envelope sender (never empty)
	Delayed  bool   // a delay warning, not a failure
	Message  []byte // the complete DSN (internal/dsn.Build), CRLF lines
	SMTPUTF8 bool   // the DSN is internationalized (RFC 6533) and needs SMTPUTF8
	EightBit bool   // the DSN has 8-bit content and needs 8BITMIME
}

// limiter bounds concurrent deliveries in total and per domain. It never
// blocks: the scheduler asks, and leaves what does not fit for its next
// pass (a finishing delivery wakes it).
type limiter struct {
	total, perDomain int

	mu       sync.Mutex
	active   int
	byDomain map[string]int // only domains with deliveries in flight
}

func newLimiter(total, perDomain int) *limiter {
	return &limiter{total: total, perDomain: perDomain, byDomain: make(map[string]int)}
}

// tryAcquire takes a slot for domain if one is free.
func (l *limiter) tryAcquire(domain string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.active >= l.total || l.byDomain[domain] >= l.perDomain {
		return false
	}
	l.active++
	l.byDomain[domain]++
	return true
}

// full reports whether no delivery at all can start.
func (l *limiter) full() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.active >= l.total
}

func (l *limiter) release(domain string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.active--
	if l.byDomain[domain]--; l.byDomain[domain] <= 0 {
		delete(l.byDomain, domain)
	}
}
