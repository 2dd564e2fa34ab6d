package dnsbl

import (
	"context"
	"net/netip"
	"sync/atomic"
)

// Lookup is the lookups of one client in progress. Wait may be called
// any number of times, from any goroutine.
type Lookup struct {
	ip      netip.Addr
	results []nameResult // one per zone name, written by its own goroutine
	left    atomic.Int32 // names still being asked
	done    chan struct{}
	cancel  context.CancelFunc
	verdict Verdict // set before done is closed
	c       *Checker
}

// nameResult is what one zone answered: its A records and, when a block
// list entry of the zone matched them, its TXT record.
type nameResult struct {
	ips  []netip.Addr
	text string
	err  error
}

// Verdict is the outcome of a Lookup.
type Verdict struct {
	IP    netip.Addr
	Score int // the sum of the weights of the zones that list IP
	// Hits are the zone entries that list IP, in configuration order
	// (a zone with several entries, each with its answers, may hit more
	// than once).
	Hits []Hit
	// Blocked: Score reached the threshold.
	Blocked bool
	// Allowlisted: Score is negative (allow lists outweigh block lists).
	Allowlisted bool
	// Failed are the zones whose lookup failed or timed out; they count
	// as not listing IP.
	Failed []string
}

// Hit is one zone that listed the client.
type Hit struct {
	Zone   string
	Weight int
	Answer netip.Addr // the A record, e.g. 127.0.0.2
	// Text is the zone's TXT record for the entry (RFC 5782 §2.1.1),
	// made safe for an SMTP reply; asked only for block lists (positive
	// weights), "" when there is none.
	Text string
}

// Blocker is the hit to name in a rejection: the block list with the
// largest weight, the first in configuration order among equals.
func (v Verdict) Blocker() (Hit, bool) {
	var best Hit
	found := false
	for _, h := range v.Hits {
		if h.Weight > 0 && (!found || h.Weight > best.Weight) {
			best, found = h, true
		}
	}
	return best, found
}

// Start asks every zone about ip at once and returns at once; the
// lookups end by themselves within the timeout, or when ctx is done.
func (c *Checker) Start(ctx context.Context, ip netip.Addr) *Lookup {
	ip = ip.Unmap()
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	l := &Lookup{ip: ip, results: make([]nameResult, len(c.names)), done: make(chan struct{}), cancel: cancel, c: c}
	l.left.Store(int32(len(c.names)))
	for i := range c.names {
		go l.ask(ctx, i)
	}
	return l
}

// ask looks ip up in zone name i (once, however many entries the zone
// has), then, when it was the last to answer, settles the verdict.
func (l *Lookup) ask(ctx context.Context, i int) {
	name := QueryName(l.ip, l.c.names[i])
	r := &l.results[i]
	a, err := l.c.inFlight.lookupA(ctx, l.c.opts.Resolver, name)
	if err != nil {
		r.err = err
	} else {
		r.ips = a.IPs
		if l.blocks(i, a.IPs) {
			// RFC 5782 §2.1.1: the TXT record at the same name says why.
			if t, err := l.c.inFlight.lookupTXT(ctx, l.c.opts.Resolver, name); err == nil && len(t.Records) > 0 {
				r.text = safeText(t.Records[0])
			}
		}
	}
	if l.left.Add(-1) == 0 {
		l.settle()
	}
}

// blocks reports whether a block list entry (positive weight) of zone
// name i takes ips as a listing.
func (l *Lookup) blocks(i int, ips []netip.Addr) bool {
	for j, z := range l.c.opts.Zones {
		if l.c.nameOf[j] != i || z.Weight <= 0 {
			continue
		}
		if _, ok := z.listing(ips); ok {
			return true
		}
	}
	return false
}

// settle adds up the results; the last zone's goroutine runs it.
func (l *Lookup) settle() {
	l.cancel()
	v := Verdict{IP: l.ip}
	for i, r := range l.results {
		if r.err != nil {
			v.Failed = append(v.Failed, l.c.names[i])
			l.c.opts.Logger.Info("dnsbl lookup failed; not counted", "zone", l.c.names[i], "ip", l.ip.String(), "err", r.err)
		}
	}
	for j, z := range l.c.opts.Zones {
		r := l.results[l.c.nameOf[j]]
		if answer, ok := z.listing(r.ips); ok {
			v.Score += z.Weight
			v.Hits = append(v.Hits, Hit{Zone: z.Name, Weight: z.Weight, Answer: answer, Text: r.text})
		}
	}
	v.Blocked = v.Score >= l.c.opts.Threshold
	v.Allowlisted = v.Score < 0
	l.verdict = v
	close(l.done)
}

// Wait blocks until every zone answered or the timeout passed, and
// returns the verdict. A nil Lookup (no lookup was made) gives the empty
// verdict: not listed.
func (l *Lookup) Wait() Verdict {
	if l == nil {
		return Verdict{}
	}
	<-l.done
	return l.verdict
}

// Result returns the verdict without waiting; ok is false while lookups
// are still running.
func (l *Lookup) Result() (v Verdict, ok bool) {
	if l == nil {
		return Verdict{}, false
	}
	select {
	case <-l.done:
		return l.verdict, true
	default:
		return Verdict{}, false
	}
}

// maxText bounds the TXT reason copied into a reply.
const maxText = 200

// safeText is s made fit for an SMTP reply line (RFC 5321 §4.2: text is
// printable US-ASCII; a CR or LF would end the reply): other octets
// become '?', and it is cut to maxText octets.
func safeText(s string) string {
	b := make([]byte, 0, min(len(s), maxText))
	for i := 0; i < len(s) && len(b) < maxText; i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b = append(b, c)
	}
	return string(b)
}
