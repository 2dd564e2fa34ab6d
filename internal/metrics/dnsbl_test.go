package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"smtpkit/internal/inbound"
)

// Metrics must satisfy inbound's Events (checked here: metrics does not
// import inbound).
var _ inbound.Events = (*Metrics)(nil)

func TestAbuseCounters(t *testing.T) {
	m := New(Options{NoRuntime: true})
	m.DNSBLHit("bl.example")
	m.DNSBLHit("bl.example")
	m.DNSBLHit("wl.example")
	m.EarlyTalker("mx")
	if got := testutil.ToFloat64(m.earlyTalkers.WithLabelValues("mx")); got != 1 {
		t.Errorf("early talkers = %v, want 1", got)
	}
	for _, tt := range []struct {
		zone string
		want float64
	}{{"bl.example", 2}, {"wl.example", 1}} {
		if got := testutil.ToFloat64(m.dnsblHits.WithLabelValues(tt.zone)); got != tt.want {
			t.Errorf("dnsbl hits %s = %v, want %v", tt.zone, got, tt.want)
		}
	}
}
