package server

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"smtpkit/internal/smtp"
)

// hookBackend is memBackend with SessionHooks: it refuses Connect or
// Hello when told to and records the calls.
type hookBackend struct {
	memBackend
	connectErr, helloErr error

	mu    sync.Mutex
	calls []string
	ended chan struct{}
}

func (b *hookBackend) record(call string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, call)
}

func (b *hookBackend) Connect(_ context.Context, s *SessionInfo) error {
	b.record("connect")
	return b.connectErr
}

func (b *hookBackend) Hello(_ context.Context, s *SessionInfo) error {
	b.record("hello " + s.Helo)
	return b.helloErr
}

func (b *hookBackend) Disconnect(*SessionInfo) {
	b.record("disconnect")
	close(b.ended)
}

// TestSessionHooks: Connect runs before the greeting and its error is
// sent in place of it; Hello sees every accepted HELO/EHLO and its error
// leaves the session greeted (MAIL then gets 503); Disconnect comes once
// at the end in every case.
func TestSessionHooks(t *testing.T) {
	refuse := smtp.E(smtp.CodeTransactionFailed, smtp.EnhSecurity, "go away")
	cases := []struct {
		name                 string
		connectErr, helloErr error
		dialogue             [][2]string // command, reply prefix
		greeting             string
		calls                []string
	}{
		{name: "accepted", greeting: "220 ",
			dialogue: [][2]string{{"EHLO a.example", "250-"}, {"HELO b.example", "250 "}, {"QUIT", "221 "}},
			calls:    []string{"connect", "hello a.example", "hello b.example", "disconnect"}},
		{name: "connect refused", connectErr: refuse, greeting: "554 go away",
			calls: []string{"connect", "disconnect"}},
		{name: "connect fails", connectErr: io.ErrUnexpectedEOF, greeting: "451 ",
			calls: []string{"connect", "disconnect"}},
		{name: "hello refused", helloErr: refuse, greeting: "220 ",
			dialogue: [][2]string{{"EHLO a.example", "554 5.7.0 go away"}, {"MAIL FROM:<a@b.example>", "503 "}, {"QUIT", "221 "}},
			calls:    []string{"connect", "hello a.example", "disconnect"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := &hookBackend{connectErr: tc.connectErr, helloErr: tc.helloErr, ended: make(chan struct{})}
			srv := New(Options{
				Hostname: "mx.example.com", PostmasterDomain: "example.com",
				Listeners: []Listener{{Address: "127.0.0.1:0", Role: RoleMX}}, Backend: b,
			})
			serve(t, srv)
			c := dialNoGreeting(t, srv.Addrs()[0].String())
			c.expect(tc.greeting)
			for _, step := range tc.dialogue {
				c.cmd(step[0], step[1])
			}
			select {
			case <-b.ended:
			case <-time.After(5 * time.Second):
				t.Fatal("Disconnect was not called")
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			if len(b.calls) != len(tc.calls) {
				t.Fatalf("calls %q, want %q", b.calls, tc.calls)
			}
			for i := range tc.calls {
				if b.calls[i] != tc.calls[i] {
					t.Fatalf("calls %q, want %q", b.calls, tc.calls)
				}
			}
		})
	}
}
