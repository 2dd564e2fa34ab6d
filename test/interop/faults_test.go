package interop

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Bounds of the fault tests.
const (
	slowTick        = 500 * time.Millisecond // a slow client's pace: one byte per tick
	normalHelloMax  = time.Second            // EHLO answered within this while slow clients wait
	garbageSessions = 200                    // garbage sessions between the two RSS readings
	garbageWorkers  = 4                      // of them in parallel
	rssBound        = 200 << 20              // the server's VmRSS after the garbage, bytes
	diskFullMount   = "size=2m,mode=0700"    // the tmpfs the Maildirs live on in TestFaultDiskFull
	diskFullPad     = 1300                   // filler lines: ~100 KiB messages
	diskFullMaxMsgs = 100                    // give up when a 2 MiB tmpfs takes more than this
)

// expectRefused reads what the server says on a connection it refuses:
// 421 with enhanced code 4.7.0, then the close.
func expectRefused(t *testing.T, c *Conn, why string) {
	t.Helper()
	replies := c.ExpectClosed()
	if len(replies) != 1 || replies[0].Code != 421 || replies[0].Enhanced() != "4.7.0" {
		t.Errorf("%s: got %v before the close, want one 421 4.7.0", why, replies)
	}
}

// admitted dials from ip until the server greets with 220, for when a slot
// was just given back (the server releases it after the client's close).
func admitted(t *testing.T, ip, addr string) *Conn {
	t.Helper()
	var last error
	for deadline := time.Now().Add(pollTimeout); time.Now().Before(deadline); time.Sleep(pollStep) {
		c, err := dialFrom(t, ip, addr)
		if err != nil {
			t.Fatal(err)
		}
		r, err := c.ReadReply()
		if err == nil && r.Code == 220 {
			return c
		}
		last = fmt.Errorf("%v %v", r, err)
		c.Close()
	}
	t.Fatalf("no 220 from %s within %v: %v", ip, pollTimeout, last)
	return nil
}

// TestFaultConnectionLimits: connections_per_ip, connection_rate and the
// total connections limit each refuse the connection over them with
// 421 4.7.0 and a close, while other client addresses are still served.
func TestFaultConnectionLimits(t *testing.T) {
	s := StartServer(t, ServerOptions{ExtraTOML: "connections = 8\nconnections_per_ip = 5\nconnection_rate = 10"})

	t.Run("per ip", func(t *testing.T) {
		var open []*Conn
		for range 5 {
			c := dialIP(t, loopbackIP(2), s.MX)
			c.Greeting()
			open = append(open, c)
		}
		expectRefused(t, dialIP(t, loopbackIP(2), s.MX), "6th connection from 127.0.0.2")
		other := dialIP(t, loopbackIP(3), s.MX)
		other.Greeting()
		other.Hello()
		other.Cmd("QUIT", 221)
		open[0].Cmd("QUIT", 221)
		open[0].ExpectClosed()
		again := admitted(t, loopbackIP(2), s.MX) // the slot given back is usable
		again.Cmd("QUIT", 221)
		for _, c := range open[1:] {
			c.Cmd("QUIT", 221)
		}
	})

	t.Run("rate", func(t *testing.T) {
		for i := range 10 {
			c := dialIP(t, loopbackIP(4), s.MX)
			if r := c.Reply(); r.Code != 220 {
				t.Fatalf("connection %d of 10 from 127.0.0.4: %v, want 220", i+1, r)
			}
			c.Cmd("QUIT", 221)
		}
		expectRefused(t, dialIP(t, loopbackIP(4), s.MX), "11th connection within a minute")
		c := dialIP(t, loopbackIP(5), s.MX)
		c.Greeting()
		c.Cmd("QUIT", 221)
	})

	t.Run("total", func(t *testing.T) {
		var open []*Conn
		for i := range 8 {
			c := admitted(t, loopbackIP(10+i), s.MX) // earlier sessions may still be ending
			open = append(open, c)
		}
		expectRefused(t, dialIP(t, loopbackIP(30), s.MX), "9th connection over all")
		for _, c := range open {
			c.Cmd("QUIT", 221)
		}
	})
}

