package interop

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Bounds of the load and fault tests (this file and faults_test.go).
const (
	loadConns     = 1000                      // concurrent sessions in TestLoadThousandSessions
	loadIPs       = 40                        // loopback client addresses they come from: 127.0.0.2…
	loadDialers   = 100                       // connection attempts in flight at once
	loadPhase     = 60 * time.Second          // bound of one phase (connect all, send all)
	loadRecipient = "postmaster@test.example" // every load message goes here
	loadSender    = "load@b.example"
	loadIDDomain  = "load.example" // right-hand side of every Message-ID
)

// loopbackIP is 127.0.0.n: on Linux all of 127.0.0.0/8 reaches the
// loopback interface, so these act as distinct client addresses.
func loopbackIP(n int) string { return fmt.Sprintf("127.0.0.%d", n) }

// dialFrom connects to addr from the local address ip ("" = any). Unlike
// Dial it reports errors instead of failing the test, so any goroutine may
// use it; only the error-returning helpers below (and Conn.ReadReply) may
// be called on the result outside the test goroutine.
func dialFrom(t *testing.T, ip, addr string) (*Conn, error) {
	d := net.Dialer{Timeout: ioTimeout}
	if ip != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(ip)}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { nc.Close() })
	return &Conn{t: t, nc: nc, r: newReader(nc)}, nil
}

// writeRaw sends raw in one write, bounded by ioTimeout.
func writeRaw(c *Conn, raw string) error {
	c.nc.SetWriteDeadline(time.Now().Add(ioTimeout))
	_, err := io.WriteString(c.nc, raw)
	return err
}

// readCode reads one reply; a code other than want is an error.
func readCode(c *Conn, want int) (Reply, error) {
	r, err := c.ReadReply()
	if err == nil && r.Code != want {
		err = fmt.Errorf("got reply %v, want %d", r, want)
	}
	return r, err
}

// exchange sends one command line and reads its reply, which must be want.
func exchange(c *Conn, line string, want int) (Reply, error) {
	if err := writeRaw(c, line+"\r\n"); err != nil {
		return Reply{}, err
	}
	r, err := readCode(c, want)
	if err != nil {
		err = fmt.Errorf("%s: %w", line, err)
	}
	return r, err
}

// openSession reads the greeting and says EHLO.
func openSession(c *Conn) error {
	if _, err := readCode(c, 220); err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	_, err := exchange(c, "EHLO client.b.example", 250)
	return err
}

// sent is the outcome of one transaction sent with transact.
type sent struct {
	reply    Reply // the reply to the end of the data (zero when not reached)
	bodySent bool  // the whole message and its final dot were written
	err      error // I/O error, or an unexpected reply before the data ended
}

// transact sends one message to rcpt on an open session: MAIL, RCPT, DATA,
// the dot-stuffed body and the final dot, and reads the reply to it.
func transact(c *Conn, rcpt string, msg []byte) sent {
	steps := []struct {
		line string
		code int
	}{{"MAIL FROM:<" + loadSender + ">", 250}, {"RCPT TO:<" + rcpt + ">", 250}, {"DATA", 354}}
	for _, st := range steps {
		if _, err := exchange(c, st.line, st.code); err != nil {
			return sent{err: err}
		}
	}
	if err := writeRaw(c, string(dotStuff(msg))+".\r\n"); err != nil {
		return sent{err: err}
	}
	r, err := c.ReadReply()
	return sent{reply: r, bodySent: true, err: err}
}

// loadMessage is a CRLF message with Message-ID <id@load.example>, pad
// filler lines of 76 octets, and a last line naming id, so that a
// truncated copy is recognisable.
func loadMessage(id string, pad int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <%s>\r\nTo: <%s>\r\nSubject: load %s\r\nMessage-ID: <%s@%s>\r\n\r\n",
		loadSender, loadRecipient, id, id, loadIDDomain)
	filler := strings.Repeat("x", 76) + "\r\n"
	for range pad {
		b.WriteString(filler)
	}
	b.WriteString(lastLine(id))
	return b.Bytes()
}

// lastLine is the final line of loadMessage(id, …).
func lastLine(id string) string { return "end of " + id + "\r\n" }

