package greylist

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// clock is a fake clock the tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{now: time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)} }

func open(t *testing.T, dir string, c *clock, mod func(*Options)) *List {
	t.Helper()
	opts := Options{Dir: dir, Delay: 5 * time.Minute, RetryWindow: 48 * time.Hour, Expire: 35 * 24 * time.Hour, Now: c.Now, Flush: time.Hour}
	if mod != nil {
		mod(&opts)
	}
	l, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func trip(n int) Triplet {
	return NewTriplet(netip.MustParseAddr("192.0.2.1"), "joe@example.org", fmt.Sprintf("rcpt%c@example.com", 'a'+n%26)+fmt.Sprint(n/26))
}

func TestCheckSequence(t *testing.T) {
	type step struct {
		after  time.Duration // clock advance before the attempt
		pass   bool
		reason Reason
		wait   time.Duration
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"first attempt deferred", []step{{0, false, New, 5 * time.Minute}}},
		{"retry too early, then in time", []step{
			{0, false, New, 5 * time.Minute},
			{time.Minute, false, TooEarly, 4 * time.Minute},
			{4*time.Minute - time.Second, false, TooEarly, time.Second},
			{time.Second, true, Retried, 0},
			{time.Hour, true, Known, 0},
		}},
		{"retry after the window starts over", []step{
			{0, false, New, 5 * time.Minute},
			{48*time.Hour + time.Second, false, Late, 5 * time.Minute},
			{5 * time.Minute, true, Retried, 0},
		}},
		{"retry at the end of the window passes", []step{
			{0, false, New, 5 * time.Minute},
			{48 * time.Hour, true, Retried, 0},
		}},
		{"known for expire after the last pass", []step{
			{0, false, New, 5 * time.Minute},
			{10 * time.Minute, true, Retried, 0},
			{35 * 24 * time.Hour, true, Known, 0},
			{35 * 24 * time.Hour, true, Known, 0},
			{35*24*time.Hour + time.Second, false, New, 5 * time.Minute},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			l := open(t, t.TempDir(), c, nil)
			for i, s := range tc.steps {
				c.add(s.after)
				d := l.Check(trip(0))
				if d.Pass != s.pass || d.Reason != s.reason || d.Wait != s.wait {
					t.Fatalf("step %d: got %+v, want pass %v reason %s wait %v", i, d, s.pass, s.reason, s.wait)
				}
			}
		})
	}
}

func TestTripletsAreSeparate(t *testing.T) {
	c := newClock()
	l := open(t, t.TempDir(), c, nil)
	l.Check(trip(0))
	c.add(10 * time.Minute)
	if d := l.Check(trip(0)); !d.Pass {
		t.Fatalf("retry: %+v", d)
	}
	if d := l.Check(trip(1)); d.Pass || d.Reason != New {
		t.Fatalf("second recipient: %+v", d)
	}
}

func TestExpiredEntriesAreSwept(t *testing.T) {
	c := newClock()
	l := open(t, t.TempDir(), c, nil)
	for i := range 10 {
		l.Check(trip(i))
	}
	c.add(10 * time.Minute)
	l.Check(trip(0)) // passes
	c.add(49 * time.Hour)
	l.Check(trip(99)) // sweeps the nine pending entries
	if n := l.Len(); n != 2 {
		t.Fatalf("after the retry window: %d entries, want 2", n)
	}
	c.add(35 * 24 * time.Hour)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := l.Len(); n != 0 {
		t.Fatalf("after expire: %d entries, want 0", n)
	}
}

func TestBoundedPendingFirst(t *testing.T) {
	c := newClock()
	l := open(t, t.TempDir(), c, func(o *Options) { o.MaxEntries = 10 })
	for i := range 3 { // three known triplets
		l.Check(trip(i))
	}
	c.add(10 * time.Minute)
	for i := range 3 {
		if !l.Check(trip(i)).Pass {
			t.Fatal("not passed")
		}
	}
	for i := 100; i < 200; i++ { // a flood of new triplets
		c.add(time.Second)
		l.Check(trip(i))
	}
	if n := l.Len(); n != 10 {
		t.Fatalf("%d entries, want 10", n)
	}
	for i := range 3 {
		if d := l.Check(trip(i)); !d.Pass {
			t.Errorf("known triplet %d dropped by the flood: %+v", i, d)
		}
	}
	for i := 193; i < 200; i++ { // the newest pending ones are kept
		c.add(0)
		if d := l.Check(trip(i)); d.Reason != TooEarly {
			t.Errorf("pending %d: %+v", i, d)
		}
	}
	// All passed and full: the least recently used known one goes.
	l2 := open(t, t.TempDir(), c, func(o *Options) { o.MaxEntries = 2 })
	l2.Check(trip(0))
	l2.Check(trip(1))
	c.add(10 * time.Minute)
	l2.Check(trip(0))
	l2.Check(trip(1))
	l2.Check(trip(0)) // trip(1) is now the least recently used
	l2.Check(trip(2))
	if d := l2.Check(trip(0)); !d.Pass {
		t.Errorf("recent known triplet dropped: %+v", d)
	}
	if d := l2.Check(trip(1)); d.Pass {
		t.Errorf("least recently used triplet kept: %+v", d)
	}
}

func TestConcurrentChecks(t *testing.T) {
	c := newClock()
	l := open(t, t.TempDir(), c, func(o *Options) { o.MaxEntries = 50 })
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				l.Check(trip(g*1000 + i))
				if i%50 == 0 {
					l.Flush()
				}
			}
		}()
	}
	wg.Wait()
	if n := l.Len(); n != 50 {
		t.Fatalf("%d entries, want 50", n)
	}
}

// TestFullListDropsExpiredFirst: when the list is full, a triplet whose
// time is over goes before a waiting one is evicted.
func TestFullListDropsExpiredFirst(t *testing.T) {
	c := newClock()
	l := open(t, t.TempDir(), c, func(o *Options) { o.MaxEntries = 3; o.Expire = time.Hour })
	l.Check(trip(0))
	c.add(10 * time.Minute)
	l.Check(trip(0)) // passed
	c.add(2 * time.Hour)
	// trip(0) expired; the sweep of a Check reaches it only after the
	// decision, so fill the list without Checks of other triplets first.
	l.mu.Lock()
	l.add(trip(1), c.Now())
	l.add(trip(2), c.Now())
	l.mu.Unlock()
	if d := l.Check(trip(3)); d.Reason != New {
		t.Fatalf("new triplet: %+v", d)
	}
	for i := 1; i <= 3; i++ {
		if d := l.Check(trip(i)); d.Reason != TooEarly {
			t.Errorf("waiting triplet %d evicted although an expired one was there: %+v", i, d)
		}
	}
	l.mu.Lock()
	evicted := l.evicted
	l.mu.Unlock()
	if evicted != 0 {
		t.Errorf("%d evicted, want 0", evicted)
	}
}
