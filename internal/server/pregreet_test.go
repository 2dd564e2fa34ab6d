package server

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// The pregreet tests listen and dial in 127.15.3.0/24.
const pregreetHost = "127.15.3.1"

// pregreetServer runs one listener l on pregreetHost with a hookBackend
// (for one session: its Disconnect closes ended) and a recorder Observer.
func pregreetServer(t *testing.T, l Listener) (*Server, *hookBackend, *recorder) {
	t.Helper()
	b := &hookBackend{ended: make(chan struct{})}
	srv, _, obs := pregreetServerWith(t, l, b)
	return srv, b, obs
}

// manyHooks is hookBackend for many sessions: Disconnect records only.
type manyHooks struct{ hookBackend }

func (b *manyHooks) Disconnect(*SessionInfo) { b.record("disconnect") }

// pregreetServerWith is pregreetServer with the Backend b.
func pregreetServerWith(t *testing.T, l Listener, b Backend) (*Server, Backend, *recorder) {
	t.Helper()
	l.Address = pregreetHost + ":0"
	obs := newRecorder()
	srv := New(Options{
		Hostname: "mx.example.com", PostmasterDomain: "example.com",
		Listeners: []Listener{l}, Backend: b, Observer: obs,
	})
	serve(t, srv)
	return srv, b, obs
}

// waitEnded waits for the backend's Disconnect and returns its calls.
func waitEnded(t *testing.T, b *hookBackend) []string {
	t.Helper()
	select {
	case <-b.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("Disconnect was not called")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.calls...)
}

// has reports whether an event starting with event was recorded.
func (r *recorder) has(event string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if strings.HasPrefix(e, event) {
			return true
		}
	}
	return false
}

// TestEarlyTalker: on mx with a pregreet wait, a client that sends its
// commands before the greeting gets 554 instead of it and is dropped,
// and is counted; the Connect hook ran and Disconnect follows. A client
// that waits gets the greeting after the wait; a trusted one, and one on
// a submission listener, at once.
func TestEarlyTalker(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.15.3.200/32")}
	cases := []struct {
		name     string
		role     Role
		pregreet time.Duration
		src      string
		talk     bool // send EHLO before reading anything
		want     string
		early    bool
	}{
		{name: "early talker", role: RoleMX, pregreet: 3 * time.Second, src: "127.15.3.10", talk: true,
			want: "554 mx.example.com protocol error: you talked before the greeting", early: true},
		{name: "patient client", role: RoleMX, pregreet: 200 * time.Millisecond, src: "127.15.3.11", want: "220 "},
		{name: "trusted skips the wait", role: RoleMX, pregreet: time.Minute, src: "127.15.3.200", talk: true, want: "220 "},
		{name: "not on submission", role: RoleSubmission, pregreet: time.Minute, src: "127.15.3.12", talk: true, want: "220 "},
		{name: "off", role: RoleMX, src: "127.15.3.13", talk: true, want: "220 "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, b, obs := pregreetServer(t, Listener{Role: tc.role, TLS: TLSNone, Pregreet: tc.pregreet, TrustedNetworks: trusted})
			start := time.Now()
			c := dialFrom(t, tc.src, srv.Addrs()[0].String())
			if tc.talk {
				c.send("EHLO client.example\r\nMAIL FROM:<a@client.example>\r\n")
			}
			got := c.expect(tc.want)
			if tc.early {
				c.closed()
				calls := waitEnded(t, b)
				if strings.Join(calls, ",") != "connect,disconnect" {
					t.Errorf("hook calls %q", calls)
				}
				if !obs.has("earlytalker ") {
					t.Errorf("no EarlyTalker event: %q", obs.events)
				}
				return
			}
			if tc.pregreet > 0 && !tc.talk && time.Since(start) < tc.pregreet {
				t.Errorf("greeting %q after %s, before the pregreet wait of %s", got, time.Since(start), tc.pregreet)
			}
			if !tc.talk {
				c.cmd("EHLO client.example", "250")
			} else {
				c.expect("250") // the EHLO sent early
				c.reply()       // and the MAIL (530 on submission without AUTH)
			}
			c.cmd("QUIT", "221 ")
			waitEnded(t, b)
			if obs.has("earlytalker ") {
				t.Error("EarlyTalker counted for a client that waited")
			}
		})
	}
}

