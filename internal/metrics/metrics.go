// Package metrics exposes smtpkit's counters, gauges and histograms in the
// Prometheus text format: session events (it implements server.Observer),
// the outbound queue (a collector reading the queue's List at scrape time)
// and delivery attempts (a wrapper around a queue.Courier). Everything
// lives on the Registry of one Metrics value; nothing is global.
package metrics

import (
	"crypto/tls"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

const namespace = "smtpkit"

// Options configure New.
type Options struct {
	// Now is the clock for queue ages; nil means time.Now.
	Now func() time.Time
	// NoRuntime leaves out the Go runtime and process collectors (tests
	// that compare whole scrapes).
	NoRuntime bool
}

// Metrics is smtpkit's set of metrics on its own registry. Its methods are
// safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry
	now func() time.Time

	connections    *prometheus.CounterVec   // listener
	connRefused    *prometheus.CounterVec   // listener, reason
	tlsHandshakes  *prometheus.CounterVec   // listener, version
	tlsFailures    *prometheus.CounterVec   // listener
	auth           *prometheus.CounterVec   // listener, mechanism, result
	accepted       *prometheus.CounterVec   // listener, tls
	acceptedBytes  *prometheus.CounterVec   // listener
	messageSize    *prometheus.HistogramVec // listener
	acceptDuration *prometheus.HistogramVec // listener
	msgRefused     *prometheus.CounterVec   // listener, reason
	rcptRefused    *prometheus.CounterVec   // listener, reason
	dnsblHits      *prometheus.CounterVec   // zone (dnsbl.go)
	earlyTalkers   *prometheus.CounterVec   // listener (dnsbl.go)

	greylist      greylistMetrics        // greylist.go
	milterActions *prometheus.CounterVec // milter, action (milter.go)
	// accountLimited: refusals over [account_limits], by limit (accountlimits.go)
	accountLimited *prometheus.CounterVec

	tlsSessions      *prometheus.CounterVec // policy_type, result (tlsrpt.go)
	deliveries       *prometheus.CounterVec // result
	deliveryDuration prometheus.Histogram
	deliveryInFlight prometheus.Gauge
	recent           ring // the last delivery events (recent.go)

	// collectors are everything registered on reg, in order: the
	// packaging test describes them to know every metric name.
	collectors []prometheus.Collector
}

// register registers cs on m's registry and remembers them.
func (m *Metrics) register(cs ...prometheus.Collector) {
	m.reg.MustRegister(cs...)
	m.collectors = append(m.collectors, cs...)
}

