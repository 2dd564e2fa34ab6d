package dmarcrpt

// mail.go: a report as an email (RFC 7489 §7.2.1.1).

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/mail"
	"time"

	"smtpkit/internal/compose"
)

// reportMail is the report mail of §7.2.1.1: the Subject the RFC gives
// ("Report Domain: … Submitter: … Report-ID: <…>"), a short text part and
// the gzip'd XML attached as application/gzip under the §7.2.1.1 file
// name. Auto-Submitted marks it as machine-generated (RFC 3834 §5).
func reportMail(from string, to []Destination, date time.Time, org Org, f Feedback, gz []byte) ([]byte, error) {
	m := compose.Message{
		From:      mail.Address{Address: from},
		Subject:   fmt.Sprintf("Report Domain: %s Submitter: %s Report-ID: <%s>", f.Policy.Domain, org.Name, f.Metadata.ReportID),
		Date:      date,
		MessageID: f.Metadata.ReportID,
		Extra:     []string{"Auto-Submitted: auto-generated"},
		Body: fmt.Sprintf("This is an aggregate DMARC report (RFC 7489) from %s.\r\n\r\nReport domain: %s\r\nPeriod:        %s to %s\r\nMessages:      %d\r\n\r\nThe report is attached as gzip'd XML.\r\n",
			org.Name, f.Policy.Domain, time.Unix(f.Metadata.DateRange.Begin, 0).UTC().Format(time.RFC3339),
			time.Unix(f.Metadata.DateRange.End, 0).UTC().Format(time.RFC3339), f.messages()),
		Attachments: []compose.Attachment{{
			Filename:    Filename(org.Name, f.Policy.Domain, f.Metadata.DateRange, randomHex(4)),
			ContentType: "application/gzip",
			Data:        gz,
		}},
	}
	for _, d := range to {
		m.To = append(m.To, mail.Address{Address: d.Address})
	}
	return m.Build()
}

func (f Feedback) messages() int64 {
	var n int64
	for _, r := range f.Records {
		n += r.Row.Count
	}
	return n
}

// randomHex is n random bytes in hex: report ids, file names.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand, Go 1.24)
	return hex.EncodeToString(b)
}
