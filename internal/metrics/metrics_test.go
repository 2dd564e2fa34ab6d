package metrics

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"smtpkit/internal/queue"
	"smtpkit/internal/server"
	"smtpkit/internal/smtp"
)

// Metrics must satisfy the server's Observer (checked here, not in the
// package, so that metrics does not import server).
var _ server.Observer = (*Metrics)(nil)

func TestObserverCounters(t *testing.T) {
	m := New(Options{NoRuntime: true})
	m.ConnectionAccepted("mx")
	m.ConnectionAccepted("mx")
	m.ConnectionAccepted("submission")
	m.ConnectionRefused("mx", server.ReasonTooManyFromIP)
	m.TLSEstablished("mx", tls.VersionTLS13)
	m.TLSEstablished("mx", tls.VersionTLS12)
	m.TLSEstablished("mx", tls.VersionTLS13)
	m.TLSFailed("mx")
	m.AuthResult("submission", "PLAIN", false)
	m.AuthResult("submission", "PLAIN", false)
	m.AuthResult("submission", "PLAIN", true)
	m.MessageAccepted("mx", 2000, true, 30*time.Millisecond)
	m.MessageAccepted("mx", 500, false, 10*time.Millisecond)
	m.MessageRefused("mx", server.ReasonSmuggling)
	m.RecipientRefused("mx", server.ReasonRelay)
	m.RecipientRefused("mx", server.ReasonRelay)

	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"connections mx", testutil.ToFloat64(m.connections.WithLabelValues("mx")), 2},
		{"connections submission", testutil.ToFloat64(m.connections.WithLabelValues("submission")), 1},
		{"refused", testutil.ToFloat64(m.connRefused.WithLabelValues("mx", "too_many_from_ip")), 1},
		{"tls 1.3", testutil.ToFloat64(m.tlsHandshakes.WithLabelValues("mx", "TLS 1.3")), 2},
		{"tls 1.2", testutil.ToFloat64(m.tlsHandshakes.WithLabelValues("mx", "TLS 1.2")), 1},
		{"tls failed", testutil.ToFloat64(m.tlsFailures.WithLabelValues("mx")), 1},
		{"auth failure", testutil.ToFloat64(m.auth.WithLabelValues("submission", "PLAIN", "failure")), 2},
		{"auth success", testutil.ToFloat64(m.auth.WithLabelValues("submission", "PLAIN", "success")), 1},
		{"accepted tls", testutil.ToFloat64(m.accepted.WithLabelValues("mx", "true")), 1},
		{"accepted plain", testutil.ToFloat64(m.accepted.WithLabelValues("mx", "false")), 1},
		{"bytes", testutil.ToFloat64(m.acceptedBytes.WithLabelValues("mx")), 2500},
		{"msg refused", testutil.ToFloat64(m.msgRefused.WithLabelValues("mx", "smuggling")), 1},
		{"rcpt refused", testutil.ToFloat64(m.rcptRefused.WithLabelValues("mx", "relay")), 2},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	const histograms = `
# HELP smtpkit_message_accept_duration_seconds Time from DATA (or the first BDAT) to the 250, including the durable commit.
# TYPE smtpkit_message_accept_duration_seconds histogram
smtpkit_message_accept_duration_seconds_bucket{listener="mx",le="0.005"} 0
smtpkit_message_accept_duration_seconds_bucket{listener="mx",le="0.0125"} 1
smtpkit_message_accept_duration_seconds_bucket{listener="mx",le="0.03125"} 2
smtpkit_message_accept_duration_seconds_bucket{listener="mx",le="0.078125"} 2
smtpkit_message_accept_duration_seconds_bucket{listener="mx",le="0.1953125"} 2
smtpkit_message_accept_duration_seconds_bucket{listener="mx",le="0.48828125"} 2
smtpkit_message_accept_duration_seconds_bucket{listener="mx",le="1.220703125"} 2
smtpkit_message_accept_duration_seconds_bucket{listener="mx",le="3.0517578125"} 2
smtpkit_message_accept_duration_seconds_bucket{listener="mx",le="7.62939453125"} 2
smtpkit_message_accept_duration_seconds_bucket{listener="mx",le="19.073486328125"} 2
smtpkit_message_accept_duration_seconds_bucket{listener="mx",le="47.6837158203125"} 2
smtpkit_message_accept_duration_seconds_bucket{listener="mx",le="119.20928955078125"} 2
smtpkit_message_accept_duration_seconds_bucket{listener="mx",le="+Inf"} 2
smtpkit_message_accept_duration_seconds_sum{listener="mx"} 0.04
smtpkit_message_accept_duration_seconds_count{listener="mx"} 2
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(histograms), "smtpkit_message_accept_duration_seconds"); err != nil {
		t.Error(err)
	}
}

// fakeQueue is a QueueStats with a fixed list.
type fakeQueue []queue.Summary

func (f fakeQueue) List(context.Context) ([]queue.Summary, error) { return f, nil }

func TestQueueCollector(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	m := New(Options{NoRuntime: true, Now: func() time.Time { return now }})
	m.WatchQueue(fakeQueue{
		{ID: "a", Arrival: now.Add(-90 * time.Second), Size: 1000, Recipients: []queue.RcptStatus{
			{State: queue.Queued}, {State: queue.Deferred}, {State: queue.Delivered}}},
		{ID: "b", Arrival: now.Add(-10 * time.Second), Size: 24, Held: true, Recipients: []queue.RcptStatus{
			{State: queue.Deferred}}},
	})
	const want = `
