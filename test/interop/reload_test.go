package interop

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReloadOnSIGHUP: a reload applies a new local domain without dropping
// an open session, and a broken config is refused while the running one
// stays in force.
func TestReloadOnSIGHUP(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	open := Dial(t, s.MX)
	open.Greeting()
	open.Hello()

	c := Dial(t, s.MX)
	c.Greeting()
	c.Hello()
	c.Cmd("MAIL FROM:<a@b.example>", 250)
	c.Cmd("RCPT TO:<postmaster@new.example>", 550)
	c.Close()

	if err := os.WriteFile(s.ConfigPath, []byte(s.config(ServerOptions{Domains: []string{"new.example"}})), 0o600); err != nil {
		t.Fatal(err)
	}
	s.hup(t)
	waitLog(t, s, "configuration reloaded", 1)

	c = Dial(t, s.MX)
	c.Greeting()
	c.Hello()
	c.Cmd("MAIL FROM:<a@b.example>", 250)
	c.Cmd("RCPT TO:<postmaster@new.example>", 250)
	c.Close()
	open.Cmd("NOOP", 250) // the session from before the reload is still served

	if err := os.WriteFile(s.ConfigPath, []byte("hostname = \n[[nonsense"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.hup(t)
	waitLog(t, s, "config reload refused", 1)
	c = Dial(t, s.MX)
	c.Greeting()
	c.Hello()
	c.Cmd("MAIL FROM:<a@b.example>", 250)
	c.Cmd("RCPT TO:<postmaster@new.example>", 250)
	open.Cmd("QUIT", 221)
}

func (s *Server) hup(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

// waitLog polls the server's log until text appears n times (bounded).
func waitLog(t *testing.T, s *Server, text string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Count(s.Logs(), text) >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("log never said %q %d times:\n%s", text, n, s.Logs())
}
