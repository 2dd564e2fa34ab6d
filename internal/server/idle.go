package server

import (
	"errors"
	"os"
	"time"
)

// Idle sessions. Most of what an idle session costs is its goroutine's
// stack: handling EHLO (parsing, logging, TLS) grows it to 8 KiB, and the
// garbage collector halves a stack only while less than a quarter of it is
// in use, so a session blocked in a read some frames deep keeps 4 KiB. A
// session that gets nothing from the client for idleHandOffAfter between
// transactions therefore hands the wait to a fresh goroutine, which starts
// with the smallest stack (2 KiB) and blocks right at its start; the grown
// goroutine returns and its stack is freed at once. When input arrives the
// new goroutine carries the session on.
//
// Handing off at every wait was measured to cost a third of the
// throughput of a one-session benchmark on two cores (each go statement
// wakes another processor), so a session first waits in its own goroutine,
// under a read deadline idleHandOffAfter away. That is two deadline
// changes per wait between transactions and nothing more while the client
// keeps the session busy. Waits inside a transaction never hand off: a
// client that idles there is rare, and the transaction's state is in use.
//
// One goroutine serves a session at a time: the one that hands off touches
// the session no more after the go statement, which orders everything it
// did before everything the new one does. The new goroutine restores the
// command deadline and then marks the session idle again, so that a
// shutdown's interrupt (interruptIfIdle, a deadline in the past) that came
// meanwhile is applied again and the client gets 421 as before. Whichever
// goroutine sees the session end runs end, which closes it exactly once.

// idleHandOffAfter is how long a session waits for the next command in its
// own goroutine. It is far below any round trip that matters for memory
// (RFC 5321 §4.5.3.2.7 lets a client idle for 5 minutes) and far above a
// busy client's round trip on a LAN.
const idleHandOffAfter = 50 * time.Millisecond

// run reads and handles commands until the session ends, or until it hands
// the wait for the client's next command to a fresh goroutine.
func (s *session) run() {
	for !s.quit {
		line, err := s.nextCommand(true)
		if err == errHandedOff {
			return
		}
		s.step(line, err)
	}
	s.end()
}

// armBriefWait sets the read deadline idleHandOffAfter away when the
// session may hand off its wait (between transactions, admitted) and that
// is sooner than the command deadline; it reports whether it did. A
// session that was not admitted (one served directly, as the fuzz target
// does) keeps its goroutine, so that serve returns only at its end.
func (s *session) armBriefWait() bool {
	if s.txn.active || !s.admitted {
		return false
	}
	t := s.srv.now().Add(idleHandOffAfter)
	if !t.Before(s.rdl) {
		return false
	}
	s.conn.SetReadDeadline(t)
	return true
}

// waitBriefly waits for input until the brief deadline. When nothing came
// it starts resume and reports handedOff; otherwise it restores the command
// deadline and returns what awaitInput would have.
func (s *session) waitBriefly() (handedOff bool, err error) {
	s.dropCommandReader()
	n, err := s.conn.Read(s.wait[:])
	if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		// The brief deadline, or a shutdown's interrupt: resume tells.
		go s.resume()
		return true, nil
	}
	s.conn.SetReadDeadline(s.rdl)
	s.setIdle(true) // re-applies an interrupt the line above overwrote
	return false, s.gotInput(n, err)
}

// resume is a fresh goroutine's start: restore the command deadline, wait
// for input, then serve on. It blocks with as few and as small frames as
// possible below it, since the runtime starts new goroutines with a larger
// stack when the average goroutine uses more than about 1 KiB.
func (s *session) resume() {
	s.conn.SetReadDeadline(s.rdl)
	s.setIdle(true) // after the deadline, so that a shutdown's interrupt is not lost
	s.carryOn(s.conn.Read(s.wait[:]))
}

// carryOn serves the session on from the n bytes that resume's read got.
func (s *session) carryOn(n int, err error) {
	err = s.gotInput(n, err)
	var line []byte
	if err == nil {
		line, err = s.readLine()
	}
	s.setIdle(false)
	s.step(line, err)
	s.run()
}
