package smtp

import "testing"

// The command-line parsers on the session's hot path: every message a
// client sends passes ParseCommand several times and ParseMail and
// ParseRcpt once per sender and recipient.

var benchLines = []struct{ name, line string }{
	{"EHLO", "EHLO client.example.org"},
	{"MAIL", "MAIL FROM:<sender@client.example.org> SIZE=1024 BODY=8BITMIME"},
	{"RCPT", "RCPT TO:<user@bench.example>"},
	{"DATA", "DATA"},
	{"QUIT", "QUIT"},
}

func BenchmarkParseCommand(b *testing.B) {
	verbs := []string{"EHLO", "MAIL", "RCPT", "DATA", "QUIT"} // the caller's known verbs: no allocation
	for _, tc := range benchLines {
		line := []byte(tc.line)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseCommand(line, verbs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseMail(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseMail("FROM:<sender@client.example.org> SIZE=1024 BODY=8BITMIME", false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRcpt(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseRcpt("TO:<user@bench.example>", false); err != nil {
			b.Fatal(err)
		}
	}
}
