package metrics

// milter.go: the content filters' counter (issue #15). MilterAction
// implements inbound.Events' method.

// MilterAction counts one answer of a milter (a configured [[milter]]
// name): accept, reject, tempfail, discard, quarantine, or failed.
func (m *Metrics) MilterAction(milter, action string) {
	m.milterActions.WithLabelValues(milter, action).Inc()
}
