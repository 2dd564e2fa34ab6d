package server

// state is where a session is in the command sequence of RFC 5321 §4.1.4
// (and RFC 3030 §2 for BDAT). The command table (commands.go) says in
// which states each verb runs; the handlers move the session on:
//
//	greeted --HELO/EHLO--> ready --MAIL--> mail --RCPT--> rcpt --DATA--> data
//	                                                        \--BDAT--> bdat
//
// The end of the data, RSET, HELO/EHLO and a failed transaction go back to
// ready; STARTTLS goes back to greeted (RFC 3207 §4.2: the client must
// greet again).
type state uint8

const (
	stateGreeted state = iota // the 220 greeting was sent, no HELO/EHLO yet (also after STARTTLS)
	stateReady                // HELO or EHLO given, no transaction
	stateMail                 // MAIL accepted, no recipient yet
	stateRcpt                 // one recipient or more accepted
	stateData                 // DATA answered 354: the message text is being read
	stateBdat                 // BDAT chunks are arriving, LAST not yet
	numStates
)

// inTxn reports whether a mail transaction (RFC 5321 §3.3) is open.
func (st state) inTxn() bool { return st >= stateMail }

// stateSet is a set of states, one bit each.
type stateSet uint8

// in is the set of the states given.
func in(states ...state) stateSet {
	var set stateSet
	for _, st := range states {
		set |= 1 << st
	}
	return set
}

// anyState is every state a command can arrive in (none arrives in
// stateData: the message text is read to its end first).
const anyState stateSet = 1<<stateGreeted | 1<<stateReady | 1<<stateMail | 1<<stateRcpt | 1<<stateBdat

func (set stateSet) has(st state) bool { return set&(1<<st) != 0 }
