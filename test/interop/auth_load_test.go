package interop

// auth_load_test.go: a flood of logins must not exhaust memory. Each
// password check is an argon2id computation of 19 MiB; the server runs
// only as many at once as it has CPUs and one per client address, and
// the rest wait.

import (
	"crypto/tls"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Bounds of TestAuthHashMemory.
const (
	authLoadConns = 1000      // concurrent AUTH attempts
	authRSSBound  = 300 << 20 // the server's peak RSS (VmHWM), bytes, without -race
	// With -race the runtime keeps shadow memory for every allocation (a
	// multiple of the heap); the bound checks there only that memory does
	// not grow with the number of attempts (100 concurrent hashes alone
	// would take about 2 GB).
	authRSSBoundRace = 900 << 20
)

// authLoadIPs is the number of source addresses of the attempts
// (127.12.0.1…). Each gets ten password checks before it is blocked, so
// this sets the work: with -race a check takes about three times as long,
// and half the addresses keep the test as short.
func authLoadIPs() int {
	if raceEnabled {
		return 20
	}
	return 40
}

// awaitReply waits up to d for the next reply on c (longer than the raw
// client's per-read bound: a login may wait for a hash slot) and reads it.
func awaitReply(c *Conn, d time.Duration) (Reply, error) {
	c.nc.SetReadDeadline(time.Now().Add(d))
	if _, err := c.r.Peek(1); err != nil {
		return Reply{}, err
	}
	return c.ReadReply()
}

// TestAuthHashMemory: 1,000 sessions from 40 source addresses (20 with
// -race) each send
// AUTH PLAIN with a wrong password at once, over implicit TLS. Meanwhile a
// normal client logs in with the right password and submits a message.
// Every attempt is answered (535, or 421 once its address is blocked), the
// normal client is served, and the server's peak RSS stays under 300 MB.
// Before the fix every attempt ran its own 19 MiB argon2id at once (100
// concurrent logins took the server to 1.97 GB).
func TestAuthHashMemory(t *testing.T) {
	raiseNoFile(t, 4*authLoadConns+1024)
	s := StartServer(t, ServerOptions{ExtraTOML: "connections = 2000\nconnections_per_ip = 100\nconnection_rate = 100000"})
	s.AddUser(t, aliceAddr, alicePW)
	conf := TLSConfig(t, s)
	pid := s.cmd.Process.Pid
	_, startPeak := memStatus(t, pid)

	var sent, answered atomic.Int32
	var mu sync.Mutex
	codes := map[int]int{}
	errs := make(chan error, authLoadConns)
	sem := make(chan struct{}, loadDialers)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range authLoadConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := floodLogin(t, conf, s, i, sem, &sent)
			if err != nil {
				errs <- fmt.Errorf("attempt %d: %w", i, err)
				return
			}
			answered.Add(1)
			mu.Lock()
			codes[r.Code]++
			mu.Unlock()
		}()
	}
	waitUntil(t, loadPhase, "all AUTH commands sent", func() bool { return sent.Load()+int32(len(errs)) >= authLoadConns })
	sentAt := time.Since(start)

	normalStart := time.Now()
	pending := submitDuringFlood(t, conf, s, &answered)
	normalTook := time.Since(normalStart)

	waitGroup(t, &wg, 2*loadPhase, "flood of logins")
	firstErrors(t, errs, "flood of logins")
	rss, peak := memStatus(t, pid)
	var seen []string
	for code, n := range codes {
		seen = append(seen, fmt.Sprintf("%d×%d", n, code))
		if code != 535 && code != 421 {
			t.Errorf("%d attempts answered %d, want 535 or 421", n, code)
		}
	}
	sort.Strings(seen)
	t.Logf("%d AUTH attempts from %d addresses: sent after %v, all answered after %v (%v); normal client served in %v with %d attempts still unanswered; server peak RSS (VmHWM) %d MiB (%d MiB at start), RSS now %d MiB, race=%v",
		authLoadConns, authLoadIPs(), sentAt.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), seen,
		normalTook.Round(time.Millisecond), pending, peak>>20, startPeak>>20, rss>>20, raceEnabled)
	bound := int64(authRSSBound)
	if raceEnabled {
		bound = authRSSBoundRace
	}
	if peak > bound {
		t.Errorf("server peak RSS %d MiB with %d concurrent logins, want < %d MiB", peak>>20, authLoadConns, bound>>20)
	}
	if codes[535] == 0 {
		t.Error("no attempt got its password checked")
	}
	s.WaitMessages(t, aliceAddr, 1)
}

// floodLogin is one attacker: TLS from its address, EHLO, AUTH PLAIN with
// a wrong password for a name of its own, and the reply.
func floodLogin(t *testing.T, conf *tls.Config, s *Server, i int, sem chan struct{}, sent *atomic.Int32) (Reply, error) {
	sem <- struct{}{}
	c, err := tlsFrom(t, conf, fmt.Sprintf("127.12.0.%d", 1+i%authLoadIPs()), s.Submissions)
	<-sem
	if err != nil {
		sent.Add(1)
		return Reply{}, err
	}
	defer c.Close()
	err = writeRaw(c, "AUTH PLAIN "+plainResponse(fmt.Sprintf("guess%d@test.example", i), wrongPW)+"\r\n")
	sent.Add(1)
	if err != nil {
		return Reply{}, err
	}
	return awaitReply(c, 2*loadPhase)
}

// submitDuringFlood logs in as alice from an address of its own and
// submits a message to her own mailbox; it returns how many flood attempts were still
// unanswered when it was done.
func submitDuringFlood(t *testing.T, conf *tls.Config, s *Server, answered *atomic.Int32) int {
	t.Helper()
	c, err := tlsFrom(t, conf, "127.12.1.1", s.Submissions)
	if err != nil {
		t.Fatal(err)
	}
	c.Send("AUTH PLAIN " + plainResponse(aliceAddr, alicePW))
	if r, err := awaitReply(c, loadPhase); err != nil || r.Code != 235 {
		t.Fatalf("normal client's AUTH during the flood: %v %v, want 235", r, err)
	}
	c.Cmd("MAIL FROM:<"+aliceAddr+">", 250)
	c.Cmd("RCPT TO:<"+aliceAddr+">", 250)
	rawData(t, c, mailMessage("during-flood", aliceAddr))
	c.Cmd("QUIT", 221)
	return authLoadConns - int(answered.Load())
}
