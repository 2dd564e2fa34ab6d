package smtp

import "testing"

func TestParseLimits(t *testing.T) {
	tests := []struct {
		in   string
		want Limits
		ok   bool
	}{
		{"RCPTMAX=100 MAILMAX=50", Limits{MailMax: 50, RcptMax: 100}, true},
		{"rcptmax=10 mailmax=2 rcptdomainmax=1", Limits{MailMax: 2, RcptMax: 10, RcptDomainMax: 1}, true},
		{"MAILMAX=5", Limits{MailMax: 5}, true},
		{"FOO=bar RCPTMAX=7", Limits{RcptMax: 7}, true},          // unknown names ignored (§4)
		{"RCPTMAX=7 RCPTMAX=3", Limits{RcptMax: 7}, true},        // first one wins
		{"RCPTMAX=abc MAILMAX=3", Limits{MailMax: 3}, true},      // bad value ignored
		{"RCPTMAX=0", Limits{}, true},                            // zero is no usable limit
		{"RCPTMAX=-1", Limits{}, true},                           // not a number
		{"RCPTMAX=9999999999", Limits{}, true},                   // too many digits
		{"RCPTMAX=999999999", Limits{RcptMax: 999999999}, true},  // nine digits
		{"RCPTMAX=010", Limits{RcptMax: 10}, true},               // leading zero is still 1*DIGIT
		{"", Limits{}, false},                                    // LIMITS needs a limit
		{"RCPTMAX", Limits{}, false},                             // no "="
		{"RCPTMAX=", Limits{}, false},                            // empty value
		{"=5", Limits{}, false},                                  // empty name
		{"RCPT.MAX=5", Limits{}, false},                          // bad name character
		{"RCPTMAX=5  MAILMAX=3", Limits{}, false},                // double space
		{"RCPTMAX=5 ", Limits{}, false},                          // trailing space
		{"RCPTMAX=5\tMAILMAX=3", Limits{}, false},                // tab in value
		{"RCPTMAX=5 MAILMAX=\u00e9", Limits{}, false},            // non-ASCII value
		{"X_Y-1=anything!~ MAILMAX=1", Limits{MailMax: 1}, true}, // registry-free names
	}
	for _, tt := range tests {
		got, ok := ParseLimits(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseLimits(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestFormatLimits(t *testing.T) {
	tests := []struct {
		in   Limits
		want string
	}{
		{Limits{RcptMax: 100, MailMax: 100}, "RCPTMAX=100 MAILMAX=100"},
		{Limits{MailMax: 3}, "MAILMAX=3"},
		{Limits{}, ""},
	}
	for _, tt := range tests {
		if got := FormatLimits(tt.in); got != tt.want {
			t.Errorf("FormatLimits(%+v) = %q, want %q", tt.in, got, tt.want)
		}
		if tt.want != "" {
			if back, ok := ParseLimits(tt.want); !ok || back != tt.in {
				t.Errorf("ParseLimits(FormatLimits(%+v)) = %+v, %v", tt.in, back, ok)
			}
		}
	}
}
