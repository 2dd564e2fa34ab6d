package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// pregreet.go: early talkers. RFC 5321 §4.3.1 has the client wait for
// the greeting before it sends anything; spam software that fires its
// commands at once does not. With Listener.Pregreet set on an mx
// listener the server waits that long before its 220, and a client
// that sends anything meanwhile is answered 554 and dropped (Postfix's
// postscreen_greet_wait, with the "drop" action). The Backend's Connect
// hook (DNSBL lookups, a milter's connect stage) runs during the wait,
// so the delay costs a legitimate client nothing more than the lookups
// would. Trusted clients skip the wait; a shutdown ends it (421).

// pregreetWait is how long this session waits before its greeting: 0
// unless the listener is mx with a pregreet and the client is untrusted.
func (s *session) pregreetWait() time.Duration {
	if s.listener.Role != RoleMX || s.listener.Pregreet <= 0 || s.info.Trusted {
		return 0
	}
	return s.listener.Pregreet
}

// beforeGreeting runs the Connect hook and, when the session has a
// pregreet wait, the wait beside it. It reports false when the session
// is over (refused by the hook, an early talker, a shutdown, the client
// gone); the reply, if any, is queued.
func (s *session) beforeGreeting() bool {
	wait := s.pregreetWait()
	if wait == 0 {
		return s.connectHook()
	}
	var hookDone chan error
	if h := s.hooks(); h != nil {
		s.hooked = true
		hookDone = make(chan error, 1)
		ctx, info := s.backendContext(), &s.info // the wait below touches neither
		go connectAside(h, ctx, info, hookDone)
	}
	talked, err := s.conn.awaitSilence(wait)
	var hookErr error
	if hookDone != nil {
		hookErr = <-hookDone // Connect has returned before anything else happens
		if p, ok := hookErr.(hookPanic); ok {
			panic(p.v) // on the session's goroutine, where the fence (fence.go) ends the session only
		}
	}
	switch {
	case talked:
		s.log.Info("early talker refused", "pregreet", wait.String())
		s.srv.obs.EarlyTalker(s.info.Listener)
		s.quit = true
		s.reply(replyEarlyTalker(s.srv.opts.Hostname))
		return false
	case errors.Is(err, errShuttingDown):
		s.quit = true
		s.reply(replyShuttingDown(s.srv.opts.Hostname))
		return false
	case err != nil:
		s.log.Debug("client gone before the greeting", "err", err)
		return false
	}
	return s.connectResult(hookErr)
}

// awaitSilence waits d for the client to send nothing, as a session must
// before its greeting. talked reports that bytes came (they are left
// unread: the session ends); err is errShuttingDown when a shutdown
// interrupted the wait, or the read error of a client that went away.
// The wait counts as idle, so that Shutdown interrupts it
// (interruptIfIdle); it is never parked.
func (c *conn) awaitSilence(d time.Duration) (talked bool, err error) {
	c.setReadDeadline(d)
	c.setIdle(true, false) // after the deadline, so that a shutdown's interrupt is not overwritten
	defer func() {
		c.setIdle(false, false)
		// The next wait arms its own deadline: the one above has passed.
		c.readArmed = time.Time{}
		c.armedAt.Store(0)
	}()
	if c.closing.Load() {
		return false, errShuttingDown
	}
	n, err := c.transport.Read(c.waitBuf[:])
	switch {
	case n > 0:
		return true, nil
	case c.closing.Load():
		return false, errShuttingDown
	case errors.Is(err, os.ErrDeadlineExceeded):
		return false, nil // silent for d, or the session deadline came first
	case err == nil:
		return false, errors.New("empty read before the greeting")
	}
	return false, err
}

// connectAside runs h.Connect on its own goroutine and sends its result;
// a panic is sent too (hookPanic), to be raised again where the fence
// can catch it.
func connectAside(h SessionHooks, ctx context.Context, info *SessionInfo, done chan<- error) {
	defer func() {
		if v := recover(); v != nil {
			done <- hookPanic{v}
		}
	}()
	done <- h.Connect(ctx, info)
}

// hookPanic carries a panic of SessionHooks.Connect to the session.
type hookPanic struct{ v any }

func (p hookPanic) Error() string { return fmt.Sprint("panic in Connect: ", p.v) }
