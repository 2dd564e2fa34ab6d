package interop

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readyRuns is how many times TestReadyMeansReady starts the server.
const readyRuns = 5

// TestReadyMeansReady: "ready" on stdout means ready. A SIGHUP sent the
// moment the line is read reloads the server instead of killing it, and
// `smtpkit queue list` works at once (the control socket was bound
// before). Each of readyRuns starts must survive and serve mail.
func TestReadyMeansReady(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	s.Stop(t)
	for run := 1; run <= readyRuns; run++ {
		logs := &syncBuffer{}
		cmd := exec.Command(s.bin, "serve", "-config", s.ConfigPath)
		cmd.Dir, cmd.Stderr = s.Dir, logs
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		ready := make(chan error, 1)
		go func() {
			// Signal on the ready line itself, before anything else runs.
			br := bufio.NewReader(stdout)
			signalled := false
			for {
				line, err := br.ReadString('\n')
				logs.Write([]byte(line))
				if !signalled && strings.Contains(line, readyLine) {
					signalled = true
					ready <- cmd.Process.Signal(syscall.SIGHUP)
				}
				if err != nil {
					break
				}
			}
			cmd.Wait()
			close(done)
		}()
		stop := func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(stopTimeout):
				cmd.Process.Kill()
				<-done
			}
		}
		select {
		case err := <-ready:
			if err != nil {
				stop()
				t.Fatalf("run %d: SIGHUP: %v", run, err)
			}
		case <-done:
			t.Fatalf("run %d: exited before ready: %v\n%s", run, cmd.ProcessState, logs.String())
		case <-time.After(readyTimeout):
			stop()
			t.Fatalf("run %d: not ready after %v\n%s", run, readyTimeout, logs.String())
		}
		q := runPeer(t, nil, s.bin, "queue", "list", "-config", s.ConfigPath)
		reloaded := waitText(logs, "configuration reloaded", done)
		if !reloaded {
			stop()
			t.Fatalf("run %d: the SIGHUP right after ready did not reload (exit %v):\n%s", run, cmd.ProcessState, logs.String())
		}
		if q.Err != nil {
			stop()
			t.Fatalf("run %d: smtpkit queue list right after ready: %v\n%s%s\nserver:\n%s", run, q.Err, q.Stdout, q.Stderr, logs.String())
		}
		c := Dial(t, s.MX)
		c.Greeting()
		c.Hello()
		c.Cmd("MAIL FROM:<a@b.example>", 250)
		c.Cmd("RCPT TO:<postmaster@"+testDomain+">", 250)
		c.Cmd("QUIT", 221)
		c.Close()
		stop()
		if !cmd.ProcessState.Success() {
			t.Fatalf("run %d: exit %v after SIGTERM\n%s", run, cmd.ProcessState, logs.String())
		}
		if strings.Contains(logs.String(), "WARNING: DATA RACE") {
			t.Fatalf("run %d: data race:\n%s", run, logs.String())
		}
	}
}

// waitText polls logs until text appears (true) or the process exits or
// pollTimeout passes (false).
func waitText(logs *syncBuffer, text string, done <-chan struct{}) bool {
	deadline := time.Now().Add(pollTimeout)
	for time.Now().Before(deadline) {
		if strings.Contains(logs.String(), text) {
			return true
		}
		select {
		case <-done:
			return strings.Contains(logs.String(), text)
		case <-time.After(pollStep):
		}
	}
	return false
}