// mailScan is what scanMail found in one Maildir subdirectory.
type mailScan struct {
	ids        map[string]int    // Message-ID (left of @load.example) → files holding it
	incomplete []string          // files without an id, or not ending with lastLine(id)
	inodes     map[uint64]string // inode → file name
}

// scanMail reads every file of dir (a Maildir's new/ or tmp/).
func scanMail(t *testing.T, dir string) mailScan {
	t.Helper()
	sc := mailScan{ids: map[string]int{}, inodes: map[uint64]string{}}
	for _, name := range listFiles(t, dir) {
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(path); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				sc.inodes[st.Ino] = name
			}
		}
		id := messageID(b)
		if id == "" || !bytes.HasSuffix(b, []byte(lastLine(id))) {
			sc.incomplete = append(sc.incomplete, name)
		}
		if id != "" {
			sc.ids[id]++
		}
	}
	return sc
}

// messageID returns the id of a loadMessage from its Message-ID field, or
// "" when the field is missing or not one of ours.
func messageID(msg []byte) string {
	const field = "\nMessage-ID: <"
	i := bytes.Index(msg, []byte(field))
	if i < 0 {
		return ""
	}
	rest := msg[i+len(field):]
	j := bytes.Index(rest, []byte("@"+loadIDDomain+">"))
	if j < 0 || bytes.ContainsAny(rest[:j], "\r\n") {
		return ""
	}
	return string(rest[:j])
}

// waitGroup waits for wg, failing the test after d.
func waitGroup(t *testing.T, wg *sync.WaitGroup, d time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: not finished after %v", what, d)
	}
}

// waitUntil polls cond every pollStep, failing the test after d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached after %v", what, d)
		}
		time.Sleep(pollStep) // polling a condition, bounded above
	}
}

// firstErrors fails the test with the first few errors of errs, if any.
func firstErrors(t *testing.T, errs chan error, what string) {
	t.Helper()
	close(errs)
	var msgs []string
	n := 0
	for err := range errs {
		if n++; n <= 5 {
			msgs = append(msgs, err.Error())
		}
	}
	if n > 0 {
		t.Fatalf("%s: %d errors, first:\n%s", what, n, strings.Join(msgs, "\n"))
	}
}

// raiseNoFile sets the soft (and if needed hard) RLIMIT_NOFILE of the test
// process to at least want. Calling Setrlimit also makes children (the
// server) inherit it: Go restores the startup limit in children otherwise.
func raiseNoFile(t *testing.T, want uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = max(lim.Cur, want)
	lim.Max = max(lim.Max, lim.Cur)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("raising RLIMIT_NOFILE to %d: %v", want, err)
	}
}

// TestLoadThousandSessions: 1,000 sessions from 40 client addresses are
// open at the same time, each having said EHLO; then each sends a message,
// and all 1,000 land in the Maildir exactly once.
func TestLoadThousandSessions(t *testing.T) {
	raiseNoFile(t, 4*loadConns+1024)
	s := StartServer(t, ServerOptions{ExtraTOML: "connections = 2000\nconnections_per_ip = 100\nconnection_rate = 10000"})
	conns := make([]*Conn, loadConns)
	errs := make(chan error, loadConns)
	sem := make(chan struct{}, loadDialers)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := dialFrom(t, loopbackIP(2+i%loadIPs), s.MX)
			if err == nil {
				err = openSession(c)
			}
			if err != nil {
				errs <- fmt.Errorf("session %d: %w", i, err)
				return
			}
			conns[i] = c
		}()
	}
	waitGroup(t, &wg, loadPhase, "opening sessions")
	firstErrors(t, errs, "opening sessions")
	opened := time.Since(start)

	errs = make(chan error, loadConns)
	start = time.Now()
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := transact(c, loadRecipient, loadMessage(fmt.Sprintf("k%04d", i), 2))
			if res.err == nil && res.reply.Code != 250 {
				res.err = fmt.Errorf("end of data: %v", res.reply)
			}
			if res.err == nil {
				_, res.err = exchange(c, "QUIT", 221)
			}
			if res.err != nil {
				errs <- fmt.Errorf("session %d: %w", i, res.err)
			}
		}()
	}
	waitGroup(t, &wg, loadPhase, "sending")
	firstErrors(t, errs, "sending")
	t.Logf("%d sessions open (EHLO answered) in %v; %d messages acknowledged in %v",
		loadConns, opened.Round(time.Millisecond), loadConns, time.Since(start).Round(time.Millisecond))

	sc := scanMail(t, filepath.Join(s.Maildir(loadRecipient), "new"))
	if len(sc.incomplete) > 0 {
		t.Errorf("incomplete messages in new/: %v", sc.incomplete)
	}
	for i := range loadConns {
		if id := fmt.Sprintf("k%04d", i); sc.ids[id] != 1 {
			t.Errorf("message %s is in new/ %d times, want once", id, sc.ids[id])
		}
	}
	if len(sc.ids) != loadConns {
		t.Errorf("%d distinct messages in new/, want %d", len(sc.ids), loadConns)
	}
}

