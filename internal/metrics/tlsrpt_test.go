package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"smtpkit/internal/tlsrpt"
)

// collect is a tlsrpt.Recorder that keeps what it is handed.
type collect []tlsrpt.Session

func (c *collect) Record(s tlsrpt.Session) { *c = append(*c, s) }

// TestTLSRecorder: every session is counted by policy type and result
// (success for none) and handed on unchanged; a nil next only counts.
func TestTLSRecorder(t *testing.T) {
	m := New(Options{NoRuntime: true})
	var got collect
	r := m.TLSRecorder(&got)
	r.Record(tlsrpt.Session{Domain: "a.example", Policy: tlsrpt.PolicySTS})
	r.Record(tlsrpt.Session{Domain: "b.example", Policy: tlsrpt.PolicyTLSA, Result: tlsrpt.ValidationFailure})
	r.Record(tlsrpt.Session{Domain: "c.example", Result: tlsrpt.StartTLSNotSupported})
	m.TLSRecorder(nil).Record(tlsrpt.Session{Domain: "d.example", Policy: tlsrpt.PolicySTS})
	if len(got) != 3 || got[1].Domain != "b.example" || got[1].Result != tlsrpt.ValidationFailure {
		t.Errorf("handed on: %+v", got)
	}
	const want = `
# HELP smtpkit_outbound_tls_sessions_total Outbound sessions as TLS-RPT counts them (RFC 8460), by policy type (sts, tlsa, no-policy-found) and result (success, or the failure's result type: starttls-not-supported, certificate-expired, validation-failure, …).
# TYPE smtpkit_outbound_tls_sessions_total counter
smtpkit_outbound_tls_sessions_total{policy_type="no-policy-found",result="starttls-not-supported"} 1
smtpkit_outbound_tls_sessions_total{policy_type="sts",result="success"} 2
smtpkit_outbound_tls_sessions_total{policy_type="tlsa",result="validation-failure"} 1
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), "smtpkit_outbound_tls_sessions_total"); err != nil {
		t.Error(err)
	}
}
