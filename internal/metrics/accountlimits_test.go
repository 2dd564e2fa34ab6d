package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestAccountLimited(t *testing.T) {
	m := New(Options{NoRuntime: true})
	for _, l := range []string{"messages_per_hour", "messages_per_hour", "recipients_per_day"} {
		m.AccountLimited(l)
	}
	for _, tt := range []struct {
		limit string
		want  float64
	}{{"messages_per_hour", 2}, {"recipients_per_day", 1}, {"messages_per_day", 0}} {
		if got := testutil.ToFloat64(m.accountLimited.WithLabelValues(tt.limit)); got != tt.want {
			t.Errorf("account limited %s = %v, want %v", tt.limit, got, tt.want)
		}
	}
	// The name the docs give (docs/operations.md, Sending limits).
	want := `
# HELP smtpkit_account_limited_total MAIL (messages_per_*) and RCPT (recipients_per_*) commands of authenticated accounts refused (a temporary failure) for going over a sending limit, by limit.
# TYPE smtpkit_account_limited_total counter
smtpkit_account_limited_total{limit="messages_per_day"} 0
smtpkit_account_limited_total{limit="messages_per_hour"} 2
smtpkit_account_limited_total{limit="recipients_per_day"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "smtpkit_account_limited_total"); err != nil {
		t.Error(err)
	}
}
