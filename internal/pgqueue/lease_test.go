package pgqueue

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smtpkit/internal/queue"
	"smtpkit/internal/queue/queuetest"
	"smtpkit/internal/smtp"
)

const testBody = "From: a@sender.example\r\nSubject: t\r\n\r\nbody\r\n"

func mustAddr(t testing.TB, s string) smtp.Address {
	t.Helper()
	a, err := smtp.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// commit queues one message from a@sender.example to rcpts.
func commit(t *testing.T, q *Queue, rcpts ...string) string {
	t.Helper()
	id, err := tryCommit(q, rcpts...)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// tryCommit is commit for other goroutines than the test's.
func tryCommit(q *Queue, rcpts ...string) (string, error) {
	env := queue.Envelope{}
	var err error
	if env.From, err = smtp.ParseAddress("a@sender.example"); err != nil {
		return "", err
	}
	for _, r := range rcpts {
		a, err := smtp.ParseAddress(r)
		if err != nil {
			return "", err
		}
		env.To = append(env.To, a)
	}
	w, err := q.Begin(env)
	if err != nil {
		return "", err
	}
	io.WriteString(w, testBody)
	return w.Commit()
}

func testMigrations(t *testing.T, e *env) {
	c := queuetest.NewClock()
	q := openTest(t, Options{Database: e.dsn, Courier: &queuetest.Courier{}, Now: c.Now})
	q.Close()
	// A second Open applies nothing again; the version is recorded once.
	q = openTest(t, Options{Database: e.dsn, Courier: &queuetest.Courier{}, Now: c.Now})
	var n, v int
	if err := q.pool.QueryRow(context.Background(), `SELECT count(*), max(version) FROM schema_version`).Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	if n != SchemaVersion() || v != SchemaVersion() {
		t.Errorf("schema_version has %d rows, max %d; want %d", n, v, SchemaVersion())
	}
	// A database newer than the binary is refused.
	if _, err := q.pool.Exec(context.Background(), `INSERT INTO schema_version VALUES ($1)`, SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), Options{Database: e.dsn, Courier: &queuetest.Courier{}, TmpDir: t.TempDir()}); err == nil {
		t.Error("Open accepted a schema newer than the binary")
	}
}

// testLeaseTakeover: a recipient leased by one node is not leased by
// another until the lease runs out; then the other takes it over, and the
// first node's late result is dropped.
func testLeaseTakeover(t *testing.T, e *env) {
	ctx := context.Background()
	c := queuetest.NewClock()
	a := openTest(t, Options{Database: e.dsn, Node: "node-a", Courier: &queuetest.Courier{}, Now: c.Now, Lease: time.Minute})
	b := openTest(t, Options{Database: e.dsn, Node: "node-b", Courier: &queuetest.Courier{}, Now: c.Now, Lease: time.Minute})
	id := commit(t, a, "r1@one.example", "r2@one.example", "r3@two.example")
	jobs, err := a.Lease(ctx, c.Now(), 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 || jobs[0].ID != id || len(jobs[0].Rcpts)+len(jobs[1].Rcpts) != 3 {
		t.Fatalf("jobs %+v, want two (grouped by domain) with 3 recipients", jobs)
	}
	for _, j := range jobs {
		if j.Domain == "one.example" && len(j.Rcpts) != 2 {
			t.Errorf("one.example job %+v", j)
		}
	}
	if got, err := b.Lease(ctx, c.Now(), 100); err != nil || len(got) != 0 {
		t.Fatalf("node-b leased %+v (%v) while node-a holds the lease", got, err)
	}
	l, _ := b.List(ctx)
	for _, r := range l[0].Recipients {
		if !r.InFlight {
			t.Errorf("leased recipient not shown in flight: %+v", r)
		}
	}
	// Renewal keeps it.
	c.Advance(50 * time.Second)
	if err := a.Renew(ctx, c.Now(), jobs); err != nil {
		t.Fatal(err)
	}
	c.Advance(50 * time.Second)
	if got, _ := b.Lease(ctx, c.Now(), 100); len(got) != 0 {
		t.Fatalf("node-b leased a renewed lease: %+v", got)
	}
	// node-a "dies": its lease runs out, node-b takes over.
	c.Advance(time.Minute)
	taken, err := b.Lease(ctx, c.Now(), 100)
	if err != nil || len(taken) != 2 {
		t.Fatalf("node-b after expiry: %+v %v", taken, err)
	}
	// node-a's late result is dropped; node-b's is recorded.
	if err := a.Record(ctx, jobs[0], results(jobs[0].Rcpts, smtp.E(smtp.CodeMailboxUnavail, smtp.EnhBadMailbox, "late"))); err != nil {
		t.Fatal(err)
	}
	for _, j := range taken {
		if err := b.Record(ctx, j, results(j.Rcpts, nil)); err != nil {
			t.Fatal(err)
		}
	}
	if l, _ := b.List(ctx); len(l) != 0 {
		t.Errorf("after node-b delivered: %+v", l)
	}
	var bounces int
	b.pool.QueryRow(ctx, `SELECT count(*) FROM messages WHERE sender = ''`).Scan(&bounces)
	if bounces != 0 {
		t.Errorf("node-a's dropped 550 made %d bounces", bounces)
	}
}

func results(rcpts []string, err error) []queue.Result {
	out := make([]queue.Result, len(rcpts))
	for i, r := range rcpts {
		out[i] = queue.Result{Rcpt: r, Err: err}
	}
	return out
}

// overlapCourier fails the test when two attempts for one recipient run
// at once, and counts deliveries.
type overlapCourier struct {
	t         *testing.T
	mu        sync.Mutex
	busy      map[string]bool
	delivered map[string]int
	total     atomic.Int32
}

func (c *overlapCourier) Deliver(_ context.Context, d *queue.Attempt) []queue.Result {
	c.mu.Lock()
	for _, r := range d.Recipients {
		if c.busy[r] {
			c.t.Errorf("%s attempted by two workers at once", r)
		}
		c.busy[r] = true
	}
	c.mu.Unlock()
	rc, _ := d.Open()
	io.Copy(io.Discard, rc) // the attempt's I/O, from the database
	rc.Close()
	c.mu.Lock()
	for _, r := range d.Recipients {
		c.busy[r] = false
		c.delivered[r]++
	}
	c.mu.Unlock()
	c.total.Add(int32(len(d.Recipients)))
	return results(d.Recipients, nil)
}

// testTwoNodes: two nodes run their schedulers on one database; every
// recipient is delivered once, never by both at once.
func testTwoNodes(t *testing.T, e *env) {
	courier := &overlapCourier{t: t, busy: map[string]bool{}, delivered: map[string]int{}}
	a := openTest(t, Options{Database: e.dsn, Node: "node-a", Courier: courier, Concurrency: 4, PollInterval: 50 * time.Millisecond})
	b := openTest(t, Options{Database: e.dsn, Node: "node-b", Courier: courier, Concurrency: 4, PollInterval: 50 * time.Millisecond})
	const msgs, per = 60, 3
	for i := range msgs {
		var rcpts []string
		for k := range per {
			rcpts = append(rcpts, "u"+itoa(i)+"@d"+itoa(k)+".example")
		}
		q := a
		if i%2 == 1 {
			q = b
		}
		commit(t, q, rcpts...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, q := range []*Queue{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); q.Run(ctx) }()
	}
	deadline := time.Now().Add(10 * time.Second)
	for courier.total.Load() < msgs*per && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // polling for the outcome, bounded by the deadline
	}
	cancel()
	wg.Wait()
	if got := courier.total.Load(); got != msgs*per {
		t.Fatalf("%d deliveries, want %d", got, msgs*per)
	}
	for r, n := range courier.delivered {
		if n != 1 {
			t.Errorf("%s delivered %d times", r, n)
		}
	}
	if l, _ := a.List(context.Background()); len(l) != 0 {
		t.Errorf("%d messages left", len(l))
	}
}

func itoa(i int) string {
	return strings.TrimLeft(string([]byte{byte('0' + i/100%10), byte('0' + i/10%10), byte('0' + i%10)}), "0") + "x"
}

// testNotifyWakes: a worker whose poll interval is an hour delivers a
// message another node queued within seconds: NOTIFY woke it.
func testNotifyWakes(t *testing.T, e *env) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	courier := &queuetest.Courier{}
	worker := openTest(t, Options{Database: e.dsn, Node: "worker", Courier: courier, PollInterval: time.Hour})
	other := openTest(t, Options{Database: e.dsn, Node: "other", Courier: &queuetest.Courier{}})
	done := make(chan struct{})
	go func() { defer close(done); worker.Run(ctx) }()
	// Wait until the worker listens (its first pass is over by then).
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		other.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'`,
			appName("worker")).Scan(&n)
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker never listened")
		}
		time.Sleep(10 * time.Millisecond) // polling, bounded by the deadline
	}
	start := time.Now()
	commit(t, other, "bob@dest.example")
	for len(courier.Attempts()) == 0 {
		if time.Since(start) > 5*time.Second {
			t.Fatal("the message was not delivered within 5s: NOTIFY did not wake the worker")
		}
		time.Sleep(5 * time.Millisecond) // polling, bounded
	}
	t.Logf("delivered %v after the commit on the other node", time.Since(start).Round(time.Millisecond))
	cancel()
	<-done
}

