package server

import (
	"bytes"
	"errors"
	"os"
	"time"
)

// Idle sessions. Most of what an idle session costs is its goroutine's
// stack: handling EHLO (parsing, logging, TLS) grows it to 8 KiB, and the
// garbage collector halves a stack only while less than a quarter of it is
// in use, so a session blocked in a read some frames deep keeps 4 KiB. A
// session that gets nothing from the client for about idleHandOffAfter
// between transactions therefore hands the wait to a fresh goroutine,
// which starts with the smallest stack (2 KiB) and blocks right at its
// start; the grown goroutine returns and its stack is freed at once. When
// input arrives the new goroutine carries the session on.
//
// Handing off at every wait was measured to cost a third of the
// throughput of a one-session benchmark on two cores (each go statement
// wakes another processor), and waiting first under a brief read deadline
// cost two deadline changes (runtime timer changes) per message. So a
// session waits under its command deadline, marked parked, and nothing
// else happens while the client keeps it busy. One sweeper per server
// (sweepIdle, every idleHandOffAfter) finds the sessions that were parked
// at its previous sweep and have not been busy since, and interrupts each
// one's read the way a shutdown does: a read deadline in the past, with
// handOff set to asked. The session whose read fails so starts resume and
// returns; one whose read got input instead puts its command deadline back
// (setIdle) and goes on. Waits inside a transaction never hand off: a
// client that idles there is rare, and the transaction's state is in use.
//
// One goroutine serves a session at a time: the one that hands off touches
// the session no more after the go statement, which orders everything it
// did before everything the new one does. The new goroutine restores the
// command deadline and then marks the session idle again, so that a
// shutdown's interrupt (interruptIfIdle, a deadline in the past) that came
// meanwhile is applied again and the client gets 421 as before. Whichever
// goroutine sees the session end runs end, which closes it exactly once.
// The fields the sweeper reads or writes (idle, parked, seen, handOff) are
// guarded by conn.mu, and the sweeper holds Server.mu first, as Shutdown
// does. The wait and its handoff are the connection's (conn, below); what
// runs after it is the session's (run, resume).

// idleHandOffAfter is the sweeper's period: a session hands off its wait
// after between one and two of them without input. It is far below any
// wait that matters for memory (RFC 5321 §4.5.3.2.7 lets a client idle for
// 5 minutes) and far above a busy client's round trip. It is short so
// that, while many sessions open at once, the stacks that handoffs free are
// taken again by the sessions opening next; a sweep of 10,000 sessions
// takes a fraction of a millisecond.
const idleHandOffAfter = 100 * time.Millisecond

// handOffState is where a parked session is in its handoff.
type handOffState uint8

const (
	handOffNone  handOffState = iota
	handOffAsked              // the sweeper interrupted the read
	handOffDone               // a fresh goroutine waits (resume)
)

// run reads and handles commands until the session ends, or until it hands
// the wait for the client's next command to a fresh goroutine (resume).
func (s *session) run() {
	for !s.quit {
		line, err := s.conn.nextCommand(!s.state.inTxn(), s.mayPark())
		if err == errHandedOff {
			go s.resume() // the last thing this goroutine does with the session
			return
		}
		s.step(line, err)
	}
	s.end()
}

// mayPark reports whether the session may hand off its wait for the next
// command: between transactions, and admitted. A session that was not
// admitted (one served directly, as the fuzz target does) keeps its
// goroutine, so that serve returns only at its end.
func (s *session) mayPark() bool { return !s.state.inTxn() && s.admitted }

// resume is a fresh goroutine's start: wait for input (conn.resumed), then
// serve on. Its panics are fenced like serve's (fence.go). It blocks with
// as few and as small frames as possible below it, since the runtime
// starts new goroutines with a larger stack when the average goroutine
// uses more than about 1 KiB.
func (s *session) resume() {
	defer s.fence()
	line, err := s.conn.resumed()
	s.step(line, err)
	s.run()
}

