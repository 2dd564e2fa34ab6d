package metrics

import (
	"context"
	"errors"

	"smtpkit/internal/queue"
	"smtpkit/internal/smtp"
)

// Delivery results, per recipient and attempt. An attempt's temporary
// failure becomes a bounce only when the queue gives up (max_age), so
// these count attempts, not final fates.
const (
	resultDelivered = "delivered"
	resultTemporary = "temporary_failure"
	resultPermanent = "permanent_failure"
)

// Courier wraps c so that every delivery attempt is counted by result and
// timed. A nil *Metrics returns c unchanged.
func (m *Metrics) Courier(c queue.Courier) queue.Courier {
	if m == nil {
		return c
	}
	return &countingCourier{next: c, m: m}
}

type countingCourier struct {
	next queue.Courier
	m    *Metrics
}

// Deliver implements queue.Courier.
func (c *countingCourier) Deliver(ctx context.Context, d *queue.Attempt) []queue.Result {
	c.m.deliveryInFlight.Inc()
	defer c.m.deliveryInFlight.Dec()
	start := c.m.now()
	res := c.next.Deliver(ctx, d)
	end := c.m.now()
	c.m.deliveryDuration.Observe(end.Sub(start).Seconds())
	got := make(map[string]queue.Result, len(res))
	for _, r := range res {
		got[r.Rcpt] = r
	}
	for _, rcpt := range d.Recipients {
		r, ok := got[rcpt]
		if !ok {
			// The queue treats a recipient without a Result as temporary.
			r.Rcpt, r.Err = rcpt, errNoResult
		}
		c.m.record(d, r, end, end.Sub(start))
		policy := r.TLS.Policy
		if policy == "" {
			policy = "unknown"
		}
		mech := r.TLS.Mechanism
		if mech == "" {
			mech = "unknown"
		}
		c.m.deliveries.WithLabelValues(result(r.Err), policy, mech).Inc()
	}
	return res
}

var errNoResult = errors.New("no result from the courier")

// result classifies one recipient's outcome like the queue does: nil is
// delivered, a permanent *smtp.Error fails, anything else is retried.
func result(err error) string {
	var se *smtp.Error
	switch {
	case err == nil:
		return resultDelivered
	case errors.As(err, &se) && se.Permanent():
		return resultPermanent
	}
	return resultTemporary
}