// New returns the metrics, registered on a new registry.
func New(opts Options) *Metrics {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	m := &Metrics{reg: prometheus.NewRegistry(), now: now}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
		m.register(c)
		return c
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets}, labels)
		m.register(h)
		return h
	}
	m.connections = counter("connections_total", "SMTP connections given a session.", "listener")
	m.connRefused = counter("connections_refused_total", "SMTP connections answered 421 and closed at connect.", "listener", "reason")
	m.tlsHandshakes = counter("tls_handshakes_total", "Completed inbound TLS handshakes (STARTTLS or implicit), by protocol version.", "listener", "version")
	m.tlsFailures = counter("tls_handshake_failures_total", "Failed inbound TLS handshakes.", "listener")
	m.auth = counter("auth_attempts_total", "AUTH exchanges that ended with a credential check, by result (success or failure).", "listener", "mechanism", "result")
	m.accepted = counter("messages_accepted_total", "Messages answered 250 after DATA or BDAT LAST (stored durably).", "listener", "tls")
	m.acceptedBytes = counter("messages_accepted_bytes_total", "Octets of the messages accepted.", "listener")
	m.messageSize = histogram("message_size_bytes", "Sizes of the messages accepted.",
		prometheus.ExponentialBuckets(1024, 4, 10), "listener") // 1 KiB … 256 MiB
	m.acceptDuration = histogram("message_accept_duration_seconds", "Time from DATA (or the first BDAT) to the 250, including the durable commit.",
		prometheus.ExponentialBuckets(0.005, 2.5, 12), "listener") // 5 ms … ~5 min
	m.msgRefused = counter("messages_refused_total", "Messages whose data was refused or lost, by reason.", "listener", "reason")
	m.rcptRefused = counter("recipients_refused_total", "RCPT commands refused, by reason.", "listener", "reason")
	m.earlyTalkers = counter("early_talkers_total", "Clients of mx listeners that talked before the greeting during the pregreet wait, answered 554 and dropped.", "listener")
	m.dnsblHits = counter("dnsbl_hits_total", "Clients of mx listeners listed by a DNS block or allow list, once per session, by zone.", "zone")
	m.greylist = newGreylistMetrics(counter)
	m.milterActions = counter("milter_actions_total", "Answers of content filters (milters) other than continue, by milter and action (accept, reject, tempfail, discard, quarantine, failed).", "milter", "action")
	m.accountLimited = newAccountLimited(counter)

	m.tlsSessions = newTLSSessions(counter)
	m.deliveries = counter("delivery_results_total", "Outbound delivery attempts per recipient, by result (delivered, temporary_failure, permanent_failure), the TLS policy the attempt ran under and what decided it (tls_mechanism: dane, mta-sts, route, default; \"unknown\" when no next hop was tried).", "result", "tls_policy", "tls_mechanism")
	m.deliveryDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "delivery_duration_seconds",
		Help: "Duration of one delivery attempt to one domain (route, connect, TLS, transaction).", Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 12)})
	m.deliveryInFlight = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "deliveries_in_flight",
		Help: "Delivery attempts in progress."})
	m.register(m.deliveryDuration, m.deliveryInFlight)
	if !opts.NoRuntime {
		m.register(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// Registry is where the metrics are registered; the HTTP handler serves it.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// The methods below implement server.Observer.

// ConnectionAccepted counts a connection that got a session.
func (m *Metrics) ConnectionAccepted(listener string) {
	m.connections.WithLabelValues(listener).Inc()
}

// ConnectionRefused counts a connection refused at connect time.
func (m *Metrics) ConnectionRefused(listener, reason string) {
	m.connRefused.WithLabelValues(listener, reason).Inc()
}

// TLSEstablished counts a TLS handshake by version ("TLS 1.3").
func (m *Metrics) TLSEstablished(listener string, version uint16) {
	m.tlsHandshakes.WithLabelValues(listener, tls.VersionName(version)).Inc()
}

// TLSFailed counts a failed TLS handshake.
func (m *Metrics) TLSFailed(listener string) {
	m.tlsFailures.WithLabelValues(listener).Inc()
}

// AuthResult counts an AUTH outcome.
func (m *Metrics) AuthResult(listener, mechanism string, ok bool) {
	result := "failure"
	if ok {
		result = "success"
	}
	m.auth.WithLabelValues(listener, mechanism, result).Inc()
}

// MessageAccepted counts an accepted message, its size and how long the
// DATA phase took.
func (m *Metrics) MessageAccepted(listener string, size int64, tls bool, d time.Duration) {
	m.accepted.WithLabelValues(listener, strconv.FormatBool(tls)).Inc()
	m.acceptedBytes.WithLabelValues(listener).Add(float64(size))
	m.messageSize.WithLabelValues(listener).Observe(float64(size))
	m.acceptDuration.WithLabelValues(listener).Observe(d.Seconds())
}

// MessageRefused counts a refused message.
func (m *Metrics) MessageRefused(listener, reason string) {
	m.msgRefused.WithLabelValues(listener, reason).Inc()
}

// RecipientRefused counts a refused RCPT.
func (m *Metrics) RecipientRefused(listener, reason string) {
	m.rcptRefused.WithLabelValues(listener, reason).Inc()
}
