package server

import (
	"fmt"
	"runtime/debug"
)

// The panic fence. A panic in a session, or in the Backend it calls, must
// end that session only: an unrecovered panic in any goroutine ends the
// process, and with it every other session and every message in flight.
// Each goroutine that serves a session (serve, and resume after an idle
// handoff) defers fence. It logs the panic with its stack once, at error
// level, tells the client 421 4.3.0 if the connection still takes it
// (unknown errors are temporary: the client retries), aborts the message
// being received, and closes the session, which gives its slot back. The
// session's transaction is not trusted after a panic, so nothing of it is
// committed.

// fence recovers a panic of the goroutine serving s and ends s. It must be
// deferred directly (recover works only there).
func (s *session) fence() {
	v := recover()
	if v == nil {
		return
	}
	if !s.admitted {
		panic(v) // served directly (the fuzz target): let the caller see it
	}
	s.log.Error("panic in session, closing it", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	s.endAfterPanic()
}

// endAfterPanic does what end does, each step guarded on its own: the
// state the panic left may make any of them panic again.
func (s *session) endAfterPanic() {
	guard := func(step func()) {
		defer func() { recover() }()
		step()
	}
	if w := s.openWriter; w != nil {
		s.openWriter = nil
		guard(w.Abort)
	}
	s.txn = txn{}
	guard(func() {
		s.conn.queue(replyLocalErrorClosing(s.srv.opts.Hostname), s.esmtp)
		s.conn.flushFinal()
	})
	guard(s.conn.release)
	s.close()
}
