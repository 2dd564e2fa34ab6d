package inbound

import (
	"context"
	"sync"

	"smtpkit/internal/dnsbl"
	"smtpkit/internal/server"
)

// sessions.go: what the Backend keeps about one session from its Connect
// to its Disconnect (server.SessionHooks): the connection-level checks
// and filters that outlive a single transaction.

// sessionState is the Backend's per-session state. Each feature that
// follows whole sessions keeps its fields here.
type sessionState struct {
	mu sync.Mutex

	// DNSBL screening (screen.go): the lookups started at Connect (nil:
	// none), and whether the refusal was logged already (under mu).
	dnsbl       *dnsbl.Lookup
	dnsblLogged bool

	// The milter connections of the session (milter.go), nil: none.
	milter *milterState
}

// sessionTable maps the server's SessionInfo (the same pointer for the
// whole session) to its state.
type sessionTable struct {
	mu sync.Mutex
	m  map[*server.SessionInfo]*sessionState
}

func (t *sessionTable) put(s *server.SessionInfo, st *sessionState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[*server.SessionInfo]*sessionState)
	}
	t.m[s] = st
}

// get returns the state of s, nil for a session the Backend was not told
// about (one served without hooks, as in tests that call Begin directly).
func (t *sessionTable) get(s *server.SessionInfo) *sessionState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[s]
}

func (t *sessionTable) take(s *server.SessionInfo) *sessionState {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.m[s]
	delete(t.m, s)
	return st
}

// Connect starts following a session (server.SessionHooks).
func (b *Backend) Connect(ctx context.Context, s *server.SessionInfo) error {
	st := &sessionState{}
	b.screenConnect(ctx, s, st) // DNSBL lookups, during the greeting (screen.go)
	b.sessions.put(s, st)
	return b.milterConnect(s, st) // the milters' connect stage (milter.go)
}

// Hello is told each accepted HELO/EHLO (server.SessionHooks).
func (b *Backend) Hello(_ context.Context, s *server.SessionInfo) error {
	return b.milterHello(s)
}

// Disconnect releases the session's state (server.SessionHooks).
func (b *Backend) Disconnect(s *server.SessionInfo) {
	st := b.sessions.take(s)
	b.screenDisconnect(st)
	b.milterDisconnect(st)
}
