package client

import (
	"testing"

	"smtpkit/internal/smtp"
)

// TestConnLimits: the peer's LIMITS line from EHLO (RFC 9422 §4) and when
// a connection has used its MAILMAX transactions.
func TestConnLimits(t *testing.T) {
	tests := []struct {
		line  string // the LIMITS line, "" for none
		txns  int
		want  smtp.Limits
		spent bool
	}{
		{"", 1000, smtp.Limits{}, false},
		{"LIMITS RCPTMAX=10 MAILMAX=2", 1, smtp.Limits{RcptMax: 10, MailMax: 2}, false},
		{"LIMITS RCPTMAX=10 MAILMAX=2", 2, smtp.Limits{RcptMax: 10, MailMax: 2}, true},
		{"limits mailmax=1", 1, smtp.Limits{MailMax: 1}, true},
		{"LIMITS RCPTMAX=10  MAILMAX=2", 5, smtp.Limits{}, false}, // malformed: ignored whole
		{"LIMITS", 5, smtp.Limits{}, false},
	}
	for _, tt := range tests {
		lines := []string{"mx.example greets you", "PIPELINING"}
		if tt.line != "" {
			lines = append(lines, tt.line)
		}
		c := &Conn{ext: parseExtensions(lines), txns: tt.txns}
		if got := c.Limits(); got != tt.want {
			t.Errorf("%q: Limits() = %+v, want %+v", tt.line, got, tt.want)
		}
		if got := c.Spent(); got != tt.spent {
			t.Errorf("%q after %d transactions: Spent() = %v, want %v", tt.line, tt.txns, got, tt.spent)
		}
	}
}