// dialIP is Dial from the local address ip.
func dialIP(t *testing.T, ip, addr string) *Conn {
	t.Helper()
	c, err := dialFrom(t, ip, addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, ip, err)
	}
	return c
}

// dribble writes raw one byte per slowTick until it is written, a write
// fails or stop is closed.
func dribble(c *Conn, raw string, stop <-chan struct{}) {
	tick := time.NewTicker(slowTick)
	defer tick.Stop()
	for i := 0; i < len(raw); i++ {
		if writeRaw(c, raw[i:i+1]) != nil {
			return
		}
		select {
		case <-tick.C:
		case <-stop:
			return
		}
	}
}

// timedOut reads until the server closes c and checks the last reply was
// 421, with enhanced code 4.4.2 when esmtp (the client said EHLO: RFC 2034
// §3), returning how long that took from since.
func timedOut(c *Conn, since time.Time, esmtp bool) (time.Duration, error) {
	var replies []Reply
	for {
		r, err := c.ReadReply()
		if err == nil {
			replies = append(replies, r)
			continue
		}
		took := time.Since(since)
		if !errors.Is(err, io.EOF) && !isReset(err) {
			return took, fmt.Errorf("reading: %v (replies %v)", err, replies)
		}
		n := len(replies)
		if n == 0 || replies[n-1].Code != 421 || esmtp && replies[n-1].Enhanced() != "4.4.2" {
			return took, fmt.Errorf("closed after %v, want 421 (4.4.2 after EHLO) last", replies)
		}
		return took, nil
	}
}

// checkWithin fails unless lo <= d <= hi.
func checkWithin(t *testing.T, what string, d, lo, hi time.Duration) {
	t.Helper()
	if d < lo || d > hi {
		t.Errorf("%s after %v, want between %v and %v", what, d.Round(time.Millisecond), lo, hi)
	}
}

