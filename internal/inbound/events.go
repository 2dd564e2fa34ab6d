package inbound

// Events are what inbound's abuse controls report, typically to count
// them (internal/metrics implements it; metrics does not import inbound,
// the method sets match). Methods are called from session goroutines:
// they must be fast and safe for concurrent use. Options.Events nil
// reports nothing.
type Events interface {
	// DNSBLHit: the zone (a configured [[dnsbl]] zone name, so a bounded
	// label) listed a client, once per session (screen.go).
	DNSBLHit(zone string)
	// GreylistDeferred counts a delivery attempt answered 451 4.7.1 by
	// the greylist (greylist.go), by the greylist's reason: "new",
	// "too_early", "late".
	GreylistDeferred(reason string)
	// GreylistPassed counts a triplet that passed ("known", "retried")
	// and a message exempted for its DKIM signature ("dkim_aligned").
	GreylistPassed(reason string)
	// MilterAction: the milter (a configured [[milter]] name) answered
	// accept, reject, tempfail or discard at some stage, asked for a
	// quarantine, or failed ("failed": down, timed out, broke the
	// protocol; its default action applied) (milter.go).
	MilterAction(milter, action string)
	// AccountLimited counts a MAIL or RCPT of an authenticated account
	// refused for going over one of its [account_limits], by the limit's
	// name ("messages_per_hour", …: sendlimit's constants).
	AccountLimited(limit string)
}

// noEvents is the Events of a Backend without Options.Events.
type noEvents struct{}

func (noEvents) DNSBLHit(string)             {}
func (noEvents) GreylistDeferred(string)     {}
func (noEvents) GreylistPassed(string)       {}
func (noEvents) MilterAction(string, string) {}
func (noEvents) AccountLimited(string)       {}

// events is opts.Events, or noEvents.
func (b *Backend) events() Events {
	if b.opts.Events != nil {
		return b.opts.Events
	}
	return noEvents{}
}