# HELP smtpkit_queue_bytes Octets of the messages in the outbound queue.
# TYPE smtpkit_queue_bytes gauge
smtpkit_queue_bytes 1024
# HELP smtpkit_queue_held_messages Messages in the outbound queue held by the operator.
# TYPE smtpkit_queue_held_messages gauge
smtpkit_queue_held_messages 1
# HELP smtpkit_queue_messages Messages in the outbound queue.
# TYPE smtpkit_queue_messages gauge
smtpkit_queue_messages 2
# HELP smtpkit_queue_oldest_age_seconds Age of the oldest message in the outbound queue; 0 when it is empty.
# TYPE smtpkit_queue_oldest_age_seconds gauge
smtpkit_queue_oldest_age_seconds 90
# HELP smtpkit_queue_recipients Recipients of queued messages, by state.
# TYPE smtpkit_queue_recipients gauge
smtpkit_queue_recipients{state="deferred"} 2
smtpkit_queue_recipients{state="delivered"} 1
smtpkit_queue_recipients{state="failed"} 0
smtpkit_queue_recipients{state="queued"} 1
`
	names := []string{"smtpkit_queue_bytes", "smtpkit_queue_held_messages", "smtpkit_queue_messages",
		"smtpkit_queue_oldest_age_seconds", "smtpkit_queue_recipients"}
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}

	empty := New(Options{NoRuntime: true})
	empty.WatchQueue(fakeQueue{})
	if err := testutil.GatherAndCompare(empty.reg, strings.NewReader(`
# HELP smtpkit_queue_oldest_age_seconds Age of the oldest message in the outbound queue; 0 when it is empty.
# TYPE smtpkit_queue_oldest_age_seconds gauge
smtpkit_queue_oldest_age_seconds 0
`), "smtpkit_queue_oldest_age_seconds"); err != nil {
		t.Error(err)
	}
}

// scriptedCourier answers with fixed results and checks the in-flight gauge.
type scriptedCourier struct {
	m        *Metrics
	results  []queue.Result
	inFlight float64
}

func (c *scriptedCourier) Deliver(ctx context.Context, d *queue.Attempt) []queue.Result {
	c.inFlight = testutil.ToFloat64(c.m.deliveryInFlight)
	return c.results
}

func TestCourierCountsResults(t *testing.T) {
	tick := time.Unix(0, 0)
	m := New(Options{NoRuntime: true, Now: func() time.Time { tick = tick.Add(250 * time.Millisecond); return tick }})
	inner := &scriptedCourier{m: m, results: []queue.Result{
		{Rcpt: "ok@example.org", TLS: queue.TLS{Policy: "verify", Mechanism: "mta-sts"}},
		{Rcpt: "gone@example.org", Err: smtp.E(550, "5.1.1", "no such user"), TLS: queue.TLS{Policy: "opportunistic", Mechanism: "default"}},
		{Rcpt: "later@example.org", Err: smtp.E(451, "4.3.0", "try later")},
		{Rcpt: "broken@example.org", Err: errors.New("connection reset")},
	}}
	c := m.Courier(inner)
	res := c.Deliver(context.Background(), &queue.Attempt{ID: "q1", Domain: "example.org", Recipients: []string{
		"ok@example.org", "gone@example.org", "later@example.org", "broken@example.org", "missing@example.org"}})
	if len(res) != 4 {
		t.Fatalf("wrapper changed the results: %+v", res)
	}
	if inner.inFlight != 1 {
		t.Errorf("in flight during Deliver = %v, want 1", inner.inFlight)
	}
	const want = `
# HELP smtpkit_delivery_results_total Outbound delivery attempts per recipient, by result (delivered, temporary_failure, permanent_failure), the TLS policy the attempt ran under and what decided it (tls_mechanism: dane, mta-sts, route, default; "unknown" when no next hop was tried).
# TYPE smtpkit_delivery_results_total counter
smtpkit_delivery_results_total{result="delivered",tls_mechanism="mta-sts",tls_policy="verify"} 1
smtpkit_delivery_results_total{result="permanent_failure",tls_mechanism="default",tls_policy="opportunistic"} 1
smtpkit_delivery_results_total{result="temporary_failure",tls_mechanism="unknown",tls_policy="unknown"} 3
# HELP smtpkit_deliveries_in_flight Delivery attempts in progress.
# TYPE smtpkit_deliveries_in_flight gauge
smtpkit_deliveries_in_flight 0
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), "smtpkit_delivery_results_total", "smtpkit_deliveries_in_flight"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.deliveryDuration); n != 1 {
		t.Errorf("duration histogram has %d series", n)
	}
	if got := testutil.ToFloat64(m.deliveries.WithLabelValues(resultDelivered, "verify", "mta-sts")); got != 1 {
		t.Errorf("delivered = %v", got)
	}
	var nilMetrics *Metrics
	if got := nilMetrics.Courier(inner); got != queue.Courier(inner) {
		t.Errorf("nil Metrics wrapped the courier: %T", got)
	}
}

func TestHandler(t *testing.T) {
	m := New(Options{})
	m.MessageAccepted("mx", 42, false, time.Millisecond)
	var healthErr error
	ts := httptest.NewServer(Handler(m, func() error { return healthErr }))
	defer ts.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{`smtpkit_messages_accepted_total{listener="mx",tls="false"} 1`,
		`smtpkit_messages_accepted_bytes_total{listener="mx"} 42`, "go_goroutines ", "process_"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz healthy: %d %q", code, body)
	}
	healthErr = errors.New("queue not running")
	if code, body := get("/healthz"); code != 503 || !strings.Contains(body, "queue not running") {
		t.Errorf("/healthz unhealthy: %d %q", code, body)
	}
	if code, _ := get("/"); code != 404 {
		t.Errorf("/: %d, want 404", code)
	}
}
