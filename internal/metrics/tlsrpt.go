package metrics

// tlsrpt.go: outbound TLS outcomes, counted from the sessions delivery
// reports for TLS-RPT (RFC 8460).

import (
	"github.com/prometheus/client_golang/prometheus"

	"smtpkit/internal/tlsrpt"
)

// TLSRecorder returns a tlsrpt.Recorder that counts every outbound
// session by policy type and result and then hands it to next (nil: only
// counted, as with [tlsrpt] off).
func (m *Metrics) TLSRecorder(next tlsrpt.Recorder) tlsrpt.Recorder {
	return &tlsCounter{m: m, next: next}
}

type tlsCounter struct {
	m    *Metrics
	next tlsrpt.Recorder
}

func (c *tlsCounter) Record(s tlsrpt.Session) {
	policy, result := string(s.Policy), string(s.Result)
	if policy == "" {
		policy = string(tlsrpt.PolicyNone)
	}
	if result == "" {
		result = "success"
	}
	c.m.tlsSessions.WithLabelValues(policy, result).Inc()
	if c.next != nil {
		c.next.Record(s)
	}
}

func newTLSSessions(counter func(name, help string, labels ...string) *prometheus.CounterVec) *prometheus.CounterVec {
	return counter("outbound_tls_sessions_total", "Outbound sessions as TLS-RPT counts them (RFC 8460), by policy type (sts, tlsa, no-policy-found) and result (success, or the failure's result type: starttls-not-supported, certificate-expired, validation-failure, …).", "policy_type", "result")
}
