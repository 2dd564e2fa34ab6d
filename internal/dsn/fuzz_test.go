package dsn

import (
	"bytes"
	"net/mail"
	"testing"

	"smtpkit/internal/smtp"
)

// FuzzBuild: whatever a peer puts in a reply, a recipient or the original
// headers, the report is CRLF-clean, has no line over 998 octets and parses.
func FuzzBuild(f *testing.F) {
	f.Add("bob@example.net", "550 5.1.1 no", "5.1.1", []byte("Subject: x\r\n\r\nbody"))
	f.Add("bjørn@example.net", "4\r\n5", "4.x", []byte("\n\n\r"))
	f.Fuzz(func(t *testing.T, rcpt, diag, status string, headers []byte) {
		r := failedReport()
		r.Recipients[0] = Recipient{Addr: rcpt, Action: Failed, Status: status, Diagnostic: diag}
		r.Recipients[1] = Recipient{Addr: rcpt, Action: Failed, Status: status, RemoteMTA: diag,
			Reply: smtp.Reply{Code: len(diag), Enhanced: smtp.Enhanced(status), Lines: []string{diag, diag}}}
		r.Headers = headers
		got, err := Build(r)
		if err != nil {
			t.Fatal(err)
		}
		checkCRLF(t, got)
		if _, err := mail.ReadMessage(bytes.NewReader(got)); err != nil {
			t.Fatalf("unparseable: %v", err)
		}
	})
}
