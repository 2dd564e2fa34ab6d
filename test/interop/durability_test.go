package interop

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sendToPostmaster sends one test message from a@b.example to
// postmaster@test.example over the mx listener, waits for its 250 and
// returns it.
func sendToPostmaster(t *testing.T, s *Server, tag string) []byte {
	t.Helper()
	msg := testMessage(tag)
	c := Dial(t, s.MX)
	c.Greeting()
	c.Hello()
	mailFrom(c, "a@b.example")
	c.Cmd("RCPT TO:<postmaster@test.example>", 250)
	c.Cmd("DATA", 354)
	c.Write(string(dotStuff(msg)) + ".\r\n")
	c.Expect(250)
	return msg
}

// TestKill9AfterAccept checks that 250 after DATA means durable (house
// rule 2): a message acknowledged just before the server is killed with
// SIGKILL is in new/, whole, when it comes back, and the restarted server
// accepts mail again on the same ports and data directory.
func TestKill9AfterAccept(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	first := sendToPostmaster(t, s, "before-kill")
	s.Kill9(t)
	if n := s.CountFiles(t, "postmaster@test.example", "new"); n != 1 {
		t.Fatalf("%d messages in new/ after SIGKILL, want the acknowledged one", n)
	}
	s.Restart(t)
	second := sendToPostmaster(t, s, "after-restart")
	got := s.WaitMessages(t, "postmaster@test.example", 2)
	checkDelivered(t, got[0], first, "a@b.example")
	checkDelivered(t, got[1], second, "a@b.example")
}

// TestJournalReplayAfterKill9 is the crash the journal exists for: a
// message is acknowledged, the server is killed with SIGKILL before its
// checkpoint, and the Maildir file is gone as after a power cut that lost
// unflushed data (SIGKILL alone keeps the page cache, so the test removes
// the file). The restarted server replays its journal: the message is back
// in new/, once, byte for byte, and the log says so.
func TestJournalReplayAfterKill9(t *testing.T) {
	s := StartServer(t, ServerOptions{ExtraTOML: "[maildir]\nsync = \"journal\"\ncheckpoint = \"1h\"\n"})
	msg := sendToPostmaster(t, s, "journal-replay")
	s.Kill9(t)
	dir := filepath.Join(s.Maildir("postmaster@test.example"), "new")
	names := listFiles(t, dir)
	if len(names) != 1 {
		t.Fatalf("new/ holds %v after SIGKILL, want the acknowledged message", names)
	}
	if err := os.Remove(filepath.Join(dir, names[0])); err != nil {
		t.Fatal(err)
	}
	s.Restart(t)
	got := s.WaitMessages(t, "postmaster@test.example", 1)
	if len(got) != 1 {
		t.Fatalf("%d messages after the replay, want 1", len(got))
	}
	checkDelivered(t, got[0], msg, "a@b.example")
	if again := listFiles(t, dir); len(again) != 1 || again[0] != names[0] {
		t.Fatalf("new/ after the replay: %v, want %v", again, names)
	}
	if !strings.Contains(s.Logs(), "journal replayed") {
		t.Fatalf("no replay in the server log:\n%s", s.Logs())
	}
}
