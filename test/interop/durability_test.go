package interop

import "testing"

// TestKill9AfterAccept checks that 250 after DATA means durable (house
// rule 2): a message acknowledged just before the server is killed with
// SIGKILL is in new/, whole, when it comes back, and the restarted server
// accepts mail again on the same ports and data directory.
func TestKill9AfterAccept(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	send := func(tag string) []byte {
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
	first := send("before-kill")
	s.Kill9(t)
	if n := s.CountFiles(t, "postmaster@test.example", "new"); n != 1 {
		t.Fatalf("%d messages in new/ after SIGKILL, want the acknowledged one", n)
	}
	s.Restart(t)
	second := send("after-restart")
	got := s.WaitMessages(t, "postmaster@test.example", 2)
	checkDelivered(t, got[0], first, "a@b.example")
	checkDelivered(t, got[1], second, "a@b.example")
}