// testBounceAtomic: when the bounce cannot be queued, the failure is not
// recorded either (one transaction); once it can, both are.
func testBounceAtomic(t *testing.T, e *env) {
	ctx := context.Background()
	c := queuetest.NewClock()
	var signErr atomic.Bool
	signErr.Store(true)
	sign := func([]byte) (string, error) {
		if signErr.Load() {
			return "", errors.New("signing key unavailable")
		}
		return "X-Test-Signature: yes\r\n", nil
	}
	courier := &queuetest.Courier{}
	courier.Script("gone@dest.example", smtp.E(smtp.CodeMailboxUnavail, smtp.EnhBadMailbox, "no such user"))
	q := openTest(t, Options{Database: e.dsn, Courier: courier, Now: c.Now, Sign: sign, Lease: time.Minute})
	id := commit(t, q, "gone@dest.example")
	q.RunOnce(ctx)
	d, err := q.Show(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if r := d.Recipients[0]; r.State != queue.Queued || r.Attempts != 0 {
		t.Fatalf("failure recorded without its bounce: %+v", r)
	}
	var n int
	q.pool.QueryRow(ctx, `SELECT count(*) FROM messages WHERE sender = ''`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d bounces queued", n)
	}
	signErr.Store(false)
	c.Advance(time.Minute) // the lease of the attempt whose record failed runs out
	q.RunOnce(ctx)
	if l, _ := q.List(ctx); len(l) != 0 {
		t.Errorf("queue after failure and bounce: %+v", l)
	}
	var dsns []queuetest.Delivery
	for _, d := range courier.To("a@sender.example") {
		if d.Attempt.From == "" {
			dsns = append(dsns, d)
		}
	}
	if len(dsns) != 1 || !strings.HasPrefix(dsns[0].Body, "X-Test-Signature: yes\r\n") || !strings.Contains(dsns[0].Body, "Action: failed") {
		t.Errorf("DSNs %+v", dsns)
	}
}

// domainCourier records the most attempts to one domain at once.
type domainCourier struct {
	mu        sync.Mutex
	now, peak map[string]int
	release   chan struct{}
	total     atomic.Int32
}

func (c *domainCourier) Deliver(ctx context.Context, d *queue.Attempt) []queue.Result {
	c.mu.Lock()
	c.now[d.Domain]++
	c.peak[d.Domain] = max(c.peak[d.Domain], c.now[d.Domain])
	c.mu.Unlock()
	select { // hold the attempt until the test lets it go
	case <-c.release:
	case <-ctx.Done():
	}
	c.mu.Lock()
	c.now[d.Domain]--
	c.mu.Unlock()
	c.total.Add(int32(len(d.Recipients)))
	return results(d.Recipients, nil)
}

// testPerDomain: with PerDomain 2 one node never runs more than two
// attempts to one domain at once, while another domain gets its slots.
func testPerDomain(t *testing.T, e *env) {
	c := &domainCourier{now: map[string]int{}, peak: map[string]int{}, release: make(chan struct{})}
	q := openTest(t, Options{Database: e.dsn, Courier: c, Concurrency: 8, PerDomain: 2, PollInterval: 20 * time.Millisecond})
	for i := range 10 {
		commit(t, q, "u"+itoa(i)+"@busy.example")
	}
	commit(t, q, "v@other.example")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); q.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	running := func() (busy, other int) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.now["busy.example"], c.now["other.example"]
	}
	// Both domains' attempts start (8 slots free) before any is let go.
	for b, o := running(); (b < 2 || o < 1) && time.Now().Before(deadline); b, o = running() {
		time.Sleep(10 * time.Millisecond) // polling, bounded by the deadline
	}
	for c.total.Load() < 11 && time.Now().Before(deadline) {
		select {
		case c.release <- struct{}{}:
		case <-time.After(50 * time.Millisecond): // nothing running yet; look again, bounded
		}
	}
	cancel()
	<-done
	if c.total.Load() != 11 {
		t.Fatalf("%d of 11 delivered", c.total.Load())
	}
	if c.peak["busy.example"] != 2 || c.peak["other.example"] != 1 {
		t.Errorf("peak attempts at once %v, want busy.example 2, other.example 1", c.peak)
	}
}

