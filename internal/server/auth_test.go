package server

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"smtpkit/internal/sasl"
)

// countingCreds knows alice@example.com with password "secret" (PLAIN,
// LOGIN and SCRAM-SHA-256), has decoys, and counts the password checks it
// is asked for: a locked account must not cause any.
type countingCreds struct {
	checks atomic.Int32
	keys   sasl.ScramKeys
}

func newCountingCreds() *countingCreds {
	return &countingCreds{keys: sasl.NewScramKeys("secret", []byte("0123456789abcdef"), sasl.MinIterations)}
}

func (c *countingCreds) CheckPassword(_ context.Context, u, p string) error {
	c.checks.Add(1)
	if u == "alice@example.com" && p == "secret" {
		return nil
	}
	return sasl.ErrInvalidCredentials
}

func (c *countingCreds) ScramKeys(_ context.Context, u string) (sasl.ScramKeys, error) {
	if u == "alice@example.com" {
		return c.keys, nil
	}
	return sasl.ScramKeys{}, sasl.ErrInvalidCredentials
}

func (c *countingCreds) ScramDecoy(u string) ([]byte, int) {
	sum := sha256.Sum256([]byte(u))
	return sum[:16], sasl.MinIterations
}

// authTestServer runs an implicit-TLS submissions listener with creds,
// a 1 ms base failure delay and a log the test can read.
func authTestServer(t *testing.T, creds sasl.Credentials) (*Server, string, *syncLog) {
	t.Helper()
	return authTestServerLimits(t, creds, Limits{})
}

