package dnsbl

import (
	"context"
	"slices"
	"sync"

	"smtpkit/internal/dns"
)

// flight.go: one query in flight per name and type. A bot opens many
// connections from one address at once; the cache (the Resolver) only
// helps once the first answer is in, so the lookups that start meanwhile
// wait for the one already asked instead of asking again.

// flights holds the lookups in progress, by type and name.
type flights struct {
	mu sync.Mutex
	m  map[flightKey]*flight
}

type flightKey struct {
	txt  bool // a TXT lookup, else A
	name string
}

// flight is one lookup in progress; done is closed when its answer is set.
type flight struct {
	done    chan struct{}
	waiters int // under flights.mu, for tests
	a       dns.IPAnswer
	t       dns.TXTAnswer
	err     error
}

// do runs ask for k, or waits for the same lookup already in flight. A
// waiter gives up when its own ctx ends; the lookup runs under the
// context of the one that started it.
func (f *flights) do(ctx context.Context, k flightKey, ask func(*flight)) (*flight, error) {
	f.mu.Lock()
	if fl, ok := f.m[k]; ok {
		fl.waiters++
		f.mu.Unlock()
		select {
		case <-fl.done:
			return fl, fl.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.m == nil {
		f.m = make(map[flightKey]*flight)
	}
	fl := &flight{done: make(chan struct{})}
	f.m[k] = fl
	f.mu.Unlock()

	ask(fl)
	f.mu.Lock()
	delete(f.m, k)
	f.mu.Unlock()
	close(fl.done)
	return fl, fl.err
}

// lookupA is res.LookupA through the flights; each caller gets its own
// slice.
func (f *flights) lookupA(ctx context.Context, res Resolver, name string) (dns.IPAnswer, error) {
	fl, err := f.do(ctx, flightKey{name: name}, func(fl *flight) { fl.a, fl.err = res.LookupA(ctx, name) })
	if fl == nil {
		return dns.IPAnswer{}, err
	}
	a := fl.a
	a.IPs = slices.Clone(a.IPs)
	return a, err
}

// lookupTXT is res.LookupTXT through the flights.
func (f *flights) lookupTXT(ctx context.Context, res Resolver, name string) (dns.TXTAnswer, error) {
	fl, err := f.do(ctx, flightKey{txt: true, name: name}, func(fl *flight) { fl.t, fl.err = res.LookupTXT(ctx, name) })
	if fl == nil {
		return dns.TXTAnswer{}, err
	}
	t := fl.t
	t.Records = slices.Clone(t.Records)
	return t, err
}

// waiting reports how many callers wait for k (tests).
func (f *flights) waiting(k flightKey) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fl, ok := f.m[k]; ok {
		return fl.waiters
	}
	return 0
}