// TestFaultSlowClients: command_timeout cuts a client dribbling a command
// line (slowloris) while other clients are served promptly; data_timeout
// cuts a stalled DATA sender; session_timeout cuts a trickling one.
func TestFaultSlowClients(t *testing.T) {
	// min_data_rate = 1: the trickle below (2 octets/s) is cut by
	// session_timeout, not by the rate (TestSlowlorisData has that).
	s := StartServer(t, ServerOptions{ExtraTOML: `command_timeout = "2s"
data_timeout = "1s"
session_timeout = "5s"
min_data_rate = 1
connections_per_ip = 200
connection_rate = 10000`})

	t.Run("slowloris", func(t *testing.T) {
		const slow, normal = 10, 50
		stop := make(chan struct{})
		defer close(stop)
		var wg sync.WaitGroup
		errs := make(chan error, slow+normal)
		for i := range slow {
			c := dialIP(t, loopbackIP(2), s.MX)
			c.Greeting()
			greeted := time.Now()
			go dribble(c, "EHLO slow.b.example\r\n", stop)
			wg.Add(1)
			go func() {
				defer wg.Done()
				took, err := timedOut(c, greeted, false)
				if err == nil && (took < 1500*time.Millisecond || took > 4*time.Second) {
					err = fmt.Errorf("cut after %v, want about 2s", took)
				}
				if err != nil {
					errs <- fmt.Errorf("slow client %d: %w", i, err)
				}
			}()
		}
		for i := range normal {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				c, err := dialFrom(t, loopbackIP(3), s.MX)
				if err == nil {
					err = openSession(c)
				}
				if took := time.Since(start); err == nil && took > normalHelloMax {
					err = fmt.Errorf("EHLO answered after %v", took)
				}
				if err == nil {
					_, err = exchange(c, "QUIT", 221)
				}
				if err != nil {
					errs <- fmt.Errorf("normal client %d: %w", i, err)
				}
			}()
		}
		waitGroup(t, &wg, 3*ioTimeout, "slow and normal clients")
		firstErrors(t, errs, "slowloris")
	})

	t.Run("stalled data", func(t *testing.T) {
		c := Dial(t, s.MX)
		c.Greeting()
		c.Hello()
		mailFrom(c, loadSender)
		c.Cmd("RCPT TO:<"+loadRecipient+">", 250)
		c.Cmd("DATA", 354)
		c.Write("Subject: stalled\r\n")
		took, err := timedOut(c, time.Now(), true)
		if err != nil {
			t.Fatal(err)
		}
		checkWithin(t, "stalled DATA cut", took, 700*time.Millisecond, 3*time.Second)
	})

	t.Run("trickled data", func(t *testing.T) {
		c := Dial(t, s.MX)
		connected := time.Now()
		c.Greeting()
		c.Hello()
		mailFrom(c, loadSender)
		c.Cmd("RCPT TO:<"+loadRecipient+">", 250)
		c.Cmd("DATA", 354)
		stop := make(chan struct{})
		defer close(stop)
		go dribble(c, string(loadMessage("trickle", 20)), stop) // faster than data_timeout, endless in effect
		took, err := timedOut(c, connected, true)
		if err != nil {
			t.Fatal(err)
		}
		checkWithin(t, "trickled DATA cut by session_timeout", took, 4500*time.Millisecond, 7*time.Second)
	})

	if n := s.CountFiles(t, loadRecipient, "new"); n != 0 {
		t.Errorf("%d messages in new/ from cut sessions, want none", n)
	}

	t.Run("slow upload", func(t *testing.T) {
		// Each block arrives within data_timeout and the session ends
		// within session_timeout, but the upload as a whole takes longer
		// than command_timeout: the 250 must still reach the client.
		c := Dial(t, s.MX)
		c.Greeting()
		c.Hello()
		mailFrom(c, loadSender)
		c.Cmd("RCPT TO:<"+loadRecipient+">", 250)
		c.Cmd("DATA", 354)
		msg := string(dotStuff(loadMessage("slow-upload", 60))) + ".\r\n"
		tick := time.NewTicker(slowTick)
		defer tick.Stop()
		const parts = 6 // 2.5 s at slowTick: over command_timeout, under session_timeout
		for i := range parts {
			c.Write(msg[i*len(msg)/parts : (i+1)*len(msg)/parts])
			if i < parts-1 {
				<-tick.C
			}
		}
		r, err := c.ReadReply()
		if err != nil || r.Code != 250 {
			t.Errorf("end of a slow upload: %v %v, want 250", r, err)
		}
		if got := scanMail(t, filepath.Join(s.Maildir(loadRecipient), "new")).ids["slow-upload"]; got != 1 || err != nil {
			t.Errorf("slow-upload in new/ %d times while the client saw %v %v", got, r, err)
		}
	})
	waitUntil(t, pollTimeout, "tmp/ empty after cut sessions", func() bool { return s.CountFiles(t, loadRecipient, "tmp") == 0 })
}

// TestFaultErrorLimit: with errors = 5 the fifth failed command (500-504)
// is answered and followed by 421 and the close; good commands between
// them do not reset the count.
func TestFaultErrorLimit(t *testing.T) {
	s := StartServer(t, ServerOptions{ExtraTOML: "errors = 5"})
	c := Dial(t, s.MX)
	c.Greeting()
	c.Hello()
	bad := []string{"FOO", "RCPT TO:<postmaster@test.example>", "DATA", "MAIL FROM:no-brackets", "XYZZY"}
	for i, line := range bad {
		c.Send(line)
		if r := c.Reply(); r.Code < 500 || r.Code > 504 {
			t.Fatalf("%q: %v, want a 500-504 error", line, r)
		}
		if i < len(bad)-1 {
			c.Cmd("NOOP", 250)
		}
	}
	replies := c.ExpectClosed()
	if len(replies) != 1 || replies[0].Code != 421 {
		t.Errorf("after %d errors: %v before the close, want one 421", len(bad), replies)
	}
	fresh := Dial(t, s.MX) // the count is per session
	fresh.Greeting()
	fresh.Hello()
	fresh.Cmd("FOO", 500)
	fresh.Cmd("QUIT", 221)
}

