package pgqueue

// The accept path against the database's failures: unreachable, a lost
// COMMIT (ambiguous), a crash after commits.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smtpkit/internal/queue"
	"smtpkit/internal/queue/queuetest"
	"smtpkit/internal/smtp"
)

// testUnreachable: with PostgreSQL down, Commit fails with 451 4.3.0 and
// nothing of the message remains once it is back.
func testUnreachable(t *testing.T, e *env) {
	ctx := context.Background()
	q := openTest(t, Options{Database: e.dsn, Courier: &queuetest.Courier{}, CommitTimeout: 5 * time.Second})
	if err := e.srv.Stop("immediate"); err != nil {
		t.Fatal(err)
	}
	w, err := q.Begin(queue.Envelope{From: mustAddr(t, "a@sender.example"), To: []smtp.Address{mustAddr(t, "b@dest.example")}})
	if err != nil {
		t.Fatalf("Begin needs no database: %v", err)
	}
	io.WriteString(w, testBody)
	start := time.Now()
	_, err = w.Commit()
	t.Logf("Commit with the database down answered in %v: %v", time.Since(start).Round(time.Millisecond), err)
	var se *smtp.Error
	if !errors.As(err, &se) || se.Reply.Code != smtp.CodeLocalError || se.Reply.Enhanced != smtp.EnhSystem.Temp() {
		t.Fatalf("Commit with the database down: %v, want 451 4.3.0", err)
	}
	if err := e.srv.Start(); err != nil {
		t.Fatal(err)
	}
	if l, err := q.List(ctx); err != nil || len(l) != 0 {
		t.Errorf("after the failed commit: %+v %v", l, err)
	}
	// The queue works again once the database is back.
	commit(t, q, "b@dest.example")
}

// proxy forwards connections from a loopback listener to PostgreSQL and,
// when armed, cuts the connection that sends COMMIT: before it reaches
// the server (drop) or after, losing only the answer (forward).
type proxy struct {
	ln      net.Listener
	target  string
	armed   atomic.Bool
	forward bool // forward the COMMIT before cutting
	cut     atomic.Int32

	// down refuses new connections (closed at once) while set; setDown
	// also closes those open.
	down  atomic.Bool
	mu    sync.Mutex
	conns map[net.Conn]bool
}

