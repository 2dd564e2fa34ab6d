package config

import (
	"slices"
	"testing"
)

func TestIndexKeys(t *testing.T) {
	src := `top = 1            # line 1
multi = """
fake = 2
"""
arr = [
  "]", # fake = 3
  2,
]
[limits]
recipients = 100
a.b = 1
"quoted key" = 2
[[listener]]
address = ":25"
[[listener]]
address = ":587"
[[tls.certificate]]
cert = "c"
[tls]
self_signed = true
s = "# not a comment ["
`
	x := indexKeys(src)
	tests := []struct {
		key  string
		line int
	}{
		{"top", 1}, {"multi", 2}, {"fake", 0}, {"arr", 5},
		{"limits", 9}, {"limits.recipients", 10}, {"limits.a.b", 11}, {`limits."quoted key"`, 12},
		{"listener[0]", 13}, {"listener[0].address", 14}, {"listener[1].address", 16},
		{"listener[1].tls", 15}, // not in the source: its entry's header
		{"tls.certificate[0].cert", 18}, {"tls.self_signed", 20}, {"tls.s", 21},
		{"limits.errors", 9}, {"outbound.tls", 0}, {"", 0},
	}
	for _, tt := range tests {
		if got := x.lineOf(tt.key); got != tt.line {
			t.Errorf("lineOf(%q) = %d, want %d", tt.key, got, tt.line)
		}
	}
	if got := x.linesOf("listener.address"); !slices.Equal(got, []int{14, 16}) {
		t.Errorf("linesOf(listener.address) = %v", got)
	}
}
