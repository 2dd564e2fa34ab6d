package config

import (
	"slices"
	"testing"
)

func TestAccountLimits(t *testing.T) {
	const head = minimalConfig
	tests := []struct {
		name string
		toml string
		keys []string // problem keys
		want AccountLimits
	}{
		{name: "defaults", want: AccountLimits{MessagesPerHour: 500, MessagesPerDay: 2000, RecipientsPerHour: 1000, RecipientsPerDay: 3000}},
		{name: "set, 0 is off", toml: "[account_limits]\nmessages_per_hour = 0\nmessages_per_day = 100\nrecipients_per_hour = 20\nrecipients_per_day = 0\n",
			want: AccountLimits{MessagesPerDay: 100, RecipientsPerHour: 20}},
		{name: "negative", toml: "[account_limits]\nmessages_per_day = -1\nrecipients_per_hour = -5\n",
			keys: []string{"account_limits.messages_per_day", "account_limits.recipients_per_hour"}},
		{name: "hour over day", toml: "[account_limits]\nmessages_per_hour = 50\nmessages_per_day = 10\nrecipients_per_hour = 9\nrecipients_per_day = 8\n",
			keys: []string{"account_limits.messages_per_hour", "account_limits.recipients_per_hour"}},
		{name: "unknown key", toml: "[account_limits]\nbytes_per_day = 1\n", keys: []string{"account_limits.bytes_per_day"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(head+tt.toml), "test.toml")
			got := problemKeys(t, err)
			if !slices.Equal(got, tt.keys) {
				t.Fatalf("problems %q, want %q (%v)", got, tt.keys, err)
			}
			if err == nil && c.AccountLimits != tt.want {
				t.Errorf("got %+v, want %+v", c.AccountLimits, tt.want)
			}
		})
	}
}