// blockingCourier holds every attempt until release is closed and counts
// the attempts per node.
type blockingCourier struct {
	started chan struct{}
	release chan struct{}
	n       atomic.Int32
}

func (c *blockingCourier) Deliver(ctx context.Context, d *queue.Attempt) []queue.Result {
	c.n.Add(1)
	select {
	case c.started <- struct{}{}:
	default:
	}
	select {
	case <-c.release:
	case <-ctx.Done():
	}
	return results(d.Recipients, nil)
}

// testRenewed: an attempt that runs for several leases keeps its lease
// (renewed by the running node); another node polling all along never
// takes the recipient over, and it is delivered once.
func testRenewed(t *testing.T, e *env) {
	const lease = 300 * time.Millisecond
	a := &blockingCourier{started: make(chan struct{}, 1), release: make(chan struct{})}
	b := &blockingCourier{started: make(chan struct{}, 1), release: make(chan struct{})}
	close(b.release)
	qa := openTest(t, Options{Database: e.dsn, Node: "node-a", Courier: a, Lease: lease, PollInterval: 20 * time.Millisecond})
	qb := openTest(t, Options{Database: e.dsn, Node: "node-b", Courier: b, Lease: lease, PollInterval: 20 * time.Millisecond})
	commit(t, qa, "slow@dest.example")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); qa.Run(ctx) }()
	select {
	case <-a.started:
	case <-time.After(10 * time.Second):
		t.Fatal("node-a never started the attempt")
	}
	wg.Add(1)
	go func() { defer wg.Done(); qb.Run(ctx) }()
	// Five leases long: node-b polls about 75 times meanwhile.
	time.Sleep(5 * lease) // the attempt's duration is what is under test
	if n := b.n.Load(); n != 0 {
		t.Errorf("node-b took over a renewed lease (%d attempts)", n)
	}
	close(a.release)
	deadline := time.Now().Add(10 * time.Second)
	for {
		l, err := qa.List(ctx)
		if err == nil && len(l) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not delivered: %+v %v", l, err)
		}
		time.Sleep(10 * time.Millisecond) // polling, bounded
	}
	cancel()
	wg.Wait()
	if a.n.Load() != 1 || b.n.Load() != 0 {
		t.Errorf("attempts: node-a %d, node-b %d; want 1 and 0", a.n.Load(), b.n.Load())
	}
}

