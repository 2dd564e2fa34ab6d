package server

import (
	"context"
	"sync"
)

// checkGate lets one password check per key (client IP) run at a time.
// Argon2id is deliberately expensive, and the store runs only a few at
// once; without the gate, one address with many connections would queue
// all of them ahead of every other client. With it, the store's queue
// holds at most one check per address, and each address's next check
// sees the failures of its previous one. Entries exist only while someone
// holds or waits for a turn, so the map is bounded by the sessions in AUTH.
type checkGate struct {
	mu    sync.Mutex
	byKey map[string]*gateTurn
}

// gateTurn is the turn token of one key and the number of sessions holding
// or waiting for it.
type gateTurn struct {
	token chan struct{} // capacity 1: full while a check runs
	users int
}

// enter waits for key's turn or for ctx to end. The returned function ends
// the turn.
func (g *checkGate) enter(ctx context.Context, key string) (func(), error) {
	g.mu.Lock()
	turn := g.byKey[key]
	if turn == nil {
		turn = &gateTurn{token: make(chan struct{}, 1)}
		g.byKey[key] = turn
	}
	turn.users++
	g.mu.Unlock()
	select {
	case turn.token <- struct{}{}:
		return func() { <-turn.token; g.leave(key, turn) }, nil
	case <-ctx.Done():
		g.leave(key, turn)
		return nil, ctx.Err()
	}
}

func (g *checkGate) leave(key string, turn *gateTurn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if turn.users--; turn.users == 0 {
		delete(g.byKey, key)
	}
}