// mountTmpfs mounts a tmpfs with opts on dir; when mounting is not allowed
// the test is skipped (failed with CI=true). The cleanup stops the server
// first, so nothing holds the mount, then unmounts.
func mountTmpfs(t *testing.T, s *Server, dir, opts string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount -t tmpfs (needed with CI=true): %v: %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() {
		s.Stop(t)
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
			exec.Command("umount", "-l", dir).Run()
		}
	})
}

// TestFaultDiskFull puts the Maildirs on a 2 MiB tmpfs and sends ~100 KiB
// messages until the server refuses one with 452 4.3.1 (or 451): every
// file in new/ is then a complete, acknowledged message and tmp/ is empty.
// After space is freed the same session delivers again.
func TestFaultDiskFull(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	mountTmpfs(t, s, filepath.Join(s.DataDir, "mail"), diskFullMount)
	newDir := filepath.Join(s.Maildir(loadRecipient), "new")
	c := Dial(t, s.MX)
	c.Greeting()
	c.Hello()
	var acked []string
	var refused Reply
	for i := range diskFullMaxMsgs {
		id := fmt.Sprintf("full%03d", i)
		res := transact(c, loadRecipient, loadMessage(id, diskFullPad))
		if res.err != nil {
			t.Fatalf("message %d: %v", i, res.err)
		}
		if res.reply.Code != 250 {
			refused = res.reply
			break
		}
		acked = append(acked, id)
	}
	t.Logf("%d messages of ~100 KiB accepted, then %v", len(acked), refused)
	switch {
	case refused.Code == 0:
		t.Fatalf("all %d messages accepted on a 2 MiB file system", diskFullMaxMsgs)
	case refused.Code == 452 && refused.Enhanced() != "4.3.1", refused.Code != 452 && refused.Code != 451:
		t.Errorf("disk full answered with %v, want 452 4.3.1 or 451", refused)
	}
	sc := scanMail(t, newDir)
	if len(sc.incomplete) > 0 || len(sc.ids) != len(acked) {
		t.Errorf("new/ holds %d messages, %d incomplete (%v); want the %d acknowledged", len(sc.ids), len(sc.incomplete), sc.incomplete, len(acked))
	}
	for _, id := range acked {
		if sc.ids[id] != 1 {
			t.Errorf("acknowledged %s is in new/ %d times", id, sc.ids[id])
		}
	}
	if n := s.CountFiles(t, loadRecipient, "tmp"); n != 0 {
		t.Errorf("%d files left in tmp/ after the refused message, want none", n)
	}

	for _, name := range listFiles(t, newDir)[:len(acked)/2] {
		if err := os.Remove(filepath.Join(newDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	res := transact(c, loadRecipient, loadMessage("after-free", diskFullPad))
	if res.err != nil || res.reply.Code != 250 {
		t.Fatalf("after freeing space: %v %v, want 250", res.reply, res.err)
	}
	if got := scanMail(t, newDir); got.ids["after-free"] != 1 || len(got.incomplete) > 0 {
		t.Errorf("message after freeing space: in new/ %d times, incomplete files %v", got.ids["after-free"], got.incomplete)
	}
	c.Cmd("QUIT", 221)
}

// clientHello returns the first TLS record a Go client sends: the
// ClientHello a TLS-speaking peer sends to the plaintext port.
func clientHello(t *testing.T) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer b.Close()
	go func() {
		defer a.Close()
		tls.Client(a, &tls.Config{ServerName: testHostname, InsecureSkipVerify: true}).Handshake()
	}()
	b.SetReadDeadline(time.Now().Add(ioTimeout))
	buf := make([]byte, 1<<16)
	n, err := b.Read(buf)
	if err != nil {
		t.Fatalf("capturing a ClientHello: %v", err)
	}
	return buf[:n]
}

// garbageInputs are what hostile or confused peers send, by name.
func garbageInputs(t *testing.T) map[string][]byte {
	t.Helper()
	rng := rand.New(rand.NewSource(5321))
	random := make([]byte, 8192)
	rng.Read(random)
	return map[string][]byte{
		"random":      random,
		"long line":   []byte(strings.Repeat("A", 1<<20)),
		"nul":         []byte(strings.Repeat("\x00", 600) + "\r\nEHLO \x00x\r\nMAIL FROM:<\x00@b.example>\r\n\x00\r\n"),
		"clienthello": clientHello(t),
		"http":        []byte("GET / HTTP/1.1\r\nHost: mx.test.example\r\nUser-Agent: x\r\n\r\nPOST /x HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello"),
		"half-open":   nil,
	}
}

// garbageSession sends input after the greeting, half-closes the
// connection and reads until the server closes: every reply after the
// greeting must be an error (5xx, or 421 when it gives up).
func garbageSession(t *testing.T, addr string, input []byte) error {
	c, err := dialFrom(t, "", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := readCode(c, 220); err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	writeErr := writeRaw(c, string(input)) // the server may close before reading it all
	if writeErr == nil {
		c.nc.(*net.TCPConn).CloseWrite()
	}
	for n := 0; n < maxReplyLines; n++ {
		r, err := c.ReadReply()
		if errors.Is(err, io.EOF) || isReset(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading (write error %v): %w", writeErr, err)
		}
		if r.Code < 500 && r.Code != 421 {
			return fmt.Errorf("reply %v to garbage", r)
		}
	}
	return errors.New("too many replies")
}

// memStatus returns the VmRSS and VmHWM (peak) of process pid, in bytes.
func memStatus(t *testing.T, pid int) (rss, peak int64) {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			peak = n << 10
		}
	}
	if rss == 0 {
		t.Fatalf("no VmRSS in /proc/%d/status", pid)
	}
	return rss, peak
}

// TestFaultGarbage sends random bytes, a 1 MiB line without CRLF, NUL
// bytes, a TLS ClientHello, HTTP requests and a half-open connection to the
// plaintext port, 200 sessions in all: each gets errors or a close, the
// server keeps running with bounded memory and still delivers mail.
func TestFaultGarbage(t *testing.T) {
	s := StartServer(t, ServerOptions{ExtraTOML: "connection_rate = 10000\nconnections_per_ip = 50"})
	inputs := garbageInputs(t)
	names := make([]string, 0, len(inputs))
	for name, input := range inputs { // warm-up: one of each
		names = append(names, name)
		if err := garbageSession(t, s.MX, input); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	sort.Strings(names)
	pid := s.cmd.Process.Pid
	before, _ := memStatus(t, pid)
	var wg sync.WaitGroup
	errs := make(chan error, garbageSessions)
	start := time.Now()
	for w := range garbageWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < garbageSessions; i += garbageWorkers {
				name := names[i%len(names)]
				if err := garbageSession(t, s.MX, inputs[name]); err != nil {
					errs <- fmt.Errorf("session %d (%s): %w", i, name, err)
				}
			}
		}()
	}
	waitGroup(t, &wg, loadPhase, "garbage sessions")
	firstErrors(t, errs, "garbage")
	after, peak := memStatus(t, pid)
	t.Logf("%d garbage sessions in %v; server VmRSS %d KiB before, %d KiB after, peak %d KiB",
		garbageSessions, time.Since(start).Round(time.Millisecond), before>>10, after>>10, peak>>10)
	if after > rssBound {
		t.Errorf("server VmRSS %d MiB after the garbage, want < %d MiB", after>>20, rssBound>>20)
	}
	if !s.running() {
		t.Fatal("server exited")
	}

	c := Dial(t, s.MX) // a long line with CRLF is refused and the session goes on
	c.Greeting()
	c.Hello()
	c.Send(strings.Repeat("B", 1<<20))
	if r := c.Reply(); r.Code != 500 {
		t.Errorf("1 MiB command line: %v, want 500", r)
	}
	c.Cmd("NOOP", 250)
	if res := transact(c, loadRecipient, loadMessage("after-garbage", 1)); res.err != nil || res.reply.Code != 250 {
		t.Fatalf("normal message after the garbage: %v %v", res.reply, res.err)
	}
	c.Cmd("QUIT", 221)
	if got := scanMail(t, filepath.Join(s.Maildir(loadRecipient), "new")); got.ids["after-garbage"] != 1 || len(got.ids) != 1 {
		t.Errorf("new/ after the garbage: %v, want only after-garbage", got.ids)
	}
}