// testCounts: Counts agrees with List.
func testCounts(t *testing.T, e *env) {
	ctx := context.Background()
	c := queuetest.NewClock()
	courier := &queuetest.Courier{}
	courier.Script("later@dest.example", smtp.E(smtp.CodeLocalError, smtp.EnhSystem.Temp(), "later"))
	q := openTest(t, Options{Database: e.dsn, Courier: courier, Now: c.Now})
	n, err := q.Counts(ctx)
	if err != nil || n.Messages != 0 || !n.Oldest.IsZero() || len(n.Recipients) != len(queue.States) {
		t.Fatalf("empty queue: %+v %v", n, err)
	}
	first := commit(t, q, "later@dest.example", "now@dest.example")
	c.Advance(time.Minute)
	second := commit(t, q, "x@other.example")
	if err := q.Hold(ctx, second); err != nil {
		t.Fatal(err)
	}
	q.RunOnce(ctx)
	n, err = q.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := q.List(ctx)
	var bytes int64
	states := map[queue.State]int{}
	for _, s := range l {
		bytes += s.Size
		for _, r := range s.Recipients {
			states[r.State]++
		}
	}
	if n.Messages != 2 || n.Held != 1 || n.Bytes != bytes || !n.Oldest.Equal(l[0].Arrival) || l[0].ID != first {
		t.Errorf("counts %+v, list %+v", n, l)
	}
	for _, s := range queue.States {
		if n.Recipients[s] != states[s] {
			t.Errorf("%s: counts %d, list %d", s, n.Recipients[s], states[s])
		}
	}
	if states[queue.Deferred] != 1 || states[queue.Delivered] != 1 || states[queue.Queued] != 1 {
		t.Errorf("states %v", states)
	}
}
