package delivery

import (
	"fmt"
	"testing"

	"smtpkit/internal/tlspolicy"
)

// TestRemoteLimits: a next hop that announces LIMITS RCPTMAX=2 MAILMAX=2
// (RFC 9422) gets seven recipients in transactions of at most two, at most
// two per connection, and every recipient is delivered in this attempt; the
// same server without LIMITS answers 452 past two recipients, and those
// recipients are deferred (what we did for every server before).
func TestRemoteLimits(t *testing.T) {
	rcpts := make([]string, 7)
	for i := range rcpts {
		rcpts[i] = fmt.Sprintf("u%d@remote.example", i)
	}
	tests := []struct {
		name      string
		limits    bool
		want      []string
		msgs      int // transactions the server took
		minAccept int // connections at least
	}{
		{"announced", true, []string{"ok", "ok", "ok", "ok", "ok", "ok", "ok"}, 4, 2},
		{"not announced", false, []string{"ok", "ok", "temp 452 4.5.3", "temp 452 4.5.3", "temp 452 4.5.3", "temp 452 4.5.3", "temp 452 4.5.3"}, 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f1, _, port := twoMX(t, &script{rcptMax: 2, mailMax: 2, limits: tc.limits}, nil)
			e := newEnv(t, port, envOpts{policy: tlspolicy.None})
			res := e.deliver(t, delivery("remote.example", rcpts...))
			wantOutcomes(t, res, tc.want...)
			msgs := f1.Messages()
			if len(msgs) != tc.msgs {
				t.Fatalf("server took %d transactions, want %d", len(msgs), tc.msgs)
			}
			seen := 0
			for _, m := range msgs {
				if len(m.Rcpts) > 2 {
					t.Errorf("a transaction had %d recipients, over RCPTMAX=2", len(m.Rcpts))
				}
				seen += len(m.Rcpts)
			}
			if tc.limits && seen != len(rcpts) {
				t.Errorf("%d recipients arrived, want %d", seen, len(rcpts))
			}
			if a := f1.Accepts(); a < tc.minAccept {
				t.Errorf("%d connections, want at least %d", a, tc.minAccept)
			}
			for i, r := range res {
				if r.Rcpt != rcpts[i] {
					t.Errorf("result %d is for %s, want %s (order kept)", i, r.Rcpt, rcpts[i])
				}
			}
		})
	}
}