// TestPregreetShutdown: a shutdown ends the wait at once with 421.
func TestPregreetShutdown(t *testing.T) {
	srv, b, _ := pregreetServer(t, Listener{Role: RoleMX, TLS: TLSNone, Pregreet: 4 * time.Minute})
	c := dialFrom(t, "127.15.3.20", srv.Addrs()[0].String())
	deadline := time.Now().Add(5 * time.Second)
	for !b.called("connect") { // the session is in its wait
		if time.Now().After(deadline) {
			t.Fatal("Connect was not called")
		}
		time.Sleep(5 * time.Millisecond)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	c.expect("421 ")
	c.closed()
	wg.Wait()
}

func (b *hookBackend) called(call string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.calls {
		if c == call {
			return true
		}
	}
	return false
}

// panicHooks panics in Connect.
type panicHooks struct{ hookBackend }

func (*panicHooks) Connect(context.Context, *SessionInfo) error { panic("connect exploded") }
func (*panicHooks) Disconnect(*SessionInfo)                     {}

// TestPregreetHookPanic: a panic in the Connect hook that runs beside the
// wait ends that session only, with 421, as the fence does for any panic
// of a session; the server goes on.
func TestPregreetHookPanic(t *testing.T) {
	b := &panicHooks{hookBackend{ended: make(chan struct{})}}
	srv := New(Options{
		Hostname: "mx.example.com", PostmasterDomain: "example.com",
		Listeners: []Listener{{Address: pregreetHost + ":0", Role: RoleMX, TLS: TLSNone, Pregreet: 50 * time.Millisecond}},
		Backend:   b,
	})
	serve(t, srv)
	for range 2 {
		c := dialFrom(t, "127.15.3.21", srv.Addrs()[0].String())
		c.expect("421 mx.example.com local error")
		c.closed()
	}
}

// TestPregreetBehindProxy: behind a PROXY header the wait starts after
// the header, and commands that came in the same segment as the header
// make an early talker; the client named by the header is what the
// trusted networks are matched against.
func TestPregreetBehindProxy(t *testing.T) {
	const balancer = "127.15.3.50"
	l := Listener{Role: RoleMX, TLS: TLSNone, Pregreet: 2 * time.Second, ProxyProtocol: true,
		ProxyFrom:       []netip.Prefix{netip.MustParsePrefix(balancer + "/32")},
		TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("192.0.2.99/32")}}
	srv, _, obs := pregreetServerWith(t, l, &manyHooks{})
	addr := srv.Addrs()[0].String()

	c := dialFrom(t, balancer, addr)
	c.send("PROXY TCP4 192.0.2.10 127.15.3.1 40000 25\r\nEHLO bot.example\r\n")
	c.expect("554 mx.example.com protocol error")
	c.closed()
	if !obs.has("earlytalker ") {
		t.Errorf("no EarlyTalker event: %q", obs.events)
	}

	c = dialFrom(t, balancer, addr)
	start := time.Now()
	c.send("PROXY TCP4 192.0.2.11 127.15.3.1 40001 25\r\n")
	c.expect("220 ")
	if time.Since(start) < l.Pregreet {
		t.Errorf("greeting after %s, before the wait of %s", time.Since(start), l.Pregreet)
	}
	c.cmd("QUIT", "221 ")

	c = dialFrom(t, balancer, addr) // a trusted client behind the balancer talks at once
	c.send("PROXY TCP4 192.0.2.99 127.15.3.1 40002 25\r\nEHLO app.example\r\n")
	c.expect("220 ")
	c.expect("250")
	c.cmd("QUIT", "221 ")
}

// panicDisconnect panics in Disconnect.
type panicDisconnect struct{ manyHooks }

func (*panicDisconnect) Disconnect(*SessionInfo) { panic("disconnect exploded") }

// TestDisconnectPanicReleases: a panic in the Backend's Disconnect still
// gives the session's slot back, so that Shutdown returns.
func TestDisconnectPanicReleases(t *testing.T) {
	srv, _, _ := pregreetServerWith(t, Listener{Role: RoleMX, TLS: TLSNone}, &panicDisconnect{})
	c := dialFrom(t, "127.15.3.22", srv.Addrs()[0].String())
	c.expect("220 ")
	c.cmd("QUIT", "221 ")
	c.closed()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v (a session slot was never given back)", err)
	}
}
