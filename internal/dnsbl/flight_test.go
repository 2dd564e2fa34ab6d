package dnsbl

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smtpkit/internal/dns"
)

// gatedResolver answers every A query with 127.0.0.2 and every TXT
// query with a reason, once gate is closed, counting the queries.
type gatedResolver struct {
	gate     chan struct{}
	started  chan struct{} // one value per query that started
	a, txt   atomic.Int32
	unlisted bool
}

func (r *gatedResolver) LookupA(ctx context.Context, host string) (dns.IPAnswer, error) {
	r.a.Add(1)
	r.started <- struct{}{}
	select {
	case <-r.gate:
	case <-ctx.Done():
		return dns.IPAnswer{}, ctx.Err()
	}
	return dns.IPAnswer{IPs: []netip.Addr{netip.MustParseAddr("127.0.0.2")}}, nil
}

func (r *gatedResolver) LookupTXT(ctx context.Context, name string) (dns.TXTAnswer, error) {
	r.txt.Add(1)
	return dns.TXTAnswer{Records: []string{"reason"}}, nil
}

// TestOneQueryInFlight: fifty clients from one address at once cost one
// A query and one TXT query; every one of them gets the verdict.
func TestOneQueryInFlight(t *testing.T) {
	res := &gatedResolver{gate: make(chan struct{}), started: make(chan struct{}, 100)}
	c, err := New(Options{Zones: []Zone{{Name: "bl.test"}}, Resolver: res, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("192.0.2.1")
	first := c.Start(context.Background(), ip)
	<-res.started // the first query is out; the others find it in flight
	lookups := []*Lookup{first}
	for range 49 {
		lookups = append(lookups, c.Start(context.Background(), ip))
	}
	key := flightKey{name: QueryName(ip, "bl.test")}
	for deadline := time.Now().Add(10 * time.Second); c.inFlight.waiting(key) < 49; {
		if time.Now().After(deadline) {
			t.Fatalf("%d lookups wait for the one in flight, want 49", c.inFlight.waiting(key))
		}
		time.Sleep(time.Millisecond) // polling, bounded above
	}
	close(res.gate)
	var wg sync.WaitGroup
	var blocked atomic.Int32
	for _, l := range lookups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v := l.Wait(); v.Blocked && v.Hits[0].Text == "reason" {
				blocked.Add(1)
			}
		}()
	}
	wg.Wait()
	if blocked.Load() != 50 {
		t.Errorf("%d of 50 blocked", blocked.Load())
	}
	if n := res.a.Load(); n != 1 {
		t.Errorf("%d A queries for 50 concurrent clients, want 1", n)
	}
	t.Logf("A queries: %d, TXT queries: %d", res.a.Load(), res.txt.Load())
}

// A waiter whose own context ends stops waiting; the lookup in flight
// goes on for its starter.
func TestFlightWaiterCancelled(t *testing.T) {
	res := &gatedResolver{gate: make(chan struct{}), started: make(chan struct{}, 10)}
	c, err := New(Options{Zones: []Zone{{Name: "bl.test"}}, Resolver: res, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("192.0.2.1")
	first := c.Start(context.Background(), ip)
	<-res.started
	ctx, cancel := context.WithCancel(context.Background())
	second := c.Start(ctx, ip)
	cancel()
	if v := second.Wait(); len(v.Failed) != 1 || v.Blocked {
		t.Errorf("cancelled waiter: %+v", v)
	}
	close(res.gate)
	if v := first.Wait(); !v.Blocked {
		t.Errorf("starter: %+v", v)
	}
	if n := res.a.Load(); n != 1 {
		t.Errorf("%d A queries, want 1", n)
	}
}
