package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestGreylistCounters(t *testing.T) {
	m := New(Options{NoRuntime: true})
	m.GreylistDeferred("new")
	m.GreylistDeferred("new")
	m.GreylistDeferred("too_early")
	m.GreylistPassed("retried")
	m.GreylistPassed("dkim_aligned")
	m.WatchGreylist(func() int { return 42 })
	const want = `
# HELP smtpkit_greylist_deferrals_total Delivery attempts deferred (a temporary failure) by the greylist, by reason (new, too_early: retried before the delay, late: retried after the retry window).
# TYPE smtpkit_greylist_deferrals_total counter
smtpkit_greylist_deferrals_total{reason="new"} 2
smtpkit_greylist_deferrals_total{reason="too_early"} 1
# HELP smtpkit_greylist_entries Triplets the greylist holds (waiting and passed), bounded by greylist.max_entries.
# TYPE smtpkit_greylist_entries gauge
smtpkit_greylist_entries 42
# HELP smtpkit_greylist_passes_total Greylisted triplets that passed (known, retried) and messages exempted for an aligned DKIM signature (dkim_aligned).
# TYPE smtpkit_greylist_passes_total counter
smtpkit_greylist_passes_total{reason="dkim_aligned"} 1
smtpkit_greylist_passes_total{reason="retried"} 1
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), "smtpkit_greylist_deferrals_total", "smtpkit_greylist_entries", "smtpkit_greylist_passes_total"); err != nil {
		t.Error(err)
	}
}
