package server

import "time"

// Stress mode. Connection slots are what a slow client takes from the
// others: a thousand sessions that each send a byte every few seconds keep
// every slot busy within the ordinary timeouts. So, as Postfix's stress
// mode does, the server watches how many slots are in use. From
// StressThreshold percent of Limits.Connections on it is stressed: each
// session open then, and each one that starts while the stress lasts, is
// marked stressed for the rest of its life, and in a stressed session
// every wait for a command or for message data is bounded by the short
// Stress timeouts instead of CommandTimeout and DataTimeout (and the
// minimum data rate's allowance, pace.go, shrinks with them). The sessions
// that are waiting already, between commands or for message data, have
// their read deadline brought forward to now plus the short timeout, so
// that the slow ones give their slots back within seconds. Stress mode
// ends when the slots in use fall a tenth below the threshold (so that it
// does not flap); sessions that started after that get the normal
// timeouts. Both changes are logged at info level.
//
// The mark stays, as in Postfix, where an smtpd started under stress keeps
// the stress settings: otherwise the first trickles cut would end the
// stress, and the rest would hold their slots for the normal timeouts.
//
// RFC 5321 §4.5.3.2 asks for timeouts of minutes; it also lets a server
// close with 421 when it must (§3.8), and a server that refuses every
// client because its slots are held by trickles serves nobody. Normal
// clients answer within milliseconds and never notice.
//
// Server.stressed is written under Server.mu (by admit and release); a
// session's mark is set under Server.mu too and read without it when the
// session arms a deadline. A session arming a deadline at the very moment
// it is marked may arm the long one; its next deadline is short.

// stressLevels returns the slots in use at which stress mode begins and at
// or below which it ends.
func stressLevels(l *Limits) (enter, leave int) {
	enter = max(1, (l.Connections*l.StressThreshold+99)/100)
	return enter, enter - max(1, enter/10)
}

// updateStress enters or leaves stress mode for the slots now in use. It
// runs under s.mu, after admit or release changed them.
func (s *Server) updateStress() {
	lim := s.limits.Load()
	n := len(s.sessions)
	enter, leave := stressLevels(lim)
	switch {
	case !s.stressed.Load() && n >= enter:
		s.stressed.Store(true)
		s.log.Info("stress mode on: shorter timeouts", "connections", n, "limit", lim.Connections,
			"command_timeout", lim.StressCommandTimeout, "data_timeout", lim.StressDataTimeout)
		now := s.now()
		for sess := range s.sessions {
			sess.conn.stressCut(now)
		}
	case s.stressed.Load() && n <= leave:
		s.stressed.Store(false)
		s.log.Info("stress mode off: new sessions get the normal timeouts", "connections", n, "limit", lim.Connections)
	}
}

// commandTimeout is how long the session waits for a command line (and
// for a reply to be taken), shorter in stress mode.
func (c *conn) commandTimeout() time.Duration {
	if c.stressed.Load() {
		return min(c.limits.StressCommandTimeout, c.limits.CommandTimeout)
	}
	return c.limits.CommandTimeout
}

// dataTimeout is how long the session waits for the next block of message
// data, shorter in stress mode.
func (c *conn) dataTimeout() time.Duration {
	if c.stressed.Load() {
		return min(c.limits.StressDataTimeout, c.limits.DataTimeout)
	}
	return c.limits.DataTimeout
}

// stressCut marks a session stressed when stress mode begins: one waiting between
// commands or for message data gets a read deadline of now plus the
// stress timeout, unless the one it armed is sooner. A session doing
// anything else arms a short deadline at its next wait. The session's own
// record of its deadline (readArmed) is left alone; cutAt makes its next arming
// happen whatever that record says, and readDeadline honour the cut.
// Called under Server.mu.
func (c *conn) stressCut(now time.Time) {
	c.stressed.Store(true)
	c.mu.Lock()
	defer c.mu.Unlock()
	var d time.Duration
	switch {
	case c.inData:
		d = min(c.limits.StressDataTimeout, c.limits.DataTimeout)
	case c.idle && c.handOff != handOffAsked: // an asked handoff re-arms in resume
		d = min(c.limits.StressCommandTimeout, c.limits.CommandTimeout)
	default:
		return
	}
	t := now.Add(d)
	if armed := c.armedAt.Load(); armed != 0 && armed <= t.UnixNano() {
		return
	}
	c.cutAt.Store(t.UnixNano())
	c.raw.SetReadDeadline(t)
}

// readDeadline is the read deadline the connection has now, for putting it
// back after a handoff's interrupt: the one the session armed, or the one
// stressCut brought forward since. In stress mode it is at most the stress
// command timeout away.
func (c *conn) readDeadline() time.Time {
	t := c.readArmed
	if cut := c.cutAt.Load(); cut != 0 && (t.IsZero() || cut < t.UnixNano()) {
		t = time.Unix(0, cut)
	}
	if c.stressed.Load() {
		if st := c.deadlineIn(c.commandTimeout()); t.IsZero() || st.Before(t) {
			t = st
		}
	}
	return t
}

// setInData marks the session as waiting for message data, for stressCut.
func (c *conn) setInData(on bool) {
	c.mu.Lock()
	c.inData = on
	c.mu.Unlock()
}
