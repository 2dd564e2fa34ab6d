package metrics

import "github.com/prometheus/client_golang/prometheus"

// greylist.go: the greylist's decisions (internal/inbound's Events).

// greylistMetrics are the greylist's counters.
type greylistMetrics struct {
	deferred *prometheus.CounterVec // reason
	passed   *prometheus.CounterVec // reason
}

func newGreylistMetrics(counter func(name, help string, labels ...string) *prometheus.CounterVec) greylistMetrics {
	return greylistMetrics{
		deferred: counter("greylist_deferrals_total", "Delivery attempts deferred (a temporary failure) by the greylist, by reason (new, too_early: retried before the delay, late: retried after the retry window).", "reason"),
		passed:   counter("greylist_passes_total", "Greylisted triplets that passed (known, retried) and messages exempted for an aligned DKIM signature (dkim_aligned).", "reason"),
	}
}

// GreylistDeferred counts a greylist deferral.
func (m *Metrics) GreylistDeferred(reason string) { m.greylist.deferred.WithLabelValues(reason).Inc() }

// GreylistPassed counts a triplet or message the greylist let through.
func (m *Metrics) GreylistPassed(reason string) { m.greylist.passed.WithLabelValues(reason).Inc() }

// WatchGreylist reports the triplets the greylist holds (size, read at
// scrape time) as smtpkit_greylist_entries, to be watched against
// greylist.max_entries.
func (m *Metrics) WatchGreylist(size func() int) {
	m.register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "greylist_entries",
		Help: "Triplets the greylist holds (waiting and passed), bounded by greylist.max_entries."},
		func() float64 { return float64(size()) }))
}