// setDown cuts the database off (every connection closed, new ones
// refused) or lets it through again.
func (p *proxy) setDown(down bool) {
	p.down.Store(down)
	if !down {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *proxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		p.conns = make(map[net.Conn]bool)
	}
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

// commitMsg is the simple-protocol Query message pgx sends for COMMIT.
var commitMsg = append([]byte{'Q', 0, 0, 0, 11}, "commit\x00"...)

func startProxy(t *testing.T, addr, target string) *proxy {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *proxy) serve(client net.Conn) {
	if p.down.Load() {
		client.Close()
		return
	}
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	p.track(client, true)
	defer p.track(client, false)
	defer client.Close()
	defer server.Close()
	var muted atomic.Bool // the answers are lost from here on
	go func() {
		defer client.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 && !muted.Load() {
				if _, err := client.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			data := buf[:n]
			if i := bytes.Index(data, commitMsg); i >= 0 && p.armed.CompareAndSwap(true, false) {
				muted.Store(true)
				if p.forward {
					server.Write(data)
					// Let the server act on it, then lose its answer.
					server.(*net.TCPConn).CloseWrite()
					io.Copy(io.Discard, server)
				} else {
					server.Write(data[:i])
				}
				p.cut.Add(1)
				return
			}
			if _, err := server.Write(data); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// testAmbiguousCommit: the connection is lost during COMMIT. When COMMIT
// never reached the server, the id is voided: 451, never delivered. When
// the server committed and only its answer was lost, the message is
// found: Commit succeeds and it is delivered once.
func testAmbiguousCommit(t *testing.T, e *env) {
	ctx := context.Background()
	for _, forward := range []bool{false, true} {
		p := startProxy(t, "127.17.3.2:0", e.srv.Addr())
		p.forward = forward
		dsn := strings.Replace(e.dsn, e.srv.Addr(), p.ln.Addr().String(), 1)
		c := queuetest.NewClock()
		courier := &queuetest.Courier{}
		q := openTest(t, Options{Database: dsn, Node: "amb", Courier: courier, Now: c.Now, CommitTimeout: 10 * time.Second})
		w, err := q.Begin(queue.Envelope{From: mustAddr(t, "a@sender.example"), To: []smtp.Address{mustAddr(t, "b@dest.example")}})
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, testBody)
		p.armed.Store(true)
		id, err := w.Commit()
		t.Logf("forward=%v: Commit: %v", forward, err)
		if p.cut.Load() != 1 {
			t.Fatalf("forward=%v: the proxy did not see the COMMIT", forward)
		}
		c.Advance(q.prepareHold() + time.Minute) // any prepare lease would have run out
		q.RunOnce(ctx)
		n := len(courier.Attempts())
		if !forward {
			var se *smtp.Error
			if !errors.As(err, &se) || se.Reply.Code != smtp.CodeLocalError {
				t.Fatalf("COMMIT lost before the server: %v, want 451", err)
			}
			if n != 0 {
				t.Errorf("a message answered 451 was delivered")
			}
			var void bool
			if err := q.pool.QueryRow(ctx, `SELECT void FROM messages`).Scan(&void); err != nil || !void {
				t.Errorf("the id is not voided: %v %v", void, err)
			}
		} else {
			if err != nil {
				t.Fatalf("COMMIT done, answer lost: %v, want success", err)
			}
			if n != 1 || courier.Attempts()[0].Attempt.ID != id {
				t.Errorf("committed message: %d attempts", n)
			}
		}
		q.Close()
		q.pool.Close()
		// Fresh database state for the second round.
		if _, err := e.srv.ExecIn(strings.TrimPrefix(cfgDB(e.dsn), "/"), `TRUNCATE messages CASCADE`); err != nil {
			t.Fatal(err)
		}
	}
}

func cfgDB(dsn string) string {
	i := strings.LastIndexByte(dsn, '/')
	db := dsn[i:]
	if j := strings.IndexByte(db, '?'); j >= 0 {
		db = db[:j]
	}
	return db
}

// testCrash: messages whose Commit returned survive `pg_ctl stop -m
// immediate` (no shutdown checkpoint: WAL recovery), and are delivered —
// those whose Publish the crash lost once their prepare lease runs out.
func testCrash(t *testing.T, e *env) {
	ctx := context.Background()
	c := queuetest.NewClock()
	courier := &queuetest.Courier{}
	q := openTest(t, Options{Database: e.dsn, Courier: courier, Now: c.Now})
	const n = 20
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := tryCommit(q, "r"+itoa(i)+"@dest.example")
			if err != nil {
				t.Error(err)
			}
			ids <- id
		}()
	}
	wg.Wait()
	close(ids)
	if err := e.srv.Stop("immediate"); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Start(); err != nil {
		t.Fatal(err)
	}
	q.Close()
	q = openTest(t, Options{Database: e.dsn, Courier: courier, Now: c.Now})
	l, err := q.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, s := range l {
		have[s.ID] = true
	}
	for id := range ids {
		if !have[id] {
			t.Errorf("committed message %s lost in the crash", id)
		}
	}
	c.Advance(q.prepareHold())
	q.RunOnce(ctx)
	if got := len(courier.Attempts()); got != n {
		t.Errorf("%d of %d delivered after the crash", got, n)
	}
}

// testLarge: a message of 2.5 MiB is stored in three chunks of at most
// 1 MiB and reaches the courier octet for octet, with its prepended
// fields; a chunk that goes missing makes the read fail rather than
// deliver a truncated message.
func testLarge(t *testing.T, e *env) {
	ctx := context.Background()
	c := queuetest.NewClock()
	courier := &queuetest.Courier{}
	q := openTest(t, Options{Database: e.dsn, Courier: courier, Now: c.Now})
	var body bytes.Buffer
	body.WriteString("Subject: big\r\n\r\n")
	for i := 0; body.Len() < 5<<19; i++ {
		fmt.Fprintf(&body, "line %07d of a large message, to fill the chunks\r\n", i)
	}
	send := func() string {
		w, err := q.Begin(queue.Envelope{From: mustAddr(t, "a@sender.example"), To: []smtp.Address{mustAddr(t, "b@dest.example")}})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Prepend("DKIM-Signature: v=1; big\r\n"); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(body.Bytes()); err != nil {
			t.Fatal(err)
		}
		id, err := w.Commit()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	id := send()
	var chunks, longest int
	if err := q.pool.QueryRow(ctx, `SELECT count(*), max(length(data)) FROM chunks WHERE message_id = $1`, id).Scan(&chunks, &longest); err != nil {
		t.Fatal(err)
	}
	if chunks != 3 || longest != chunkSize {
		t.Errorf("%d chunks, the longest %d octets; want 3 of at most %d", chunks, longest, chunkSize)
	}
	q.RunOnce(ctx)
	got := courier.Attempts()
	if len(got) != 1 || got[0].Body != "DKIM-Signature: v=1; big\r\n"+body.String() {
		t.Fatalf("delivered %d attempts, body of %d octets; want %d", len(got), len(got[0].Body), body.Len()+26)
	}
	// A message whose last chunk is gone is not delivered short.
	id = send()
	if _, err := q.pool.Exec(ctx, `DELETE FROM chunks WHERE message_id = $1 AND seq = 2`, id); err != nil {
		t.Fatal(err)
	}
	q.RunOnce(ctx)
	// The courier's read fails at the missing chunk (a real one would
	// abandon DATA before the final dot): the attempt is a temporary
	// failure, not a delivery.
	d, err := q.Show(ctx, id)
	if err != nil || d.Recipients[0].State != queue.Deferred || !strings.Contains(d.Recipients[0].LastReply, "octets stored") {
		t.Errorf("the damaged message: %+v %v, want deferred with the read error", d.Summary, err)
	}
}

// testRecordOutage: the database is cut off while an attempt runs; the
// attempt's record is tried again until it is back (within half a
// lease), so the delivered recipient is recorded once and not attempted
// again.
func testRecordOutage(t *testing.T, e *env) {
	ctx := context.Background()
	p := startProxy(t, "127.17.3.3:0", e.srv.Addr())
	dsn := strings.Replace(e.dsn, e.srv.Addr(), p.ln.Addr().String(), 1)
	c := queuetest.NewClock()
	bc := &blockingCourier{started: make(chan struct{}, 1), release: make(chan struct{})}
	q := openTest(t, Options{Database: dsn, Courier: bc, Now: c.Now, Lease: 6 * time.Second, CommitTimeout: 2 * time.Second})
	id := commit(t, q, "bob@dest.example")
	done := make(chan int)
	go func() { done <- q.RunOnce(ctx) }()
	select {
	case <-bc.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the attempt never started")
	}
	p.setDown(true)
	close(bc.release)                  // delivered while the database is away
	time.Sleep(500 * time.Millisecond) // the outage's length is what is under test
	p.setDown(false)
	if n := <-done; n != 1 {
		t.Errorf("RunOnce made %d attempts, want 1", n)
	}
	if _, err := q.Show(ctx, id); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("the delivered message is still queued after the outage: %v", err)
	}
	c.Advance(time.Hour)
	q.RunOnce(ctx)
	if n := bc.n.Load(); n != 1 {
		t.Errorf("%d attempts, want 1: the outage turned the delivery into a duplicate", n)
	}
}
