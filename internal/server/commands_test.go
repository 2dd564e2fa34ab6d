package server

import (
	"strings"
	"testing"

	"smtpkit/internal/smtp"
)

// tableStates are the states a command can arrive in, in the order of
// stateVerbCodes' columns, with the commands that lead there.
var tableStates = []struct {
	st   state
	lead []string // sent after the greeting, each answered with 2xx
}{
	{stateGreeted, nil},
	{stateReady, []string{"EHLO c"}},
	{stateMail, []string{"EHLO c", "MAIL FROM:<a@b.example>"}},
	{stateRcpt, []string{"EHLO c", "MAIL FROM:<a@b.example>", "RCPT TO:<alice@example.com>"}},
	{stateBdat, []string{"EHLO c", "MAIL FROM:<a@b.example>", "RCPT TO:<alice@example.com>", "BDAT 1\r\nx"}},
}

// stateVerbCodes is the state × verb table: the reply code each command
// gets in each state (greeted, ready, mail, rcpt, bdat) on an mx listener
// with implicit TLS and AUTH. It is written out here, not taken from the
// command table, so that it checks the table: RFC 5321 §4.1.4 (503 out of
// sequence; EHLO, HELO, RSET, NOOP, QUIT, VRFY and HELP anywhere), RFC 3030
// §2 (BDAT after RCPT, DATA and RCPT not among BDAT chunks), RFC 4954 §4
// (AUTH after EHLO, not in a transaction), RFC 3207 §4.2 (no STARTTLS
// inside TLS).
var stateVerbCodes = []struct {
	send  string
	codes [5]string
}{
	{"EHLO c", [5]string{"250", "250", "250", "250", "250"}},
	{"HELO c", [5]string{"250", "250", "250", "250", "250"}},
	{"MAIL FROM:<a@b.example>", [5]string{"503", "250", "503", "503", "503"}},
	{"RCPT TO:<alice@example.com>", [5]string{"503", "503", "250", "250", "503"}},
	{"DATA", [5]string{"503", "503", "503", "354", "503"}},
	{"BDAT 1\r\nx", [5]string{"503", "503", "503", "250", "250"}},
	{"RSET", [5]string{"250", "250", "250", "250", "250"}},
	{"NOOP", [5]string{"250", "250", "250", "250", "250"}},
	{"QUIT", [5]string{"221", "221", "221", "221", "221"}},
	{"VRFY alice", [5]string{"252", "252", "252", "252", "252"}},
	{"EXPN list", [5]string{"502", "502", "502", "502", "502"}},
	{"HELP", [5]string{"214", "214", "214", "214", "214"}},
	{"STARTTLS", [5]string{"503", "503", "503", "503", "503"}},
	{"AUTH PLAIN " + b64("\x00alice@example.com\x00secret"), [5]string{"503", "235", "503", "503", "503"}},
}

// TestStateVerbTable sends every command in every state it can arrive in
// and checks its reply code against stateVerbCodes.
func TestStateVerbTable(t *testing.T) {
	ts := startServer(t, Limits{Connections: 1000, ConnectionsPerIP: 1000, ConnectionRate: 1 << 20},
		Listener{Role: RoleMX, TLS: TLSImplicit, Auth: true})
	for col, st := range tableStates {
		for _, row := range stateVerbCodes {
			verb, _, _ := strings.Cut(row.send, " ")
			t.Run(st.st.String()+"/"+verb, func(t *testing.T) {
				c := tlsDial(t, ts.addrs[0])
				defer c.conn.Close()
				for _, lead := range st.lead {
					c.send(line(lead))
					c.expect("250")
				}
				c.send(line(row.send))
				if got := c.reply(); !strings.HasPrefix(got, row.codes[col]) {
					t.Errorf("%s in state %s: got %q, want %s", verb, st.st, got, row.codes[col])
				}
			})
		}
	}
}

// line is a command as sent: with CRLF, unless it carries a BDAT chunk.
func line(cmd string) string {
	if strings.HasPrefix(cmd, "BDAT ") {
		return cmd
	}
	return cmd + "\r\n"
}

// TestCommandTable: every verb of the table is known to the session, and
// HELP names each one the table lists, in the table's order.
func TestCommandTable(t *testing.T) {
	var listed []string
	for _, c := range commands {
		if got := lookup(c.verb); got == nil || got.verb != c.verb {
			t.Errorf("lookup(%q) = %v", c.verb, got)
		}
		if c.states&^anyState != 0 || c.states == 0 {
			t.Errorf("%s: states %08b, want a non-empty subset of %08b", c.verb, c.states, anyState)
		}
		if c.states != anyState && c.refuse == nil {
			t.Errorf("%s runs in some states only but has no refusal", c.verb)
		}
		if !c.unlisted {
			listed = append(listed, c.verb)
		}
	}
	if lookup("FOO") != nil {
		t.Error("lookup found an unknown verb")
	}
	help := helpReply()
	if got, want := help.Lines[1], strings.Join(listed, " "); got != want {
		t.Errorf("HELP lists %q, want %q", got, want)
	}
	if want := "EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH"; help.Lines[1] != want {
		t.Errorf("HELP lists %q, want %q as before", help.Lines[1], want)
	}
}

// positiveReplies are the codes below 400 each verb may get, and the
// states (by stateVerbCodes) it may get them in; AUTH's 334 comes in
// its exchange.
var positiveReplies = map[string][]int{
	"EHLO": {smtp.CodeOK}, "HELO": {smtp.CodeOK}, "MAIL": {smtp.CodeOK}, "RCPT": {smtp.CodeOK},
	"DATA": {smtp.CodeStartData, smtp.CodeOK}, "BDAT": {smtp.CodeOK}, "RSET": {smtp.CodeOK},
	"NOOP": {smtp.CodeOK}, "QUIT": {smtp.CodeClosing}, "VRFY": {smtp.CodeCannotVRFY},
	"HELP": {smtp.CodeHelp}, "STARTTLS": {smtp.CodeReady}, "AUTH": {smtp.CodeAuthContinue, smtp.CodeAuthOK},
}

// legalReply reports whether r may answer c (nil: no command) arriving in
// state st: a refusal (4xx, 5xx) always may; a positive reply only where
// stateVerbCodes has one for the verb (AUTH and STARTTLS: in the states
// where the sequence allows them), and only a code the verb has; the one
// positive reply to no command is the greeting, before any command.
func legalReply(st state, c *command, r smtp.Reply, greeted bool) bool {
	if r.Code >= 400 {
		return true
	}
	if c == nil {
		return r.Code == smtp.CodeReady && st == stateGreeted && !greeted
	}
	col := -1
	for i, ts := range tableStates {
		if ts.st == st {
			col = i
		}
	}
	if col < 0 {
		return false // no command arrives in stateData
	}
	allowed := false
	for _, row := range stateVerbCodes {
		if verb, _, _ := strings.Cut(row.send, " "); verb == c.verb {
			allowed = row.codes[col] < "400" || c.verb == "STARTTLS" || c.verb == "AUTH" && st == stateReady
		}
	}
	if !allowed {
		return false
	}
	for _, code := range positiveReplies[c.verb] {
		if r.Code == code {
			return true
		}
	}
	return false
}

// String names a state in test failures.
var stateNames = [numStates]string{"greeted", "ready", "mail", "rcpt", "data", "bdat"}

func (st state) String() string {
	if st < numStates {
		return stateNames[st]
	}
	return "state?"
}
