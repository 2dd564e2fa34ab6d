package queue

// backend.go: the queue as the rest of the binary sees it. Two back-ends
// implement Backend: the files of this package (LocalBackend wraps a
// *Queue; the default) and PostgreSQL (internal/pgqueue, selected by
// [cluster] database). docs/queue.md describes both.

import (
	"context"
	"io"
)

// Backend is an outbound queue: messages go in through Begin, the
// scheduler (Run, RunOnce) hands due recipients to a Courier, and the
// operator browses and changes it (`smtpkit queue`, the control socket).
// The conformance suite in internal/queue/queuetest runs against every
// implementation.
type Backend interface {
	// Begin starts a message for env; its bytes follow through the
	// MessageWriter, then Commit (or Prepare and Publish) or Abort.
	Begin(env Envelope) (MessageWriter, error)
	// EnqueueBounce queues a DSN from the null sender to b.To.
	EnqueueBounce(ctx context.Context, b Bounce) error

	// List returns every queued message, oldest first.
	List(ctx context.Context) ([]Summary, error)
	// Show returns one message in detail; ErrNotFound when it is not queued.
	Show(ctx context.Context, id string) (Detail, error)
	// Hold stops delivery attempts and bounces for a message until Release.
	Hold(ctx context.Context, id string) error
	// Release undoes Hold; the pending recipients are due at once.
	Release(ctx context.Context, id string) error
	// Delete removes a message without a bounce.
	Delete(ctx context.Context, id string) error
	// Retry makes the pending recipients of a message due now.
	Retry(ctx context.Context, id string) error
	// Flush makes every pending recipient of every message not held due now.
	Flush(ctx context.Context) error

	// Run is the scheduler; it returns when ctx is done, after the
	// deliveries in flight have returned.
	Run(ctx context.Context) error
	// RunOnce does what is due at the clock's current time and returns
	// the number of delivery attempts (tests and tools).
	RunOnce(ctx context.Context) int
	// Close releases the back-end; Run must have returned.
	Close() error
}

// MessageWriter receives one message's bytes and commits it (*Writer for
// the files). 250 may be sent only after Commit (or Prepare) returned nil.
type MessageWriter interface {
	io.Writer
	// Prepend adds header fields every remote attempt sends before the
	// bytes (the DKIM-Signature), before Prepare.
	Prepend(fields string) error
	// Commit makes the message durable and schedules it: Prepare, then
	// Publish.
	Commit() (id string, err error)
	// Prepare makes the message durable without releasing it for
	// delivery; a crash after it delivers it all the same.
	Prepare() (id string, err error)
	// AddLocal adds local mailboxes to a prepared message, durably.
	AddLocal(boxes []string) error
	// Publish releases a prepared message for delivery.
	Publish()
	// Withdraw takes a prepared message back, durably.
	Withdraw() error
	// Abort discards the message; after Commit it does nothing, after
	// Prepare it withdraws.
	Abort()
}

var _ MessageWriter = (*Writer)(nil)

// LocalBackend is the files back-end, q, as a Backend.
func LocalBackend(q *Queue) Backend { return localBackend{q} }

type localBackend struct{ q *Queue }

func (l localBackend) Begin(env Envelope) (MessageWriter, error) {
	w, err := l.q.Begin(env)
	if err != nil {
		return nil, err // not a typed nil in an interface
	}
	return w, nil
}

func (l localBackend) EnqueueBounce(ctx context.Context, b Bounce) error {
	return l.q.EnqueueBounce(ctx, b)
}
func (l localBackend) List(context.Context) ([]Summary, error) { return l.q.List(), nil }
func (l localBackend) Counts(context.Context) (Counts, error)  { return l.q.Counts(), nil }
func (l localBackend) Show(_ context.Context, id string) (Detail, error) {
	return l.q.Show(id)
}
func (l localBackend) Hold(_ context.Context, id string) error    { return l.q.Hold(id) }
func (l localBackend) Release(_ context.Context, id string) error { return l.q.Release(id) }
func (l localBackend) Delete(_ context.Context, id string) error  { return l.q.Delete(id) }
func (l localBackend) Retry(_ context.Context, id string) error   { return l.q.Retry(id) }
func (l localBackend) Flush(context.Context) error                { l.q.Flush(); return nil }
func (l localBackend) Run(ctx context.Context) error              { return l.q.Run(ctx) }
func (l localBackend) RunOnce(ctx context.Context) int            { return l.q.RunOnce(ctx) }
func (l localBackend) Close() error                               { return l.q.Close() }