// authTestServerLimits is authTestServer with limits.
func authTestServerLimits(t *testing.T, creds sasl.Credentials, limits Limits) (*Server, string, *syncLog) {
	t.Helper()
	logs := &syncLog{}
	srv := New(Options{
		Hostname: "mx.example.com", PostmasterDomain: "example.com",
		Listeners:   []Listener{{Address: "127.0.0.1:0", Role: RoleSubmissions, TLS: TLSImplicit, Auth: true, TLSConfig: testTLSConfig(t)}},
		Backend:     &memBackend{},
		Credentials: creds, AuthFailureDelay: time.Millisecond, Limits: limits,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	serve(t, srv)
	return srv, srv.Addrs()[0].String(), logs
}

// failures is the throttle's count for key now.
func (t *authThrottle) failures(key string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if f := t.current(key); f != nil {
		return f.n
	}
	return 0
}

// lockedExchanges are complete attempts on alice with the right and the
// wrong password in each mechanism: each is the lines to send, and what
// the server sends back is collected whole.
func lockedExchanges(pw string) map[string][]string {
	return map[string][]string{
		"PLAIN": {"AUTH PLAIN " + b64("\x00alice@example.com\x00"+pw)},
		"LOGIN": {"AUTH LOGIN", b64("alice@example.com"), b64(pw)},
		// SCRAM stops at client-first: the lock answers before any proof.
		"SCRAM-SHA-256": {"AUTH SCRAM-SHA-256 " + b64("n,,n=alice@example.com,r=abcdefghijkl")},
	}
}

// transcript sends lines one at a time after EHLO and returns every reply
// the server sent for them, joined.
func transcript(t *testing.T, addr string, lines []string) string {
	t.Helper()
	c := tlsDial(t, addr)
	c.cmd("EHLO c", "250-")
	var out []string
	for _, l := range lines {
		c.send(l + "\r\n")
		r := c.reply()
		out = append(out, r)
		if !strings.HasPrefix(r, "334") {
			break
		}
	}
	return strings.Join(out, "\n")
}

// TestLockedAccountChecksNothing: once an account is locked, PLAIN, LOGIN
// and SCRAM-SHA-256 attempts get byte-identical answers with the right
// and the wrong password, the store is not asked to check a password, and
// the delay applied (from the log) is the same for every attempt. Before
// the fix the right password got 454 at once and a wrong one 535 after the
// failure delay, because the password was checked first.
func TestLockedAccountChecksNothing(t *testing.T) {
	creds := newCountingCreds()
	srv, addr, logs := authTestServer(t, creds)
	for range maxAuthFailures {
		srv.auth.failure(userKey("alice@example.com"))
	}
	before := creds.checks.Load()
	for mech := range lockedExchanges("secret") {
		right := transcript(t, addr, lockedExchanges("secret")[mech])
		wrong := transcript(t, addr, lockedExchanges("wrong")[mech])
		if right != wrong {
			t.Errorf("%s on a locked account: right password got\n%q\nwrong one\n%q", mech, right, wrong)
		}
		if !strings.HasSuffix(right, replyAccountLocked().String()) {
			t.Errorf("%s on a locked account: %q, want %v", mech, right, replyAccountLocked())
		}
	}
	if n := creds.checks.Load() - before; n != 0 {
		t.Errorf("%d password checks for a locked account, want none", n)
	}
	delays := regexp.MustCompile(`auth refused, account locked" .*delay=(\S+)`).FindAllStringSubmatch(logs.String(), -1)
	if len(delays) != 6 {
		t.Fatalf("%d locked-account log lines, want 6:\n%s", len(delays), logs)
	}
	for _, d := range delays {
		if d[1] != srv.auth.delay(maxAuthFailures).String() {
			t.Errorf("locked attempt delayed %s, want the fixed %v", d[1], srv.auth.delay(maxAuthFailures))
		}
	}
	// An unknown name locks the same way and answers the same.
	for range maxAuthFailures {
		srv.auth.failure(userKey("nobody@example.com"))
	}
	unknown := transcript(t, addr, []string{"AUTH PLAIN " + b64("\x00nobody@example.com\x00x")})
	known := transcript(t, addr, lockedExchanges("x")["PLAIN"])
	if unknown != known {
		t.Errorf("locked unknown name %q, locked account %q", unknown, known)
	}
	// The lock is per normalised name: case and spaces do not escape it.
	if got := transcript(t, addr, []string{"AUTH PLAIN " + b64("\x00 ALICE@example.com\x00secret")}); got != known {
		t.Errorf("\" ALICE@example.com\" escaped the lock: %q", got)
	}
}

// TestAbortedExchangesCount: a cancel after SCRAM's server-first message,
// a LOGIN cancelled at the password prompt, a malformed response and a
// connection closed mid-exchange each count as a failed login for the IP
// and the named account. Before the fix none of them counted.
func TestAbortedExchangesCount(t *testing.T) {
	creds := newCountingCreds()
	srv, addr, _ := authTestServer(t, creds)
	user := userKey("alice@example.com")
	ip := ipKey("127.0.0.1")

	c := tlsDial(t, addr)
	c.cmd("EHLO c", "250-")
	c.cmd("AUTH SCRAM-SHA-256 "+b64("n,,n=alice@example.com,r=abcdefghijkl"), "334 ")
	c.cmd("*", "501 5.0.0")
	c.cmd("AUTH LOGIN "+b64("alice@example.com"), "334 ")
	c.cmd("*", "501 5.0.0")
	c.cmd("AUTH SCRAM-SHA-256 "+b64("n,,n=alice@example.com,r=abcdefghijkl"), "334 ")
	c.send("c=biws,r=nonsense\r\n") // not base64: the exchange ends
	c.expect("501 5.5.2")
	c.expect("421 4.7.0") // the third failure in the session
	c.closed()
	if got := srv.auth.failures(user); got != 3 {
		t.Errorf("after two cancels and a malformed response: %d failures for the account, want 3", got)
	}

	d := tlsDial(t, addr)
	d.cmd("EHLO c", "250-")
	d.cmd("AUTH SCRAM-SHA-256 "+b64("n,,n=alice@example.com,r=abcdefghijkl"), "334 ")
	d.conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for srv.auth.failures(user) != 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // polling the server's state, bounded
	}
	if got := srv.auth.failures(user); got != 4 {
		t.Errorf("after a disconnect mid-exchange: %d failures for the account, want 4", got)
	}
	if got := srv.auth.failures(ip); got != 4 {
		t.Errorf("%d failures for the IP, want 4", got)
	}
	if n := creds.checks.Load(); n != 0 {
		t.Errorf("%d password checks, want none", n)
	}
}

// TestCheckGate: one turn per key at a time, other keys unaffected, a wait
// ends with its context, and no entry outlives its users.
func TestCheckGate(t *testing.T) {
	g := checkGate{byKey: map[string]*gateTurn{}}
	leaveA, err := g.enter(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	leaveB, err := g.enter(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := g.enter(ctx, "a"); err == nil {
		t.Fatal("a second turn for the same key while the first runs")
	}
	got := make(chan error, 1)
	go func() {
		leave, err := g.enter(context.Background(), "a")
		if err == nil {
			leave()
		}
		got <- err
	}()
	leaveA()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	leaveB()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.byKey) != 0 {
		t.Errorf("gate entries left: %v", g.byKey)
	}
}

// busyCreds never gets a hash slot: every check waits until its context
// ends, as a store whose slots stay taken does.
type busyCreds struct{ countingCreds }

func (*busyCreds) CheckPassword(ctx context.Context, _, _ string) error {
	<-ctx.Done()
	return fmt.Errorf("store busy: %w", ctx.Err())
}

// TestAuthWaitEnds: a password check that cannot start waits no
// longer than the session's deadline allows, and the client then gets 454
// 4.7.0 in time (not counted as a failed login) and may go on.
func TestAuthWaitEnds(t *testing.T) {
	creds := &busyCreds{}
	srv, addr, logs := authTestServerLimits(t, creds, Limits{SessionTimeout: finalWriteGrace + time.Second})
	c := tlsDial(t, addr)
	c.cmd("EHLO c", "250-")
	c.cmd("AUTH PLAIN "+b64("\x00alice@example.com\x00secret"), "454 4.7.0 Temporary authentication failure")
	c.cmd("NOOP", "250")
	if n := srv.auth.failures(ipKey("127.0.0.1")); n != 0 {
		t.Errorf("a check that never ran counted as %d failures", n)
	}
	if !strings.Contains(logs.String(), "auth not checked") {
		t.Errorf("the wait that ran out is not logged:\n%s", logs)
	}
}
