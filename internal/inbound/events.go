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
}
