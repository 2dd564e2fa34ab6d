package queue

import (
	"errors"
	"sync"
)

// syncer is group commit for directory fsyncs. Every Commit must see an
// fsync of msg/ and env/ that started after its own renames. Rather than
// each Commit running its own, a committer goroutine runs one fsync for
// every Commit that asked while the previous fsync was in flight: under
// load, one fsync covers many messages; alone, a Commit waits for exactly
// one fsync, as it would without batching.
type syncer struct {
	fn    func() error
	group bool

	mu     sync.Mutex
	next   *syncRound // the round new callers join; nil when none is waiting
	closed bool
	kick   chan struct{} // capacity 1: a round is waiting
	stop   chan struct{}
	exited chan struct{}
}

// syncRound is one fsync and everyone waiting for it.
type syncRound struct {
	done chan struct{}
	err  error
}

var errClosed = errors.New("queue: closed")

// newSyncer returns a syncer running fn. With group false every Sync runs
// fn itself (for comparison in benchmarks).
func newSyncer(fn func() error, group bool) *syncer {
	s := &syncer{fn: fn, group: group, kick: make(chan struct{}, 1),
		stop: make(chan struct{}), exited: make(chan struct{})}
	if group {
		go s.loop()
	} else {
		close(s.exited)
	}
	return s
}

// Sync returns once an fsync that started after the call has finished,
// with that fsync's error.
func (s *syncer) Sync() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	if !s.group {
		s.mu.Unlock()
		return s.fn()
	}
	if s.next == nil {
		s.next = &syncRound{done: make(chan struct{})}
	}
	r := s.next
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default: // a kick is already pending; it covers this round
	}
	<-r.done
	return r.err
}

// loop is the committer: it takes the waiting round (the round's callers
// all renamed before joining it, and the fsync starts after the round is
// taken, so it covers them) and runs it.
func (s *syncer) loop() {
	defer close(s.exited)
	for {
		select {
		case <-s.stop:
			s.mu.Lock()
			r := s.next
			s.next = nil
			s.mu.Unlock()
			if r != nil {
				r.err = errClosed
				close(r.done)
			}
			return
		case <-s.kick:
		}
		s.mu.Lock()
		r := s.next
		s.next = nil
		s.mu.Unlock()
		if r == nil {
			continue
		}
		r.err = s.fn()
		close(r.done)
	}
}

// close stops the committer; later Syncs fail.
func (s *syncer) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	if s.group {
		close(s.stop)
	}
	<-s.exited
}
