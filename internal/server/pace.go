package server

import (
	"fmt"
	"os"
	"time"
)

// The pace of message data. DataTimeout bounds each wait for the next
// block of data (RFC 5321 §4.5.3.2.6), so on its own it lets a client that
// sends a byte every few seconds hold its slot until the session deadline.
// So the data as a whole must keep a minimum rate too, as Postfix's
// smtpd_min_data_rate asks: a transfer that began at start and has brought
// n octets must end its next read by
//
//	start + DataTimeout + n / MinDataRate seconds
//
// as well as within DataTimeout of now. A client as slow as MinDataRate
// (500 octets/s by default: 50 MiB in 29 hours) is never cut; one that
// stalls gets DataTimeout, once; a trickle is cut after about DataTimeout
// whatever its pace between bytes. For BDAT the transfer is the whole
// message, from the first chunk (RFC 3030 §2), so a client cannot stretch
// it by sending one-octet chunks either.

// paceDeadline is the deadline of the next read of message data: the
// sooner of now+timeout and the rate budget above (rate in octets per
// second, at least 1).
func paceDeadline(now, start time.Time, received int64, timeout time.Duration, rate int64) time.Time {
	const century = 100 * 365 * 24 * time.Hour // no bound at all, and no overflow
	rate = max(rate, 1)
	credit := century
	if secs := received / rate; secs < int64(century/time.Second) {
		credit = time.Duration(secs)*time.Second + time.Duration(float64(received%rate)/float64(rate)*float64(time.Second))
	}
	idle, budget := now.Add(timeout), start.Add(timeout+credit)
	if budget.Before(idle) {
		return budget
	}
	return idle
}

// pace is one transfer of message data: when it began and the octets that
// came before the current DATA copy or BDAT chunk.
type pace struct {
	start    time.Time
	received int64
}

// errTooSlow ends a transfer that fell behind MinDataRate; it wraps
// os.ErrDeadlineExceeded, so it is answered as a timeout, 421 4.4.2.
type errTooSlow struct{ rate int64 }

func (e errTooSlow) Error() string {
	return fmt.Sprintf("message data slower than %d octets/s", e.rate)
}
func (errTooSlow) Unwrap() error { return os.ErrDeadlineExceeded }
func (errTooSlow) Timeout() bool { return true }

// armData arms the read deadline for the next block of the transfer p, of
// which got octets arrived in this copy. It returns errTooSlow when that
// deadline has passed already: the data may be buffered, so the read
// itself would not notice.
func (c *conn) armData(p pace, got int64) error {
	now := c.now()
	d := c.dataTimeout()
	t := paceDeadline(now, p.start, p.received+got, d, c.limits.MinDataRate)
	if !t.After(now) {
		return errTooSlow{rate: c.limits.MinDataRate}
	}
	c.setReadDeadlineAt(t, d)
	return nil
}