// waitParked waits for input as awaitInput does. When the read was
// interrupted for a handoff it reports handedOff; the session then starts
// resume.
func (c *conn) waitParked() (handedOff bool, err error) {
	c.dropCommandReader()
	n, err := c.transport.Read(c.waitBuf[:])
	if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) && c.takeHandOff() {
		return true, nil
	}
	err = c.gotInput(n, err)
	// No longer parked, so that the sweeper leaves the rest of the wait
	// alone; busy at once when the whole line is here, since reading it
	// cannot block (that spares nextCommand's setIdle(false)).
	whole := err == nil && bytes.IndexByte(c.waitBuf[:n], '\n') >= 0
	c.setIdle(!whole && err == nil, false)
	return false, err
}

// takeHandOff reports whether the sweeper asked for the handoff whose
// interrupt ended the read, and marks it done. During a shutdown the
// interrupt is the shutdown's too, and the session ends with 421.
func (c *conn) takeHandOff() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.handOff != handOffAsked || c.closing.Load() {
		return false
	}
	c.handOff = handOffDone
	return true
}

// resumed is the wait of a goroutine that took over a handed-off session:
// restore the command deadline (in stress mode, arm the short one:
// stress.go), mark the session idle again, and read the command that
// comes.
func (c *conn) resumed() ([]byte, error) {
	c.transport.SetReadDeadline(c.readDeadline())
	c.setIdle(true, false) // after the deadline, so that a shutdown's interrupt is not lost
	return c.carryOn(c.transport.Read(c.waitBuf[:]))
}

// carryOn reads the command line begun by the n bytes that resumed's read
// got. It is apart from the read so that the frame blocked there stays
// small.
func (c *conn) carryOn(n int, err error) ([]byte, error) {
	err = c.gotInput(n, err)
	var line []byte
	if err == nil {
		line, err = c.readLine()
	}
	c.setIdle(false, false)
	return line, err
}

// setIdle marks the session idle (waiting for a command outside a
// transaction) or busy; park marks the idle wait as one the sweeper may
// interrupt for a handoff. Marking a busy session busy again takes no
// lock: only the goroutine serving the session writes idle, and a busy
// session has nothing for the sweeper or a shutdown.
func (c *conn) setIdle(idle, park bool) {
	if !idle && !c.idle {
		return
	}
	c.mu.Lock()
	if c.handOff == handOffAsked {
		// The sweeper's interrupt came, but so did input: the read
		// deadline on the connection is no longer readArmed, which
		// setReadDeadline believes armed. Put it back.
		c.handOff = handOffNone
		c.raw.SetReadDeadline(c.readDeadline())
	}
	c.idle, c.parked = idle, park
	if !idle {
		c.seen, c.handOff = false, handOffNone
	}
	if idle && c.closing.Load() {
		c.raw.SetReadDeadline(time.Now())
	}
	c.mu.Unlock()
}

// interruptIfIdle wakes a session waiting for a command outside a
// transaction so that it can say 421 during shutdown.
func (c *conn) interruptIfIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle {
		c.raw.SetReadDeadline(time.Now())
	}
}

// interrupt ends a session whatever it is doing (shutdown grace is over).
func (c *conn) interrupt() {
	c.raw.SetDeadline(time.Now())
}

// sweepIdle runs sweepOnce every idleHandOffAfter until stop is closed.
func (s *Server) sweepIdle(stop <-chan struct{}) {
	defer s.active.Done()
	t := time.NewTicker(idleHandOffAfter)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.sweepOnce()
		}
	}
}

// sweepOnce asks every session that was parked at the previous sweep, and
// has not been busy since, to hand off its wait; it notes the others that
// are parked now. It returns how many it asked.
func (s *Server) sweepOnce() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosing() {
		return 0
	}
	n := 0
	for sess := range s.sessions {
		if sess.conn.sweep() {
			n++
		}
	}
	return n
}

// sweep is sweepOnce for one session; it reports whether it asked.
func (c *conn) sweep() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.parked || c.handOff != handOffNone {
		return false
	}
	if !c.seen {
		c.seen = true
		return false
	}
	c.handOff = handOffAsked
	c.raw.SetReadDeadline(time.Now())
	return true
}