// loopSender sends messages in a loop on sessions of perSession messages
// each, until stop is closed or something fails.
type loopSender struct {
	name       string
	perSession int
	acked      []string // ids answered with 250
	inFlight   string   // id whose final dot was written, without a reply
	err        error    // what ended the loop, nil when stop did
}

// run is the loop; every 250 also increments total.
func (l *loopSender) run(t *testing.T, addr, ip string, stop <-chan struct{}, total *atomic.Int64) {
	var c *Conn
	for n := 0; ; n++ {
		select {
		case <-stop:
			if c != nil {
				exchange(c, "QUIT", 221)
			}
			return
		default:
		}
		if n%l.perSession == 0 {
			if c != nil {
				if _, l.err = exchange(c, "QUIT", 221); l.err != nil {
					return
				}
			}
			var err error
			if c, err = dialFrom(t, ip, addr); err == nil {
				err = openSession(c)
			}
			if l.err = err; err != nil {
				return
			}
		}
		id := fmt.Sprintf("%s-%05d", l.name, n)
		res := transact(c, loadRecipient, loadMessage(id, 4))
		if res.err == nil && res.reply.Code != 250 {
			res.err = fmt.Errorf("end of data: %v", res.reply)
		}
		if res.err != nil {
			if res.bodySent {
				l.inFlight = id
			}
			l.err = fmt.Errorf("%s: %w", id, res.err)
			return
		}
		l.acked = append(l.acked, id)
		total.Add(1)
	}
}

// startSenders starts n loopSenders from 127.0.0.2…; wg is done when all
// have returned.
func startSenders(t *testing.T, addr string, n, perSession int, stop <-chan struct{}, total *atomic.Int64, wg *sync.WaitGroup) []*loopSender {
	senders := make([]*loopSender, n)
	for i := range senders {
		l := &loopSender{name: fmt.Sprintf("c%02d", i), perSession: perSession}
		senders[i] = l
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.run(t, addr, loopbackIP(2+i), stop, total)
		}()
	}
	return senders
}