// TestControlSocketUnavailable: a data_dir whose control socket path is
// longer than a unix socket address holds (108 bytes) gets one clear
// error at start naming the path, the reason and `smtpkit queue`, never
// "control socket stopped"; mail is still accepted, and `smtpkit queue`
// fails saying the server cannot be reached.
func TestControlSocketUnavailable(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	s.Stop(t)
	s.DataDir = filepath.Join(s.Dir, strings.Repeat("d", 110))
	if len(s.DataDir+"/control.sock") <= 108 {
		t.Fatalf("data_dir %q is too short for the test", s.DataDir)
	}
	s.CertPath = filepath.Join(s.DataDir, "tls", "selfsigned.crt")
	if err := os.WriteFile(s.ConfigPath, []byte(s.config(ServerOptions{})), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Restart(t)
	sendToPostmaster(t, s, "no-control-socket")
	s.WaitMessages(t, "postmaster@"+testDomain, 1)
	s.hup(t)
	waitLog(t, s, "configuration reloaded", 1)

	q := runPeer(t, nil, s.bin, "queue", "list", "-config", s.ConfigPath)
	if q.Err == nil {
		t.Errorf("smtpkit queue list worked without a control socket:\n%s", q.Stdout)
	}
	logs := s.Logs()
	for _, want := range []string{
		"control socket unavailable; `smtpkit queue` will not work",
		fmt.Sprintf("the socket path is %d bytes, more than the 107", len(s.DataDir+"/control.sock")),
	} {
		if n := strings.Count(logs, want); n != 1 {
			t.Errorf("log says %q %d times, want once", want, n)
		}
	}
	if strings.Contains(logs, "control socket stopped") {
		t.Error(`log says "control socket stopped"`)
	}
}

// TestReloadAppliesOrNamesRestart: SIGHUP applies a new
// limits.shutdown_grace and a new postmaster domain (the first local
// domain), and a changed listener address, which a reload cannot apply,
// is named in a warning as needing a restart while the old address keeps
// serving.
func TestReloadAppliesOrNamesRestart(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	c := Dial(t, s.MX)
	c.Greeting()
	c.Hello()
	c.Cmd("MAIL FROM:<a@b.example>", 250)
	c.Cmd("RCPT TO:<Postmaster>", 250) // completed with test.example
	c.Close()

	newMX := freeAddr(t)
	conf := s.config(ServerOptions{})
	for _, r := range [][2]string{
		{fmt.Sprintf("name = %q", testDomain), `name = "new.example"`}, // the postmaster domain moves
		{fmt.Sprintf("address = %q", s.MX), fmt.Sprintf("address = %q", newMX)},
		{"[limits]\n", "[limits]\nshutdown_grace = \"7s\"\n"},
	} {
		if !strings.Contains(conf, r[0]) {
			t.Fatalf("config has no %q:\n%s", r[0], conf)
		}
		conf = strings.Replace(conf, r[0], r[1], 1)
	}
	if err := os.WriteFile(s.ConfigPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s.hup(t)
	waitLog(t, s, "configuration reloaded", 1)
	waitLog(t, s, `msg="config change needs a restart to take effect; the running value stays" keys=listener`, 1)
	waitLog(t, s, "shutdown_grace=7s", 1)

	c = Dial(t, s.MX) // the old address still serves
	c.Greeting()
	c.Hello()
	c.Cmd("MAIL FROM:<a@b.example>", 250)
	// <Postmaster> is completed with the new first domain; were it still
	// test.example, no longer local, the MX would refuse to relay.
	c.Cmd("RCPT TO:<Postmaster>", 250)
	c.Cmd("RCPT TO:<postmaster@"+testDomain+">", 550)
	c.Cmd("QUIT", 221)
	c.Close()

	s.Stop(t)
	if !strings.Contains(s.Logs(), `msg="shutting down" signal=terminated grace=7s`) {
		t.Errorf("shutdown did not use the reloaded grace:\n%s", s.Logs())
	}
}

// TestFUSEFallsBackToFile: with data_dir on a real FUSE file system
// (bindfs), where syncfs(2) never reaches the FUSE daemon, serve runs the
// default maildir.sync = "journal" as "file", says so at warn with the
// file-system kind, opens no journal, and still delivers and answers
// `smtpkit queue`.
func TestFUSEFallsBackToFile(t *testing.T) {
	bindfs := Need(t, "bindfs")
	s := StartServer(t, ServerOptions{})
	s.Stop(t)
	src, mnt := filepath.Join(s.Dir, "fuse-src"), filepath.Join(s.Dir, "fuse")
	for _, d := range []string{src, mnt} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if r := runPeer(t, nil, bindfs, src, mnt); r.Err != nil {
		t.Skipf("cannot mount a FUSE file system here (bindfs: %v %s)", r.Err, r.Stderr)
	}
	t.Cleanup(func() {
		s.Stop(t) // before the unmount; StartServer's own cleanup runs later
		if r := runPeer(t, nil, "umount", mnt); r.Err != nil {
			t.Errorf("umount %s: %v %s", mnt, r.Err, r.Stderr)
		}
	})
	s.DataDir = filepath.Join(mnt, "data")
	s.CertPath = filepath.Join(s.DataDir, "tls", "selfsigned.crt")
	if err := os.WriteFile(s.ConfigPath, []byte(s.config(ServerOptions{})), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Restart(t)
	logs := s.Logs()
	for _, want := range []string{
		`level=WARN msg="maildir.sync falls back to per-file fsync: syncfs is not a durability barrier on this file system" configured=journal effective=file role=maildir path=` + filepath.Join(s.DataDir, "mail") + ` filesystem="fuse (0x65735546)"`,
		`msg="maildir sync mode in effect" sync=file configured=journal maildir_filesystem="fuse (0x65735546)"`,
	} {
		if n := strings.Count(logs, want); n != 1 {
			t.Errorf("log says %q %d times, want once:\n%s", want, n, logs)
		}
	}
	sendToPostmaster(t, s, "on-fuse")
	s.WaitMessages(t, "postmaster@"+testDomain, 1)
	if _, err := os.Stat(filepath.Join(s.DataDir, "journal")); err == nil {
		t.Error("a journal was opened on the FUSE file system")
	}
	mustRun(t, nil, s.bin, "queue", "list", "-config", s.ConfigPath)
}
