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
// checkpoint, and the Maildir file is damaged (cut to a few bytes). The
// restarted server replays its journal: the message is back in new/, once,
// byte for byte, and the log says so. (A file lost with the page cache
// needs a power loss, which SIGKILL cannot cause: internal/maildir's
// crash-simulation tests cover it.)
func TestJournalReplayAfterKill9(t *testing.T) {
	s := StartServer(t, ServerOptions{ExtraTOML: "[maildir]\nsync = \"journal\"\ncheckpoint = \"1h\"\n"})
	msg := sendToPostmaster(t, s, "journal-replay")
	s.Kill9(t)
	dir := filepath.Join(s.Maildir("postmaster@test.example"), "new")
	names := listFiles(t, dir)
	if len(names) != 1 {
		t.Fatalf("new/ holds %v after SIGKILL, want the acknowledged message", names)
	}
	if err := os.Truncate(filepath.Join(dir, names[0]), 5); err != nil {
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

// TestJournalKeepsExpungedAfterKill9: a message is acknowledged, a mail
// client (Dovecot, here the test) reads and expunges it, and the server is
// killed with SIGKILL before its checkpoint. The kernel kept its page
// cache (the boot id in the journal is the running one), so the missing
// file was deleted on purpose: the restarted server must not bring it
// back.
func TestJournalKeepsExpungedAfterKill9(t *testing.T) {
	if _, err := os.Stat("/proc/sys/kernel/random/boot_id"); err != nil {
		t.Skip("no boot id: every replay is treated as after a power loss")
	}
	s := StartServer(t, ServerOptions{ExtraTOML: "[maildir]\nsync = \"journal\"\ncheckpoint = \"1h\"\n"})
	sendToPostmaster(t, s, "expunged-before-kill")
	box := s.Maildir("postmaster@test.example")
	names := listFiles(t, filepath.Join(box, "new"))
	if len(names) != 1 {
		t.Fatalf("new/ holds %v, want the acknowledged message", names)
	}
	// Read (moved to cur/ with flags, as Dovecot does), then expunged.
	seen := filepath.Join(box, "cur", names[0]+":2,S")
	if err := os.Rename(filepath.Join(box, "new", names[0]), seen); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(seen); err != nil {
		t.Fatal(err)
	}
	s.Kill9(t)
	s.Restart(t)
	second := sendToPostmaster(t, s, "after-restart")
	got := s.WaitMessages(t, "postmaster@test.example", 1)
	if len(got) != 1 {
		t.Fatalf("%d messages after the restart, want only the new one", len(got))
	}
	checkDelivered(t, got[0], second, "a@b.example")
	if files := listFiles(t, filepath.Join(box, "cur")); len(files) != 0 {
		t.Fatalf("cur/ after the restart: %v", files)
	}
	if !strings.Contains(s.Logs(), "deleted=1") && !strings.Contains(s.Logs(), `"deleted":1`) {
		t.Fatalf("the replay did not report the expunged message:\n%s", s.Logs())
	}
}
