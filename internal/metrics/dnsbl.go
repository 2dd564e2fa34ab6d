package metrics

// dnsbl.go: the DNSBL and early-talker counters (issue #15). DNSBLHit
// implements inbound.Events' method, EarlyTalker server.Observer's.

// DNSBLHit counts a client listed by zone (a configured [[dnsbl]] zone).
func (m *Metrics) DNSBLHit(zone string) {
	m.dnsblHits.WithLabelValues(zone).Inc()
}

// EarlyTalker counts a client refused for talking before the greeting.
func (m *Metrics) EarlyTalker(listener string) {
	m.earlyTalkers.WithLabelValues(listener).Inc()
}
