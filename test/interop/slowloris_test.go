package interop

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Bounds of TestSlowlorisData.
const (
	slowlorisConns   = 1000             // slow DATA sessions: all of limits.connections (default)
	slowlorisIPs     = 50               // their source addresses, 127.20.0.1…: 20 each, connections_per_ip's default
	slowlorisTick    = time.Second      // one octet per tick: within every wait, far below min_data_rate
	slowlorisNormal  = 30 * time.Second // the normal client must have delivered within this
	slowlorisPhase   = 90 * time.Second // bound of each phase: opening the slow sessions, their end
	slowlorisDialers = 100              // slow connection attempts in flight at once
)

// slowlorisIP is the source address of slow session i.
func slowlorisIP(i int) string { return fmt.Sprintf("127.20.0.%d", 1+i%slowlorisIPs) }

// slowDATA opens a session from ip, starts a message and then sends its
// text one octet per slowlorisTick until the server ends the session; it
// returns once the session is in DATA, with ended closed when the session
// is over and *why set to what the end was (nil: 421 4.4.2, as wanted).
func slowDATA(t *testing.T, ip, addr string, stop <-chan struct{}, ended chan<- error) error {
	c, err := dialFrom(t, ip, addr)
	if err == nil {
		err = openSession(c)
	}
	if err == nil {
		_, err = exchange(c, "MAIL FROM:<slow@b.example>", 250)
	}
	if err == nil {
		_, err = exchange(c, "RCPT TO:<"+loadRecipient+">", 250)
	}
	if err == nil {
		_, err = exchange(c, "DATA", 354)
	}
	if err != nil {
		return err
	}
	quit := make(chan struct{})
	go func() {
		defer close(quit)
		_, err := timedOut(c, time.Now(), true)
		ended <- err
	}()
	go func() {
		both := make(chan struct{})
		go func() {
			select {
			case <-stop:
			case <-quit:
			}
			close(both)
		}()
		dribbleEvery(c, string(loadMessage("slow-"+ip, 200)), slowlorisTick, both)
	}()
	return nil
}

// dribbleEvery writes raw one octet per tick until it is written, a write
// fails or stop is closed.
func dribbleEvery(c *Conn, raw string, tick time.Duration, stop <-chan struct{}) {
	tk := time.NewTicker(tick)
	defer tk.Stop()
	for i := range len(raw) {
		if writeRaw(c, raw[i:i+1]) != nil {
			return
		}
		select {
		case <-tk.C:
		case <-stop:
			return
		}
	}
}

// normalDelivery is a normal MTA's attempt, by Python's smtplib from
// 127.21.0.1: connect, and on a refusal (421 at the greeting, the slots
// being full) try again a moment later, until the message is delivered or
// the deadline has passed. It prints how many connections it took.
const normalDelivery = `
import smtplib, sys, time
host, port, rcpt, limit = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
msg = "From: normal@b.example\r\nTo: " + rcpt + "\r\nSubject: normal\r\nMessage-ID: <normal@load.example>\r\n\r\nnormal mail\r\n"
deadline, tries, last = time.time() + limit, 0, None
while time.time() < deadline:
    tries += 1
    try:
        with smtplib.SMTP(host, port, source_address=("127.21.0.1", 0), timeout=10) as s:
            s.ehlo("normal.b.example")
            s.sendmail("normal@b.example", [rcpt], msg)
            print(tries)
            sys.exit(0)
    except (smtplib.SMTPException, OSError) as e:
        last = e
        time.sleep(0.2)
print("not delivered after %d connections: %r" % (tries, last), file=sys.stderr)
sys.exit(1)
`

// TestSlowlorisData: 1,000 sessions from 50 source addresses take every
// connection slot, each sending its message text one octet a second:
// within data_timeout (10m) each time, so only the session deadline (30m)
// used to end them, and every other client was refused meanwhile. Now
// the server goes into stress mode at 80% of the slots, and min_data_rate
// (500 octets/s after stress_data_timeout's allowance) cuts each trickle
// with 421 4.4.2; a normal client (Python smtplib, retrying refused
// connections as an MTA does) delivers within slowlorisNormal, and none of
// the slow messages is stored.
func TestSlowlorisData(t *testing.T) {
	python := NeedPython(t)
	raiseNoFile(t, 4*slowlorisConns+1024)
	s := StartServer(t, ServerOptions{ExtraTOML: `stress_command_timeout = "2s"
stress_data_timeout = "2s"`})
	host, port, err := net.SplitHostPort(s.MX)
	if err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	defer close(stop)
	ended := make(chan error, slowlorisConns)
	var inData, early atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, slowlorisDialers)
	start := time.Now()
	for i := range slowlorisConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := slowDATA(t, slowlorisIP(i), s.MX, stop, ended); err != nil {
				early.Add(1) // refused or cut before DATA: stress mode began meanwhile
				return
			}
			inData.Add(1)
		}()
	}
	waitGroup(t, &wg, slowlorisPhase, "opening the slow sessions")
	t.Logf("%d slow sessions in DATA, %d refused or cut before, in %v", inData.Load(), early.Load(), time.Since(start).Round(time.Millisecond))
	if inData.Load() < 800 {
		t.Fatalf("only %d of %d slow sessions reached DATA", inData.Load(), slowlorisConns)
	}

	normalStart := time.Now()
	out, err := exec.Command(python, "-c", normalDelivery, host, port, loadRecipient,
		strconv.Itoa(int(slowlorisNormal/time.Second))).CombinedOutput()
	if err != nil {
		t.Fatalf("normal client: %v: %s", err, out)
	}
	t.Logf("normal client delivered in %v, on connection %s", time.Since(normalStart).Round(time.Millisecond), strings.TrimSpace(string(out)))
	if got := s.WaitMessages(t, loadRecipient, 1); len(got) != 1 {
		t.Fatalf("%d messages delivered, want the normal one", len(got))
	}

	var cut, other int
	var first error
	timeout := time.After(slowlorisPhase)
	for range inData.Load() {
		select {
		case err := <-ended:
			if err == nil {
				cut++
			} else if other++; first == nil {
				first = err
			}
		case <-timeout:
			t.Fatalf("slow sessions still open after %v: %d cut so far", slowlorisPhase, cut)
		}
	}
	t.Logf("%d slow sessions cut with 421 4.4.2 within %v of the start", cut, time.Since(start).Round(time.Millisecond))
	if other > 0 {
		t.Errorf("%d slow sessions ended otherwise, first: %v", other, first)
	}
	if n := s.CountFiles(t, loadRecipient, "new"); n != 1 {
		t.Errorf("%d messages in new/, want only the normal one", n)
	}
	for _, want := range []string{"stress mode on", "stress mode off"} {
		waitUntil(t, pollTimeout, want+" logged", func() bool { return strings.Contains(s.Logs(), want) })
	}
}