// TestLoadKill9 kills the server with SIGKILL while 10 clients send: every
// acknowledged message is in new/ exactly once after the crash, a message
// whose reply was lost may be there at most once, nothing else is, no
// partial file is visible, and the restarted server accepts mail.
func TestLoadKill9(t *testing.T) {
	s := StartServer(t, ServerOptions{ExtraTOML: "connection_rate = 10000"})
	var total atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	senders := startSenders(t, s.MX, 10, 5, stop, &total, &wg)
	start := time.Now()
	waitUntil(t, loadPhase, "load before the kill", func() bool {
		return total.Load() >= 20 && time.Since(start) >= time.Second
	})
	s.Kill9(t)
	close(stop)
	waitGroup(t, &wg, 2*ioTimeout, "senders after the kill")

	newDir := filepath.Join(s.Maildir(loadRecipient), "new")
	tmpDir := filepath.Join(s.Maildir(loadRecipient), "tmp")
	sc, tmp := scanMail(t, newDir), scanMail(t, tmpDir)
	if len(sc.incomplete) > 0 {
		t.Errorf("incomplete messages visible in new/: %v", sc.incomplete)
	}
	acked, lost, lostFound := 0, map[string]bool{}, 0
	for _, l := range senders {
		for _, id := range l.acked {
			acked++
			if sc.ids[id] != 1 {
				t.Errorf("acknowledged message %s is in new/ %d times, want once", id, sc.ids[id])
			}
		}
		if l.inFlight != "" {
			lost[l.inFlight] = true
		}
	}
	for id, n := range sc.ids {
		switch {
		case lost[id] && n == 1:
			lostFound++
		case lost[id]:
			t.Errorf("unacknowledged message %s is in new/ %d times, want at most once", id, n)
		case !isAcked(senders, id):
			t.Errorf("message %s is in new/ but was neither acknowledged nor in flight", id)
		}
	}
	for ino, name := range tmp.inodes {
		if newName, ok := sc.inodes[ino]; ok {
			t.Logf("tmp/%s is still a link of committed new/%s (killed between link and unlink)", name, newName)
			continue
		}
		if id := messageID(readFile(t, filepath.Join(tmpDir, name))); id != "" && sc.ids[id] > 0 {
			t.Errorf("uncommitted tmp/%s holds %s, which is also in new/", name, id)
		}
	}
	t.Logf("killed after %v: %d acknowledged (all present), %d in flight without reply, %d of those committed; %d files left in tmp/",
		time.Since(start).Round(time.Millisecond), acked, len(lost), lostFound, len(tmp.inodes))

	s.Restart(t)
	c := Dial(t, s.MX)
	c.Greeting()
	c.Hello()
	if res := transact(c, loadRecipient, loadMessage("after-restart", 1)); res.err != nil || res.reply.Code != 250 {
		t.Fatalf("after restart: %v %v", res.reply, res.err)
	}
	if got := scanMail(t, newDir).ids["after-restart"]; got != 1 {
		t.Errorf("message after restart is in new/ %d times, want once", got)
	}
}

func isAcked(senders []*loopSender, id string) bool {
	for _, l := range senders {
		for _, a := range l.acked {
			if a == id {
				return true
			}
		}
	}
	return false
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return b
}

// TestLoadReload sends SIGHUP five times (alternating two configs) while
// 5 clients send in a loop, opening a new session every 3 messages: no
// client sees an error and every acknowledged message lands.
func TestLoadReload(t *testing.T) {
	opts := []ServerOptions{
		{ExtraTOML: "connection_rate = 10000"},
		{MessageSize: "2MiB", ExtraTOML: "connection_rate = 10000\nconnections_per_ip = 50"},
	}
	s := StartServer(t, opts[0])
	var total atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	senders := startSenders(t, s.MX, 5, 3, stop, &total, &wg)
	start := time.Now()
	for i := 1; i <= 5; i++ {
		before := total.Load()
		waitUntil(t, loadPhase, "progress between reloads", func() bool { return total.Load() >= before+20 })
		if err := os.WriteFile(s.ConfigPath, []byte(s.config(opts[i%2])), 0o600); err != nil {
			t.Fatal(err)
		}
		s.hup(t)
		waitLog(t, s, "configuration reloaded", i)
	}
	before := total.Load()
	waitUntil(t, loadPhase, "progress after the last reload", func() bool { return total.Load() >= before+20 })
	close(stop)
	waitGroup(t, &wg, 2*ioTimeout, "senders")
	acked := 0
	sc := scanMail(t, filepath.Join(s.Maildir(loadRecipient), "new"))
	for _, l := range senders {
		if l.err != nil {
			t.Errorf("client %s: %v", l.name, l.err)
		}
		for _, id := range l.acked {
			acked++
			if sc.ids[id] != 1 {
				t.Errorf("acknowledged message %s is in new/ %d times, want once", id, sc.ids[id])
			}
		}
	}
	if len(sc.ids) != acked || len(sc.incomplete) > 0 {
		t.Errorf("new/ holds %d messages (%d incomplete), want the %d acknowledged", len(sc.ids), len(sc.incomplete), acked)
	}
	t.Logf("5 reloads in %v under load; %d messages acknowledged and present", time.Since(start).Round(time.Millisecond), acked)
}
