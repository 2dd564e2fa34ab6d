package delivery

import (
	"context"
	"net"
	"net/netip"
	"strconv"

	"smtpkit/internal/client"
	"smtpkit/internal/queue"
	"smtpkit/internal/route"
	"smtpkit/internal/tlspolicy"
)

// transact delivers d through c, fitting the next hop's LIMITS (RFC 9422):
// the recipients go in transactions of at most RCPTMAX each, and after
// MAILMAX transactions on one connection the rest go on a new connection
// to the same address, instead of sending them all and collecting 452s
// (RFC 5321 §4.5.3.1.10). RCPTDOMAINMAX needs nothing: an attempt holds
// the recipients of one domain. A connection with transactions left is
// kept under poolKey.
//
// decided is false only when the first transaction failed before the
// server took it past MAIL (the next hop is then tried, as before); once
// a share has been delivered, a failure of a later share defers just its
// own recipients.
func (r *Remote) transact(ctx context.Context, c *client.Conn, d *queue.Attempt, hop route.Hop, ip netip.Addr, plan tlspolicy.Plan, poolKey string) ([]queue.Result, bool, error) {
	out := make([]queue.Result, 0, len(d.Recipients))
	rest := d.Recipients
	for len(rest) > 0 {
		if c == nil || c.Spent() {
			if c != nil {
				c.Quit()
			}
			var err error
			addr := net.JoinHostPort(ip.String(), strconv.Itoa(hop.Port))
			if c, plan, err = r.connect(ctx, addr, d.Domain, hop, plan); err != nil {
				return append(out, allFailed(rest, queue.Result{Err: temporary(err), Remote: queue.Remote{Host: hop.Host, Addr: ip}})...), true, nil
			}
		}
		share := rest
		if m := c.Limits().RcptMax; m > 0 && len(share) > m {
			share = share[:m]
		}
		res, decided, keep, err := r.transactOne(ctx, c, d, share, hop, ip, plan)
		if !decided {
			if len(out) == 0 {
				return nil, false, err
			}
			return append(out, allFailed(rest, queue.Result{Err: temporary(err), Remote: queue.Remote{Host: hop.Host, Addr: ip}})...), true, nil
		}
		out = append(out, res...)
		rest = rest[len(share):]
		if !keep {
			c = nil
		}
	}
	if c != nil {
		if c.Spent() {
			go c.Quit()
		} else {
			r.pool.put(poolKey, c)
		}
	}
	return out, true, nil
}
